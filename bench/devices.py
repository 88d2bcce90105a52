"""devices: what each device of an account costs a verify.

A login computes and compares every candidate code of every active device (3 per
device with the default window), so that the time taken says nothing about which
device matched, or whether one did. This measures that cost with 1 to 5 devices
(the bound), through twofad's own service in this process: a real SQLite file, the
real key ring (each device's key unsealed with AES-GCM), the policy's window; no
socket, so the figure is the verify's own work. For each count: a wrong code, and an
accepted code of the account's last device, each on a fresh time step (the clock is
the service's injected one, moved on by a period between verifies).

Run: `make bench`, or `.venv/bin/python bench/devices.py`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
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

# Wrong codes only ever one at a time, and no lifetime bound: each is checked in full.
POLICY = "lockout: {after: 1000, hard_after: 1000000}\n"
PARAMS = totp.TotpParams()


def account(store: Store, keys: Keys, user: str, count: int) -> list[str]:
    """`user` with `count` devices, each its own key; the keys, in the devices' order."""
    secrets = [totp.new_secret() for _ in range(count)]
    devices = [
        BroughtDevice(f"device {n}", SealedSecret(keys.seal(user, secret), PARAMS))
        for n, secret in enumerate(secrets, start=1)
    ]
    with store.transaction():
        store.take_over(user, None, Brought(devices, []), 1.0)
    return secrets


def right(keys_: list[str], clock: Clock) -> tuple[str, str]:
    """The current code of the account's last device: every device is tried anyway."""
    step = totp.time_step(clock.now, PARAMS.period)
    return totp.code_at(keys_[-1], PARAMS, step), "accepted"


def wrong(keys_: list[str], clock: Clock) -> tuple[str, str]:
    """A code no device of the account makes anywhere in the window."""
    step = totp.time_step(clock.now, PARAMS.period)
    near = {totp.code_at(k, PARAMS, step + d) for k in keys_ for d in (-1, 0, 1)}
    return next(f"{n:06d}" for n in range(10**6) if f"{n:06d}" not in near), "rejected"


def measure(rounds: int) -> list[dict[str, Any]]:
    """Round after round, one verify for each device count in turn (so a busy moment of
    the machine falls on every count alike), each round on a fresh time step."""
    directory = Accounts()
    counts = range(1, 6)
    taken: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(str(Path(tmp) / "twofad.db"))
        keys = Keys.from_master(bytes(range(32)))
        clock = Clock(1_700_000_010.0)
        service = Service(store, keys, parse(POLICY), clock, directory)
        accounts = {}
        for count in counts:
            directory.add(f"dev{count}", 2000 + count)
            accounts[count] = account(store, keys, f"dev{count}", count)
        # A wrong code, then the right one: the success ends the run of failures, so
        # no back-off ever answers in place of the check.
        for round_ in range(rounds + rounds // 10):
            clock.advance(PARAMS.period)
            for count in counts:
                for kind, code_of in (("rejected", wrong), ("accepted", right)):
                    code, expected = code_of(accounts[count], clock)
                    started = time.perf_counter()
                    result = service.verify(f"dev{count}", code, "sshd", "192.0.2.1")["result"]
                    elapsed = time.perf_counter() - started
                    assert result == expected, (result, expected)
                    if round_ >= rounds // 10:  # the first tenth warms up
                        taken.setdefault((kind, count), []).append(elapsed)
        store.close()
    return [
        {
            "devices": count,
            "accepted_p50_ms": c.ms(statistics.median(taken["accepted", count])),
            "accepted_p95_ms": c.ms(c.percentile(taken["accepted", count], 95)),
            "rejected_p50_ms": c.ms(statistics.median(taken["rejected", count])),
            "rejected_p95_ms": c.ms(c.percentile(taken["rejected", count], 95)),
            "verifies_per_s": round(len(taken["accepted", count]) / sum(taken["accepted", count])),
        }
        for count in counts
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2000, help="verifies per case")
    args = parser.parse_args()
    print("devices: the cost of a verify with 1 to 5 devices on the account")
    rows = measure(args.rounds)
    c.table(
        ["devices", "accepted p50 ms", "p95 ms", "wrong p50 ms", "p95 ms", "verifies/s"],
        [
            [
                r["devices"],
                r["accepted_p50_ms"],
                r["accepted_p95_ms"],
                r["rejected_p50_ms"],
                r["rejected_p95_ms"],
                r["verifies_per_s"],
            ]
            for r in rows
        ],
    )
    one, five = rows[0], rows[-1]
    per_device = (five["rejected_p50_ms"] - one["rejected_p50_ms"]) / 4
    ratio = c.ratio(five["rejected_p50_ms"], one["rejected_p50_ms"])
    c.note(
        f"each device beyond the first adds {per_device * 1000:.0f} µs to a verify "
        f"(p50 of a wrong code); 5 devices cost {ratio:.2f}× one"
    )
    c.emit(
        "devices", {"rows": rows, "per_device_us": round(per_device * 1000), "ratio_5_to_1": ratio}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
