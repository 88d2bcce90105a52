"""verify_throughput: verifications per second through the real socket, by concurrency.

1, 16, 64 and 256 clients, each a connection with one verify in flight (the next sent as
soon as the answer arrives), against a real twofad with many enrolled users. Half the
requests carry a valid code, half a wrong one, shuffled; each user is sent one of each,
so no user is ever locked out and every valid code is accepted exactly once. Each level
uses users of its own.

The users are written into the daemon's database before it starts, through its own code
(twofad.keys seals the secrets, twofad.store writes the rows and recovery code digests):
enrolling through the socket needs a real system account per user. To keep oathtool's
work small they share 16 secrets; each user's copy is sealed on its own.

Run as root: `make bench`, or `.venv/bin/python bench/verify_throughput.py`.
"""

from __future__ import annotations

import argparse
import random
import sys
from typing import Any

import common as c
from common import Codes

LEVELS = ((1, 2_000), (16, 16_000), (64, 24_000), (256, 24_000))  # (clients, requests)
SECRETS = 16
TARGET_CLIENTS = 64
TARGET_RATE = 10_000.0
TARGET_P99_MS = 5.0


def plan(level: int, requests: int, secrets: list[str], codes: Codes, seed: int) -> list[bytes]:
    """Shuffled verifies for `requests` // 2 users of this level: one valid, one wrong."""
    step = c.current_step()
    messages = []
    for index in range(requests // 2):
        user = f"tp{level}-{index}"
        secret = secrets[index % len(secrets)]
        messages.append(c.verify_request(user, codes.at_step(secret, step), 2 * index))
        messages.append(c.verify_request(user, codes.wrong(secret, step), 2 * index + 1))
    random.Random(seed).shuffle(messages)
    return messages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply request counts")
    parser.add_argument("--max-seconds", type=float, default=20.0, help="cap per level")
    parser.add_argument(
        "--profile-seconds", type=float, default=6.0, help="py-spy at 64 clients (0: none)"
    )
    args = parser.parse_args()
    c.require_root()
    print("verify_throughput: verify requests through the real socket, by concurrency")
    codes = Codes()
    secrets = [c.new_secret() for _ in range(SECRETS)]
    levels = [(clients, int(count * args.scale)) for clients, count in LEVELS]
    results: list[dict[str, Any]] = []
    with c.work_dir("throughput") as root:
        c.prime_state(root)
        profile_requests = int(24_000 * args.scale) if args.profile_seconds and c.py_spy() else 0
        users = [
            (f"tp{clients}-{index}", secrets[index % SECRETS])
            for clients, count in [*levels, (-TARGET_CLIENTS, profile_requests)]
            for index in range(count // 2)
        ]
        daemon = c.Daemon(root, "--policy", str(root / "policy.yaml"))
        loaded_in = c.bulk_load(daemon, users)
        c.note(
            f"{len(users):,} users written to the database through twofad's own store code "
            f"in {loaded_in:.1f} s (8 recovery codes each)"
        )
        with c.running_daemon(root) as daemon:
            assert daemon.proc is not None
            c.note(f"twofad pid {daemon.proc.pid}, {c.daemon_memory(daemon)}")
            for clients, count in levels:
                messages = plan(clients, count, secrets, codes, seed=clients)
                cpu_before = c.cpu_seconds(daemon.proc.pid)
                outcome = c.closed_loop(
                    daemon.socket, iter(messages), clients, max_seconds=args.max_seconds
                )
                cpu_used = c.cpu_seconds(daemon.proc.pid) - cpu_before
                results.append(summarize(clients, count, outcome, cpu_used))
            memory = c.daemon_memory(daemon)
            profile = {}
            if profile_requests:
                messages = plan(-TARGET_CLIENTS, profile_requests, secrets, codes, seed=0)
                profile = c.profile_daemon(
                    daemon.proc.pid,
                    args.profile_seconds,
                    lambda: c.closed_loop(
                        daemon.socket,
                        iter(messages),
                        TARGET_CLIENTS,
                        max_seconds=args.profile_seconds,
                    ),
                )
    return report(results, memory, profile)


def summarize(clients: int, planned: int, outcome: dict[str, Any], cpu: float) -> dict[str, Any]:
    latencies = outcome["latencies"]
    elapsed = outcome["elapsed"]
    return {
        "clients": clients,
        "planned": planned,
        "done": len(latencies),
        "seconds": round(elapsed, 3),
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": c.ms(c.percentile(latencies, 50)),
        "p99_ms": c.ms(c.percentile(latencies, 99)),
        "max_ms": c.ms(max(latencies)),
        "daemon_cpu_percent": round(100.0 * cpu / elapsed, 1),
        "results": outcome["counts"],
    }


def report(results: list[dict[str, Any]], memory: dict[str, float], profile: dict[str, Any]) -> int:
    c.heading("verify through the socket: half valid codes, half wrong (closed loop)")
    c.table(
        ["clients", "requests", "verifies/s", "p50 ms", "p99 ms", "max ms", "daemon CPU %"],
        [
            [
                r["clients"],
                r["done"],
                r["per_second"],
                r["p50_ms"],
                r["p99_ms"],
                r["max_ms"],
                r["daemon_cpu_percent"],
            ]
            for r in results
        ],
    )
    c.heading("answers")
    names = sorted({name for r in results for name in r["results"]})
    c.table(
        ["clients", *names],
        [[r["clients"], *(r["results"].get(name, 0) for name in names)] for r in results],
    )
    c.note("expected: accepted = rejected = requests / 2 (each user: one valid, one wrong code)")
    c.note(f"daemon memory afterwards: {memory}")
    c.print_profile(
        f"where twofad's time goes at {TARGET_CLIENTS} clients (py-spy, share of samples)",
        profile,
    )
    target = next(r for r in results if r["clients"] == TARGET_CLIENTS)
    rate_met = target["per_second"] >= TARGET_RATE
    p99_met = target["p99_ms"] <= TARGET_P99_MS
    c.heading("targets")
    c.note(
        f"at {TARGET_CLIENTS} clients ≥ {TARGET_RATE:,.0f} verifies/s: "
        f"{target['per_second']:,.0f}/s — {c.verdict(rate_met)}"
    )
    c.note(
        f"at {TARGET_CLIENTS} clients p99 ≤ {TARGET_P99_MS:g} ms: {target['p99_ms']:.2f} ms — "
        f"{c.verdict(p99_met)}"
    )
    c.emit(
        "verify_throughput",
        {
            "method": "closed loop, one request in flight per connection, persistent "
            "connections; users bulk-loaded through twofad's store code",
            "levels": results,
            "daemon_memory_mb": memory,
            "profile_64_clients": profile,
            "targets": {
                "clients": TARGET_CLIENTS,
                "per_second_min": TARGET_RATE,
                "per_second_met": rate_met,
                "p99_ms_max": TARGET_P99_MS,
                "p99_met": p99_met,
            },
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
