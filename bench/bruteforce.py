"""bruteforce: how many codes an attacker who has the password can try, over an account's life.

A simulation on a virtual clock of twofad's own lock-out rules (daemon/lockout.py, the
arithmetic the service applies to every verify), before and after the lifetime count:

  before  a success reset everything: the back-off and the count the hard lock
          was measured against (what twofad did until schema 4);
  after   a success ends the back-off; strikes, which the hard lock counts, are
          only taken back for the owner's own typos (same service and host, within
          lockout.forgive_within, at most after - 1 per success).

The owner logs in --logins-per-day times a day from HOME, with one typo first every
--typo-every logins; a login that finds the account in back-off waits it out (and goes
first when the lock ends). The attackers:

  elsewhere  guesses from another address as fast as the back-off allows;
  same place guesses from the owner's own address (the same NAT) and knows when the
             owner logs in: after - 1 guesses just before each login, all forgiven,
             and the rest of the budget whenever it likes.

Each guess wins with probability (2·window+1)/10^digits (3/10^6 for 6 digits, ±1 step);
the chance per account is 1 - (1-p)^guesses. "ever" is the whole --years: the attacker
who was hard-locked stops there; one who was not spends what is left of the budget too.

No root, no daemon: `.venv/bin/python bench/bruteforce.py [--years N] [...]`.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import common as c

from twofad.lockout import LockoutPolicy, LockState, after_failure, after_success, origin_of

HOUR, DAY, YEAR = 3600.0, 86400.0, 365 * 86400.0
HOME = origin_of("sshd", "192.0.2.10")
ELSEWHERE = origin_of("sshd", "203.0.113.9")
ATTEMPT = 2.0  # seconds one SSH attempt takes the attacker (password, code, answer)
TYPO_DELAY = 10.0  # seconds from the owner's typo to the right code

Success = Callable[[LockoutPolicy, LockState, float, str], LockState]


def reset_all(policy: LockoutPolicy, state: LockState, now: float, origin: str) -> LockState:
    """The rule before: a success cleared the back-off and the hard lock's count alike."""
    return LockState(0, None, False, 0, ())


RULES: dict[str, Success] = {"before": reset_all, "after": after_success}


@dataclass
class Run:
    guesses: list[float] = field(default_factory=list)  # when each wrong guess was checked
    hard_locked_at: float | None = None
    owner_logins: int = 0
    owner_strikes: int = 0  # the owner's own typos left as strikes (attacker-free runs)
    left: int = 0  # budget the attacker had not spent at the end

    def by(self, seconds: float) -> int:
        return sum(1 for at in self.guesses if at <= seconds)

    def ever(self) -> int:
        return len(self.guesses) + self.left


class Simulation:
    def __init__(
        self,
        policy: LockoutPolicy,
        success: Success,
        attacker: str | None,
        logins_per_day: float,
        typo_every: int,
        horizon: float,
    ) -> None:
        self.policy = policy
        self.success = success
        self.attacker = attacker
        self.gap = DAY / logins_per_day if logins_per_day > 0 else math.inf
        self.typo_every = typo_every
        self.horizon = horizon
        self.state = LockState(0, None, False)
        self.run = Run()

    def free_at(self, now: float) -> float:
        """When the account next takes a code (inf once hard-locked)."""
        if self.state.hard_locked:
            return math.inf
        until = self.state.locked_until
        return max(now, until) if until is not None else now

    def fail(self, now: float, origin: str, attacker: bool) -> None:
        self.state = after_failure(self.policy, self.state, now, origin)
        if attacker:
            self.run.guesses.append(now)
        if self.state.hard_locked and self.run.hard_locked_at is None:
            self.run.hard_locked_at = now

    def owner_login(self, when: float) -> None:
        """A typo now and then, then the right code; waits out any back-off first."""
        login = self.run.owner_logins
        now = self.free_at(when)
        if self.typo_every and login % self.typo_every == 0 and now < math.inf:
            self.fail(now, HOME, attacker=False)
            now = self.free_at(now + TYPO_DELAY)
        if now == math.inf:
            return
        self.state = self.success(self.policy, self.state, now, HOME)
        self.run.owner_logins += 1

    def simulate(self) -> Run:
        next_login = 9 * HOUR if self.gap < math.inf else math.inf
        next_guess = 0.0 if self.attacker == "elsewhere" else math.inf
        while not self.state.hard_locked:
            if self.attacker == "same place":
                # after - 1 guesses in the minutes before each login, all to be forgiven.
                start = next_login - 300.0
                for index in range(self.policy.forgivable):
                    at = self.free_at(start + index * ATTEMPT)
                    if at >= next_login or self.state.hard_locked:
                        break
                    self.fail(at, HOME, attacker=True)
            moment = min(next_login, next_guess)
            if moment > self.horizon:
                break
            if next_login <= next_guess:
                self.owner_login(next_login)
                next_login += self.gap
                continue
            at = self.free_at(next_guess)
            if at > min(next_login, self.horizon):
                next_guess = at  # the owner may get in first
                continue
            self.fail(at, ELSEWHERE, attacker=True)
            next_guess = at + ATTEMPT
        if self.attacker is None:
            self.run.owner_strikes = self.state.strikes
        elif not self.state.hard_locked and self.success is after_success:
            self.run.left = self.policy.hard_after - self.state.strikes
        return self.run


