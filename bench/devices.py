"""devices: what each device of an account costs a verify.

A login computes and compares every candidate code of every active device (3 per
device with the default window), so that the time taken says nothing about which
device matched, or whether one did. This measures that cost with 1 to 5 devices (the
bound) through twofad's own service in this process: a real SQLite file, the real key
ring (each device's key unsealed with AES-GCM), the policy's window, the commit of the
outcome; no socket, so the figure is the verify's own work.

For each count, round after round on a fresh time step (the service's injected clock
moved on by a period): a wrong code (no device makes it anywhere in the window), then
an accepted one from the account's last device. With 5 devices an account of its own
also takes the code of its first device (after a wrong one, as the others): were the
devices tried only until one matched, that would be cheaper than the last one's.

Run: `make bench`, or `.venv/bin/python bench/devices.py`.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import common as c

sys.path.insert(0, str(c.TESTS))

from support.fakes import Accounts, Clock
from twofad import totp
from twofad.keys import Keys
from twofad.policy_file import parse
from twofad.service import Service
from twofad.store import Brought, BroughtDevice, SealedSecret, Store

# Wrong codes never lock the account out, so each is checked in full.
POLICY = "lockout: {after: 1000, hard_after: 1000000}\n"
PARAMS = totp.TotpParams()
COUNTS = (1, 2, 3, 4, 5)
ACCEPTED, ACCEPTED_FIRST, REJECTED = "accepted", "accepted_first", "rejected"
FIGURES = ("p50_ms", "p95_ms", "per_s")  # of each case, as `figures` gives them


@dataclass
class Account:
    """One account of the benchmark: its devices' keys and the cases it is timed in."""

    user: str
    secrets: list[str]
    cases: tuple[str, ...]  # in this order each round: a wrong code before a right one
    taken: dict[str, list[float]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.secrets)


def create(store: Store, keys: Keys, directory: Accounts, user: str, count: int) -> list[str]:
    """`user` with `count` active devices, each its own key; the keys, in order."""
    directory.add(user, 2000 + len(directory.users))
    secrets = [totp.new_secret() for _ in range(count)]
    devices = [
        BroughtDevice(f"device {n}", SealedSecret(keys.seal(user, secret), PARAMS))
        for n, secret in enumerate(secrets, start=1)
    ]
    with store.transaction():
        store.take_over(user, None, Brought(devices, []), 1.0)
    return secrets


def code_of(secret: str, now: float) -> str:
    return str(totp.code_at(secret, PARAMS, totp.time_step(now, PARAMS.period)))


def wrong_code(secrets: list[str], now: float) -> str:
    """A code no device of the account makes anywhere in the window."""
    step = totp.time_step(now, PARAMS.period)
    near = {totp.code_at(s, PARAMS, step + d) for s in secrets for d in (-1, 0, 1)}
    return next(code for n in range(10**6) if (code := f"{n:06d}") not in near)


# Each case: the code to send at `now`, and the reply it must get (result, device).
CASES: dict[str, Callable[[list[str], float], tuple[str, tuple[str, str | None]]]] = {
    ACCEPTED: lambda s, now: (code_of(s[-1], now), ("accepted", f"device {len(s)}")),
    ACCEPTED_FIRST: lambda s, now: (code_of(s[0], now), ("accepted", "device 1")),
    REJECTED: lambda s, now: (wrong_code(s, now), ("rejected", None)),
}


