"""race: 20 logins at once through pamtester, released together at the prompt.

Each trial starts 20 pamtester processes, each on its own pseudo-terminal, waits until
every one of them sits at its prompt (blocked reading its terminal, as seen in
/proc/PID/syscall), then types the answers into all 20 back to back:

  (a) one user, one code: all 20 logins give the same valid code for the same user;
      a module that refuses replays lets exactly one in;
  (b) 20 users, each their own valid code: all 20 must get in.

10 trials of each, for pam-twofa (hook and daemon), pam_google_authenticator (its file
written by google-authenticator -t -d: DISALLOW_REUSE on, so a code is meant to work
once; no rate limit) and pam_oath (one users file, as /etc/users.oath, in a temporary
directory). Before each trial every user involved gets a new secret (twofad's `import`,
a new google-authenticator file, a new users file), so every code is fresh.

Run as root: `make bench`, or `.venv/bin/python bench/race.py [--trials N]`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import random
import select
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import common as c
from common import Codes

from pam_twofa.client import RequestFailed
from support.pam import _reading_terminal, pam_service, stop_started
from support.users import TestUser

TWOFA = "pam-twofa"
GA = "google-authenticator"
OATH = "pam_oath"
SCHEMES = (TWOFA, GA, OATH)
CONTENDERS = 20
PAMTESTER = "/usr/bin/pamtester"


@dataclass
class Contender:
    proc: subprocess.Popen[bytes]
    master: int
    tty: str
    output: bytearray = field(default_factory=bytearray)

    def drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except (BlockingIOError, OSError):
                return
            if not chunk:
                return
            self.output.extend(chunk)

    def at_prompt(self) -> bool:
        return bool(self.output.strip()) and bool(_reading_terminal(self.proc.pid, {self.tty}))


def spawn(service: str, user: str, env: dict[str, str]) -> Contender:
    master, slave = os.openpty()
    tty = os.ttyname(slave)

    def own_terminal() -> None:  # in the child
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    try:
        proc = subprocess.Popen(
            [PAMTESTER, service, user, "authenticate"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            close_fds=True,
            preexec_fn=own_terminal,
        )
    finally:
        os.close(slave)
    os.set_blocking(master, False)
    return Contender(proc, master, tty)


def stop(contender: Contender) -> None:
    stop_started(contender.proc)


def race(service: str, attempts: list[tuple[str, str]], env: dict[str, str]) -> dict[str, Any]:
    """Start one pamtester per (user, code); answer all once all are at the prompt."""
    contenders: list[Contender] = []
    try:
        for user, _ in attempts:
            contenders.append(spawn(service, user, env))
        deadline = time.monotonic() + 60
        waiting = list(contenders)
        while waiting:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(waiting)} pamtester processes never reached the prompt")
            select.select([w.master for w in waiting], [], [], 0.01)
            for contender in waiting:
                contender.drain()
            waiting = [w for w in waiting if not w.at_prompt()]
            if any(w.proc.poll() is not None for w in waiting):
                raise RuntimeError("a pamtester exited before its prompt")
        released = time.perf_counter()
        for contender, (_, code) in zip(contenders, attempts, strict=True):
            os.write(contender.master, code.encode() + b"\n")
        spread = time.perf_counter() - released
        for contender in contenders:
            contender.proc.wait(60)
            contender.drain()
        finished = time.perf_counter() - released
        codes = [contender.proc.returncode for contender in contenders]
        outputs = [bytes(contender.output) for contender in contenders]
        return {
            "successes": codes.count(0),
            "lock_errors": sum(b"OATH_FILE_LOCK_ERROR" in out for out in outputs),
            "release_spread_ms": c.ms(spread),
            "all_done_ms": c.ms(finished),
        }
    finally:
        for contender in contenders:
            stop(contender)
            os.close(contender.master)


class Setup:
    """New secrets for every user a trial involves, for each module."""

    def __init__(self, daemon: c.Daemon, users: list[TestUser], usersfile: Path) -> None:
        self.daemon = daemon
        self.users = users
        self.usersfile = usersfile
        self.codes = Codes()

    def twofa(self, users: list[TestUser]) -> dict[str, str]:
        """Each user set up afresh: switched off first, since a key replaced in place
        keeps the time steps already used, and every trial uses the current step."""
        secrets = {}
        for user in users:
            secret = c.new_secret()
            with contextlib.suppress(RequestFailed):
                self.daemon.request("disable", user=user.name)
            self.daemon.request("import", user=user.name, secret=secret)
            secrets[user.name] = secret
        return secrets

    def google_authenticator(self, users: list[TestUser]) -> dict[str, str]:
        return {user.name: c.google_authenticator_file(user, disallow_reuse=True) for user in users}

    def oath(self, users: list[TestUser]) -> dict[str, str]:
        secrets = {user.name: c.new_secret() for user in self.users}
        self.usersfile.write_text(
            "".join(c.oath_line(name, secret) for name, secret in secrets.items())
        )
        self.usersfile.chmod(0o600)
        return {user.name: secrets[user.name] for user in users}

    def attempts(self, scheme: str, case: str) -> list[tuple[str, str]]:
        involved = self.users[:1] if case == "a" else self.users[:CONTENDERS]
        fresh: dict[str, Callable[[list[TestUser]], dict[str, str]]] = {
            TWOFA: self.twofa,
            GA: self.google_authenticator,
            OATH: self.oath,
        }
        secrets = fresh[scheme](involved)
        step = c.current_step()
        if case == "a":
            ((name, secret),) = secrets.items()
            return [(name, self.codes.at_step(secret, step))] * CONTENDERS
        return [(name, self.codes.at_step(secret, step)) for name, secret in secrets.items()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    c.require_root()
    print(f"race: {CONTENDERS} logins through pamtester, released together at the prompt")
    c.note(c.byte_compile_hook())
    env = c.hook_env()
    results: dict[str, dict[str, list[int]]] = {s: {"a": [], "b": []} for s in SCHEMES}
    details: list[dict[str, Any]] = []
    with (
        c.work_dir("race") as root,
        c.running_daemon(root) as daemon,
        c.throwaway_users(CONTENDERS) as users,
        ExitStack() as stack,
    ):
        usersfile = root / "users.oath"
        setup = Setup(daemon, users, usersfile)
        setup.oath(users)
        stacks = {
            TWOFA: c.hook_line(daemon),
            GA: "auth required pam_google_authenticator.so",
            # debug: pam_oath then prints why it refused (e.g. OATH_FILE_LOCK_ERROR)
            OATH: f"auth required pam_oath.so usersfile={usersfile} window=1 digits=6 debug",
        }
        services = {
            name: stack.enter_context(pam_service(c.PAM_PREFIX, [line]))
            for name, line in stacks.items()
        }
        # A control: the same code twice, one login after the other, must work once.
        sequential = {}
        for scheme in SCHEMES:
            (attempt, *_) = setup.attempts(scheme, "a")
            sequential[scheme] = sum(
                race(services[scheme], [attempt], env)["successes"] for _ in range(2)
            )
        rng = random.Random(13)
        order = list(SCHEMES)
        for trial in range(args.trials):
            for case in ("a", "b"):
                rng.shuffle(order)
                for scheme in order:
                    attempts = setup.attempts(scheme, case)
                    outcome = race(services[scheme], attempts, env)
                    results[scheme][case].append(outcome["successes"])
                    details.append({"trial": trial, "case": case, "scheme": scheme, **outcome})
            c.note(f"trial {trial + 1}/{args.trials} done")
    return report(args, results, details, sequential)


def report(
    args: argparse.Namespace,
    results: dict[str, dict[str, list[int]]],
    details: list[Any],
    sequential: dict[str, int],
) -> int:
    c.heading("control: one code given twice, one login after the other (right answer: 1)")
    c.table(["module", "successes of 2"], [[s, sequential[s]] for s in SCHEMES])
    expected = {"a": 1, "b": CONTENDERS}
    titles = {
        "a": f"(a) one user, one code, {CONTENDERS} logins at once: successes per trial "
        "(right answer: 1)",
        "b": f"(b) {CONTENDERS} users, each their own valid code: successes per trial "
        f"(right answer: {CONTENDERS})",
    }
    for case in ("a", "b"):
        c.heading(titles[case])
        c.table(
            ["module", "per trial", "min", "max", "trials right"],
            [
                [
                    scheme,
                    " ".join(str(n) for n in results[scheme][case]),
                    min(results[scheme][case]),
                    max(results[scheme][case]),
                    f"{sum(n == expected[case] for n in results[scheme][case])}/{args.trials}",
                ]
                for scheme in SCHEMES
            ],
        )
    lock_errors = [d["lock_errors"] for d in details if d["scheme"] == OATH and d["case"] == "b"]
    c.note(
        f"pam_oath in (b): {sum(lock_errors)} of {CONTENDERS * len(lock_errors)} logins refused "
        "with OATH_FILE_LOCK_ERROR (its users file is locked without waiting)"
    )
    spreads = [d["release_spread_ms"] for d in details]
    c.note(
        f"answers typed into all {CONTENDERS} terminals within {c.median(spreads):.2f} ms "
        f"(median; max {max(spreads):.2f} ms); google-authenticator with DISALLOW_REUSE on"
    )
    met_a = all(n == 1 for n in results[TWOFA]["a"])
    met_b = all(n == CONTENDERS for n in results[TWOFA]["b"])
    c.heading("targets (pam-twofa)")
    c.note(f"(a) exactly 1 success in every trial: {c.verdict(met_a)}")
    c.note(f"(b) {CONTENDERS} successes in every trial: {c.verdict(met_b)}")
    c.emit(
        "race",
        {
            "contenders": CONTENDERS,
            "trials": args.trials,
            "google_authenticator_disallow_reuse": True,
            "successes": results,
            "sequential_control_successes": sequential,
            "pam_oath_lock_errors_b": sum(lock_errors),
            "release_spread_ms_median": c.median(spreads),
            "targets": {"a_exactly_one_met": met_a, "b_all_met": met_b},
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