def chance(guesses: int, p: float) -> float:
    return 1.0 - (1.0 - p) ** guesses


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 2 * DAY:
        return f"{seconds / HOUR:.1f} h"
    if seconds < 2 * YEAR:
        return f"{seconds / DAY:.1f} d"
    return f"{seconds / YEAR:.1f} y"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=float, default=10.0, help="the account's life")
    parser.add_argument("--logins-per-day", type=float, default=2.0)
    parser.add_argument("--typo-every", type=int, default=10, help="0: the owner never errs")
    parser.add_argument("--digits", type=int, default=6)
    parser.add_argument("--window", type=int, default=1, help="steps either side")
    parser.add_argument("--after", type=int, default=5)
    parser.add_argument("--hard-after", type=int, default=100)
    parser.add_argument("--forgive-within", type=float, default=600.0, help="seconds")
    args = parser.parse_args()
    policy = LockoutPolicy(
        after=args.after, hard_after=args.hard_after, forgive_within=args.forgive_within
    )
    p = (2 * args.window + 1) / 10**args.digits
    horizon = args.years * YEAR

    c.heading(
        f"An attacker's wrong guesses per account: {args.digits} digits, ±{args.window} "
        f"(p = {p:.1e} each); lockout after {policy.after}, hard_after {policy.hard_after}, "
        f"forgive_within {policy.forgive_within:.0f} s; the owner logs in "
        f"{args.logins_per_day:g}×/day, a typo before 1 in {args.typo_every or 'no'} logins"
    )
    typos = args.typo_every
    scenarios = [
        ("before", "elsewhere", 0.0, typos, "no owner logins"),
        ("before", "elsewhere", args.logins_per_day, typos, "elsewhere"),
        ("after", "elsewhere", 0.0, typos, "no owner logins"),
        ("after", "elsewhere", args.logins_per_day, typos, "elsewhere"),
        # The worst case: an owner who never errs leaves every forgiveness to the attacker.
        ("after", "same place", args.logins_per_day, 0, "same place, timed"),
        ("after", "same place", args.logins_per_day, typos, "same place, owner errs"),
    ]
    rows = []
    figures: dict[str, object] = {"p": p, "policy": vars(args)}
    for rule, attacker, per_day, typo_every, label in scenarios:
        run = Simulation(policy, RULES[rule], attacker, per_day, typo_every, horizon).simulate()
        ever = run.ever()
        rows.append(
            (
                f"{rule}: {label}",
                run.by(HOUR),
                run.by(DAY),
                run.by(YEAR),
                ever,
                duration(run.hard_locked_at),
                f"{chance(run.by(YEAR), p):.2%}",
                f"{chance(ever, p):.3%}",
            )
        )
        figures[f"{rule}: {label}"] = {
            "hour": run.by(HOUR),
            "day": run.by(DAY),
            "year": run.by(YEAR),
            "ever": ever,
            "hard_locked_after_s": run.hard_locked_at,
            "chance_ever": chance(ever, p),
        }
    c.table(
        (
            "rule: attacker",
            "1st hour",
            "1st day",
            "1st year",
            f"ever ({args.years:g} y)",
            "hard lock",
            "chance/year",
            "chance ever",
        ),
        rows,
    )
    c.note(
        "'same place' is the bound's other term: at most after - 1 more per login of the "
        f"owner's, i.e. ≤ hard_after + {policy.forgivable}·L guesses for L logins."
    )

    c.heading("The owner alone, with their typos: strikes left at the end")
    owner_rows = []
    for typo_every in (1, 2, 10):
        run = Simulation(
            policy, after_success, None, args.logins_per_day, typo_every, horizon
        ).simulate()
        owner_rows.append(
            (
                f"a typo before 1 in {typo_every}",
                run.owner_logins,
                run.owner_strikes,
                duration(run.hard_locked_at),
            )
        )
        figures[f"owner, typo 1 in {typo_every}"] = {
            "logins": run.owner_logins,
            "strikes": run.owner_strikes,
        }
    c.table(("owner", "logins", "strikes", "hard lock"), owner_rows)
    elsewhere = figures["after: elsewhere"]
    assert isinstance(elsewhere, dict)
    bounded = elsewhere["ever"] <= policy.hard_after
    typos_free = all(row[2] == 0 for row in owner_rows)
    c.note(f"from elsewhere ≤ hard_after guesses, ever: {c.verdict(bounded)}")
    c.note(f"the owner's typos leave no strike: {c.verdict(typos_free)}")
    figures["targets_met"] = bounded and typos_free
    c.emit("bruteforce", figures)


if __name__ == "__main__":
    main()
