"""scale: 1k, 10k and 100k enrolled users — verify latency, enrollment, memory, disk.

The users are written into the database with the daemon stopped, through twofad's own
code (twofad.keys seals each secret, twofad.store writes the row and 8 recovery code
digests, as an enrollment leaves them): enrolling through the socket needs a real
system account per user, and 100,000 accounts are not made for a benchmark. That rate
is reported as the bulk-load rate. Enrollment through the socket (enroll.begin, then
enroll.confirm with a code from oathtool) is measured at each size with a few real
throwaway accounts, which are disabled again afterwards.

Then a real daemon is started on each database, the three side by side, and measured:
resident memory (VmRSS, and the peak VmHWM), verify latency from one client (valid
codes, each user once, users drawn at random from the whole database, after a
warm-up; the sizes take turns, ten rounds each, so the machine's busy moments fall on
all of them alike), and the database's size on disk.

Run as root: `make bench`, or `.venv/bin/python bench/scale.py`.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from contextlib import ExitStack
from typing import Any

import common as c
from common import Codes

from pam_twofa.client import Client

SIZES = (1_000, 10_000, 100_000)
SECRETS = 16
TARGET_P50_RATIO = 1.2
TARGET_RSS_MB = 60.0


def socket_enrollments(daemon: c.Daemon, names: list[str], codes: Codes) -> float:
    """Seconds the socket took to enroll and confirm `names` (oathtool's time left out)."""
    spent = 0.0
    with Client(daemon.socket, timeout=30.0) as client:
        for name in names:
            t0 = time.perf_counter()
            secret = str(client.request("enroll.begin", user=name)["secret"])
            t1 = time.perf_counter()
            code = codes.at_step(secret, c.current_step())
            t2 = time.perf_counter()
            client.request("enroll.confirm", user=name, code=code)
            spent += (t1 - t0) + (time.perf_counter() - t2)
        for name in names:
            client.request("disable", user=name)
    return spent


def started_in(daemon: c.Daemon) -> float:
    began = time.perf_counter()
    daemon.start(timeout=120)
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--verifies", type=int, default=1000, help="per size (default 1000)")
    parser.add_argument("--warmup", type=int, default=300, help="uncounted verifies first")
    parser.add_argument("--rounds", type=int, default=10, help="alternations between sizes")
    parser.add_argument("--enrollments", type=int, default=20, help="real accounts per size")
    parser.add_argument("--largest", type=int, default=SIZES[-1])
    args = parser.parse_args()
    c.require_root()
    print("scale: the real daemon on 1k, 10k and 100k enrolled users")
    sizes = [size for size in SIZES if size < args.largest] + [args.largest]
    codes = Codes()
    secrets = [c.new_secret() for _ in range(SECRETS)]
    rng = random.Random(5)
    with ExitStack() as stack:
        accounts = stack.enter_context(c.throwaway_users(args.enrollments))
        daemons, rows = {}, {}
        for size in sizes:
            daemons[size], rows[size] = start(stack, size, secrets, accounts, codes)
        # Every daemon on one core, this client on another, so that where the scheduler
        # happens to put a process does not pass for an effect of the size.
        c.pin_apart(daemons.values())
        step = c.current_step()
        plans = {
            size: warmed_up(
                daemon,
                rng.sample(range(size), min(size, args.verifies)),
                args.warmup,
                secrets,
                codes,
                step,
            )
            for size, daemon in daemons.items()
        }
        turns = in_turns(daemons, plans, args.rounds, rng)
        for size, daemon in daemons.items():
            latencies = [t for turn in turns[size] for t in turn["latencies"]]
            memory = c.daemon_memory(daemon)
            rows[size].update(
                {
                    "verifies": len(latencies),
                    "verify_p50_ms": c.ms(c.percentile(latencies, 50)),
                    "verify_p99_ms": c.ms(c.percentile(latencies, 99)),
                    "p50_ratio_to_smallest": round(paired_ratio(turns[size], turns[sizes[0]]), 3),
                    "results": dict(sum((Counter(t["counts"]) for t in turns[size]), Counter())),
                    "rss_mb": memory.get("VmRSS"),
                    "rss_peak_mb": memory.get("VmHWM"),
                    **{f"{k}_mb": v for k, v in c.database_size(daemon).items()},
                }
            )
            c.note(f"{size:,} users measured")
    return report([rows[size] for size in sizes])


def start(
    stack: ExitStack, size: int, secrets: list[str], accounts: list[Any], codes: Codes
) -> tuple[c.Daemon, dict[str, Any]]:
    """A daemon of its own on `size` bulk-loaded users, running until `stack` ends, and
    the figures of its start: load rate, start time, memory, enrollments by socket."""
    root = stack.enter_context(c.work_dir(f"scale{size}"))
    c.prime_state(root)
    daemon = c.Daemon(root, "--policy", str(root / "policy.yaml"))
    load_seconds = c.bulk_load(daemon, [(f"sc-{i}", secrets[i % SECRETS]) for i in range(size)])
    startup = started_in(daemon)
    stack.callback(daemon.stop)
    enroll_seconds = socket_enrollments(daemon, [u.name for u in accounts], codes)
    return daemon, {
        "users": size,
        "bulk_load_per_second": round(size / load_seconds),
        "startup_seconds": round(startup, 3),
        "rss_started_mb": c.daemon_memory(daemon).get("VmRSS"),
        "socket_enrollments_per_second": round(len(accounts) / enroll_seconds, 1),
    }


def warmed_up(
    daemon: c.Daemon,
    chosen: list[int],
    warmup: int,
    secrets: list[str],
    codes: Codes,
    step: int,
) -> list[bytes]:
    """Warm `daemon` up with this step's code for some of the chosen users; return the
    timed verifies: every chosen user with the next step's code, still inside the ±1
    window and newer than anything they used, so the same work either way."""

    def verify(i: int, at: int) -> bytes:
        return c.verify_request(f"sc-{i}", codes.at_step(secrets[i % SECRETS], at), i)

    warm = [verify(i, step) for i in chosen[:warmup]]
    c.closed_loop(daemon.socket, iter(warm), 1, max_seconds=120)
    return [verify(i, step + 1) for i in chosen]


def in_turns(
    daemons: dict[int, c.Daemon], plans: dict[int, list[bytes]], rounds: int, rng: random.Random
) -> dict[int, list[dict[str, Any]]]:
    """Each size's verifies, a slice per round, the sizes in a new order each round: a
    busy moment of the machine falls on all of them alike. One closed_loop outcome
    per round."""
    per_round = -(-max(len(plan) for plan in plans.values()) // rounds)
    turns: dict[int, list[dict[str, Any]]] = {size: [] for size in daemons}
    for turn in range(rounds):
        for size in rng.sample(sorted(daemons), len(daemons)):
            batch = plans[size][turn * per_round : (turn + 1) * per_round]
            outcome = c.closed_loop(daemons[size].socket, iter(batch), 1, max_seconds=120)
            turns[size].append(outcome)
    return turns


def paired_ratio(mine: list[dict[str, Any]], base: list[dict[str, Any]]) -> float:
    """The median over rounds of this size's p50 over the base's in the same round."""
    return c.median(
        [
            c.percentile(a["latencies"], 50) / c.percentile(b["latencies"], 50)
            for a, b in zip(mine, base, strict=True)
        ]
    )


def report(rows: list[dict[str, Any]]) -> int:
    c.heading("the daemon by number of enrolled users")
    c.table(
        [
            "users",
            "verify p50 ms",
            "verify p99 ms",
            "p50 ÷ 1k's",
            "RSS MB",
            "peak RSS MB",
            "db MB",
            "wal MB",
            "start s",
            "enroll/s (socket)",
            "bulk load/s",
        ],
        [
            [
                r["users"],
                r["verify_p50_ms"],
                r["verify_p99_ms"],
                r["p50_ratio_to_smallest"],
                r["rss_mb"],
                r["rss_peak_mb"],
                r["db_mb"],
                r["db_wal_mb"],
                r["startup_seconds"],
                r["socket_enrollments_per_second"],
                r["bulk_load_per_second"],
            ]
            for r in rows
        ],
    )
    c.note(
        "verify: one client, one request at a time, valid codes of users drawn at random, "
        "the sizes in turns; "
        f"answers: {[r['results'] for r in rows]}; p50 ÷ 1k's: the median over rounds of "
        "this size's p50 over the smallest's in the same round"
    )
    c.note(
        "enroll/s: enroll.begin + enroll.confirm through the socket for real accounts; "
        "bulk load/s: rows written by twofad's store code with the daemon stopped"
    )
    c.note(
        "RSS after start → after the run: "
        + ", ".join(f"{r['users']:,}: {r['rss_started_mb']} → {r['rss_mb']} MB" for r in rows)
    )
    first, last = rows[0], rows[-1]
    p50_ratio = last["p50_ratio_to_smallest"]
    p50_met = p50_ratio <= TARGET_P50_RATIO
    rss_met = last["rss_peak_mb"] <= TARGET_RSS_MB
    c.heading("targets")
    c.note(
        f"verify p50 at {last['users']:,} within {TARGET_P50_RATIO:g}× of {first['users']:,}: "
        f"{p50_ratio:.2f}× — {c.verdict(p50_met)}"
    )
    c.note(
        f"RSS at {last['users']:,} ≤ {TARGET_RSS_MB:g} MB: {last['rss_mb']} MB "
        f"(peak {last['rss_peak_mb']} MB) — {c.verdict(rss_met)}"
    )
    c.emit(
        "scale",
        {
            "method": "users bulk-loaded through twofad's store code (daemon stopped); RSS, "
            "verify and enrollment measured on the real daemon process",
            "sizes": rows,
            "targets": {
                "verify_p50_ratio_max": TARGET_P50_RATIO,
                "verify_p50_ratio": round(p50_ratio, 3),
                "verify_p50_met": p50_met,
                "rss_mb_max": TARGET_RSS_MB,
                "rss_met": rss_met,
            },
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