def measure(rounds: int, seed: int) -> list[Account]:
    """Every account once per round, in a shuffled order (a busy moment of the machine
    falls on every count alike), each round on a fresh time step; the first tenth of
    the rounds warms up and is not kept."""
    directory = Accounts()
    shuffle = random.Random(seed).shuffle
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(str(Path(tmp) / "twofad.db"))
        keys = Keys.from_master(bytes(range(32)))
        clock = Clock(1_700_000_010.0)
        service = Service(store, keys, parse(POLICY), clock, directory)
        accounts = [
            Account(f"dev{n}", create(store, keys, directory, f"dev{n}", n), (REJECTED, ACCEPTED))
            for n in COUNTS
        ]
        first = create(store, keys, directory, "first5", COUNTS[-1])
        accounts.append(Account("first5", first, (REJECTED, ACCEPTED_FIRST)))  # alike
        warm_up = rounds // 10
        for round_ in range(warm_up + rounds):
            clock.advance(PARAMS.period)
            shuffle(accounts)
            for account in accounts:
                for case in account.cases:
                    code, expected = CASES[case](account.secrets, clock.now)
                    started = time.perf_counter()
                    reply = service.verify(account.user, code, "sshd", "192.0.2.1")
                    elapsed = time.perf_counter() - started
                    assert (reply["result"], reply.get("device")) == expected, (reply, expected)
                    if round_ >= warm_up:
                        account.taken.setdefault(case, []).append(elapsed)
        store.close()
    return sorted(accounts, key=lambda a: (a.count, a.cases))


def figures(taken: list[float]) -> dict[str, float]:
    """Median and p95 of one case (ms), and verifies a second at its mean."""
    return {
        "p50_ms": c.ms(statistics.median(taken)),
        "p95_ms": c.ms(c.percentile(taken, 95)),
        "per_s": round(len(taken) / sum(taken)),
    }


def per_device(rows: list[dict[str, Any]], case: str) -> dict[str, float]:
    """A straight line through the medians over 1..5 devices: what each device adds
    (the slope) and what a verify costs besides (the intercept, at 0 devices), in µs."""
    slope, intercept = statistics.linear_regression(
        [row["devices"] for row in rows], [row[case]["p50_ms"] * 1000 for row in rows]
    )
    return {"per_device_us": round(slope, 1), "fixed_us": round(intercept, 1)}


# The first table: per count, FIGURES of an accepted code, then of a wrong one.
HEADERS = ["devices", "accepted p50 ms", "p95 ms", "verifies/s", "wrong p50 ms", "p95 ms"]


def report(accounts: list[Account], rounds: int) -> None:
    """The tables, then the JSON line."""
    rows: list[dict[str, Any]] = [
        {"devices": a.count} | {case: figures(a.taken[case]) for case in (ACCEPTED, REJECTED)}
        for a in accounts
        if ACCEPTED in a.cases
    ]
    [first] = [figures(a.taken[ACCEPTED_FIRST]) for a in accounts if ACCEPTED_FIRST in a.cases]
    print(f"per verify, {rounds:,} of each kind per count; accepted = the last device's code")
    c.table(
        [*HEADERS, "verifies/s"],  # the wrong code's
        [[r["devices"], *(r[k][f] for k in (ACCEPTED, REJECTED) for f in FIGURES)] for r in rows],
    )
    lines = {case: per_device(rows, case) for case in (ACCEPTED, REJECTED)}
    one, five = rows[0], rows[-1]
    ratios = {case: c.ratio(five[case]["p50_ms"], one[case]["p50_ms"]) for case in lines}
    print()
    c.table(
        ["code", "per device µs", "fixed µs", "5 devices / 1 (p50)"],
        [[case, *lines[case].values(), ratios[case]] for case in lines],
    )
    last = five[ACCEPTED]["p50_ms"]
    c.note(
        f"5 devices, the first device's code: p50 {first['p50_ms']} ms, p95 {first['p95_ms']} ms "
        f"({c.ratio(first['p50_ms'], last):.2f}× the last device's): every device is tried"
    )
    c.emit(
        "devices",
        {
            "rounds": rounds,
            "rows": rows,
            "accepted_first_of_5": first,
            "per_device": lines,
            "ratio_5_to_1": ratios,
        },
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2000, help="verifies per case")
    parser.add_argument("--seed", type=int, default=1, help="of the order within a round")
    args = parser.parse_args()
    print("devices: the cost of a verify with 1 to 5 devices on the account, in the service")
    report(measure(args.rounds, args.seed), args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
