"""storm: a flood of wrong codes at full rate, and one honest login every 100 ms.

A flood process keeps 64 connections (by default) busy with verifies of wrong codes for
100 users, each sent as soon as the previous answer arrives: the daemon's full rate,
locking those users out over and over. Meanwhile an honest client logs in every 100 ms
as the hook does — a new connection, `check`, then `verify` with a valid code — each
time as another user (so every one of its codes is fresh and must be accepted). Its
latencies are measured first without the flood, then under it, then under a
different flood: one connection writing thousands of wrong codes at a time without
waiting for the answers.

Users are written into the database before the daemon starts, through twofad's own
store code (see verify_throughput.py for why).

Run as root: `make bench`, or `.venv/bin/python bench/storm.py`.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import random
import socket
import sys
import threading
import time
from typing import Any

import common as c
from common import Codes

from pam_twofa.client import Client

VICTIMS = 100
SECRETS = 16
INTERVAL = 0.1
TARGET_P99_MS = 20.0


def flood(socket_path: str, messages: list[bytes], clients: int, seconds: float, out: Any) -> None:
    """In its own process: wrong codes as fast as twofad answers, for `seconds`."""
    outcome = c.closed_loop(socket_path, itertools.cycle(messages), clients, max_seconds=seconds)
    out.send(
        {
            "done": len(outcome["latencies"]),
            "seconds": outcome["elapsed"],
            "counts": outcome["counts"],
            "p50_ms": c.ms(c.percentile(outcome["latencies"], 50)),
            "p99_ms": c.ms(c.percentile(outcome["latencies"], 99)),
        }
    )
    out.close()


def pipelined_flood(socket_path: str, messages: list[bytes], seconds: float, out: Any) -> None:
    """In its own process: one connection writing its wrong codes in batches of 2,000,
    never waiting for answers (a thread reads them), for `seconds`."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(socket_path)
    batch = b"".join(messages[:2000])
    answered = 0

    def read_answers() -> None:
        nonlocal answered
        while chunk := sock.recv(1 << 20):
            answered += chunk.count(b"\n")

    reader = threading.Thread(target=read_answers, daemon=True)
    reader.start()
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < seconds:
        sock.sendall(batch)
        sent += 2000
    sock.shutdown(socket.SHUT_WR)
    reader.join(60)
    elapsed = time.monotonic() - start
    out.send({"sent": sent, "answered": answered, "seconds": elapsed})
    out.close()


def honest(
    socket_path: str, users: list[tuple[str, str]], codes: Codes, seconds: float
) -> dict[str, Any]:
    """One login every INTERVAL: connect, check, verify; each as the next honest user."""
    verify_times, login_times, results = [], [], []
    start = time.monotonic()
    attempts = int(seconds / INTERVAL)
    for attempt in range(attempts):
        pause = start + attempt * INTERVAL - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        user, secret = users.pop()
        code = codes.at_step(secret, c.current_step())
        where = {"service": "sshd", "rhost": "127.0.0.1"}
        t0 = time.perf_counter()
        with Client(socket_path, timeout=10.0) as client:
            client.request("check", user=user, **where)
            t1 = time.perf_counter()
            reply = client.request("verify", user=user, code=code, **where)
            t2 = time.perf_counter()
        verify_times.append(t2 - t1)
        login_times.append(t2 - t0)
        results.append(reply.get("result"))
    return {
        "attempts": attempts,
        "accepted": results.count("accepted"),
        "verify_p50_ms": c.ms(c.percentile(verify_times, 50)),
        "verify_p99_ms": c.ms(c.percentile(verify_times, 99)),
        "verify_max_ms": c.ms(max(verify_times)),
        "login_p50_ms": c.ms(c.percentile(login_times, 50)),
        "login_p99_ms": c.ms(c.percentile(login_times, 99)),
        "login_max_ms": c.ms(max(login_times)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flood-clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=15.0, help="honest logins under flood")
    parser.add_argument("--baseline-seconds", type=float, default=5.0)
    parser.add_argument("--profile-seconds", type=float, default=5.0, help="py-spy (0: none)")
    parser.add_argument(
        "--pipelined-seconds", type=float, default=5.0, help="one pipelining client (0: none)"
    )
    args = parser.parse_args()
    c.require_root()
    print("storm: honest logins while a flood of wrong codes runs at the daemon's full rate")
    codes = Codes()
    secrets = [c.new_secret() for _ in range(SECRETS)]
    logging_in = (
        args.seconds + args.baseline_seconds + args.pipelined_seconds + args.profile_seconds
    )
    honest_needed = int((logging_in + 2) / INTERVAL) + 20
    honest_users = [(f"honest-{i}", secrets[i % SECRETS]) for i in range(honest_needed)]
    victims = [(f"victim-{i}", secrets[i % SECRETS]) for i in range(VICTIMS)]
    step = c.current_step()
    rng = random.Random(3)
    flood_messages = [
        c.verify_request(name, codes.wrong(secret, step), index)
        for index, (name, secret) in enumerate(rng.choice(victims) for _ in range(20_000))
    ]
    context = multiprocessing.get_context("fork")
    with c.work_dir("storm") as root:
        c.prime_state(root)
        daemon = c.Daemon(root, "--policy", str(root / "policy.yaml"))
        c.bulk_load(daemon, honest_users + victims)
        c.note(
            f"{len(honest_users)} honest users and {VICTIMS} attacked users written through "
            "twofad's store code"
        )
        with c.running_daemon(root) as daemon:
            assert daemon.proc is not None
            pid = daemon.proc.pid
            pool = list(reversed(honest_users))
            baseline = honest(daemon.socket, pool, codes, args.baseline_seconds)
            receive, send = context.Pipe(duplex=False)
            flooder = context.Process(
                target=flood,
                args=(daemon.socket, flood_messages, args.flood_clients, args.seconds + 1, send),
            )
            cpu_before = c.cpu_seconds(pid)
            flooder.start()
            time.sleep(0.5)  # the flood is at full rate
            under = honest(daemon.socket, pool, codes, args.seconds)
            flood_figures = receive.recv()
            flooder.join(30)
            cpu = c.cpu_seconds(pid) - cpu_before
            profile: dict[str, Any] = {}
            if args.profile_seconds and c.py_spy():
                extra = context.Process(
                    target=flood,
                    args=(
                        daemon.socket,
                        flood_messages,
                        args.flood_clients,
                        args.profile_seconds + 1,
                        send,
                    ),
                )
                profile = c.profile_daemon(
                    pid,
                    args.profile_seconds,
                    lambda: (extra.start(), honest(daemon.socket, pool, codes, 1.0)),
                )
                extra.join(30)
            pipelined_figures: dict[str, Any] = {}
            if args.pipelined_seconds:
                receive_pipelined, send_pipelined = context.Pipe(duplex=False)
                pipelined = context.Process(
                    target=pipelined_flood,
                    args=(
                        daemon.socket,
                        flood_messages,
                        args.pipelined_seconds + 1,
                        send_pipelined,
                    ),
                )
                pipelined.start()
                time.sleep(0.5)
                pipelined_figures = honest(daemon.socket, pool, codes, args.pipelined_seconds)
                pipelined_figures["flood"] = receive_pipelined.recv()
                pipelined.join(60)
            flood_figures["per_second"] = round(flood_figures["done"] / flood_figures["seconds"])
            flood_figures["daemon_cpu_percent"] = round(100 * cpu / flood_figures["seconds"], 1)
    return report(args, baseline, under, flood_figures, profile, pipelined_figures)


def report(
    args: argparse.Namespace,
    baseline: dict[str, Any],
    under: dict[str, Any],
    flood_figures: dict[str, Any],
    profile: dict[str, Any],
    pipelined: dict[str, Any],
) -> int:
    c.heading(f"the honest client: one login every {INTERVAL * 1000:.0f} ms")
    c.table(
        [
            "",
            "logins",
            "accepted",
            "verify p50 ms",
            "verify p99 ms",
            "verify max ms",
            "login p50 ms",
            "login p99 ms",
        ],
        [
            [
                name,
                figures["attempts"],
                figures["accepted"],
                figures["verify_p50_ms"],
                figures["verify_p99_ms"],
                figures["verify_max_ms"],
                figures["login_p50_ms"],
                figures["login_p99_ms"],
            ]
            for name, figures in (
                ("no flood", baseline),
                ("under the flood", under),
                *((("under a pipelined flood", pipelined),) if pipelined else ()),
            )
        ],
    )
    c.note("login = connect + check + verify, as the hook does")
    if pipelined:
        flood = pipelined["flood"]
        c.note(
            f"pipelined flood: one connection writing 2,000 wrong codes at a time without "
            f"waiting; {flood['answered']:,} answered in {flood['seconds']:.1f} s"
        )
    c.heading(f"the flood: {args.flood_clients} connections, wrong codes for {VICTIMS} users")
    c.table(
        ["verifies", "seconds", "per second", "p50 ms", "p99 ms", "daemon CPU %", "answers"],
        [
            [
                flood_figures["done"],
                round(flood_figures["seconds"], 2),
                flood_figures["per_second"],
                flood_figures["p50_ms"],
                flood_figures["p99_ms"],
                flood_figures["daemon_cpu_percent"],
                " ".join(f"{k}={v}" for k, v in sorted(flood_figures["counts"].items())),
            ]
        ],
    )
    c.print_profile("where twofad's time goes under the flood (py-spy, share of samples)", profile)
    met = under["verify_p99_ms"] <= TARGET_P99_MS
    c.heading("targets")
    c.note(
        f"honest verify p99 under the flood ≤ {TARGET_P99_MS:g} ms: "
        f"{under['verify_p99_ms']:.2f} ms — {c.verdict(met)}"
    )
    if under["accepted"] != under["attempts"]:
        c.note(f"NOTE: only {under['accepted']} of {under['attempts']} honest logins accepted")
    c.emit(
        "storm",
        {
            "flood_clients": args.flood_clients,
            "victims": VICTIMS,
            "interval_ms": INTERVAL * 1000,
            "honest_without_flood": baseline,
            "honest_under_flood": under,
            "flood": flood_figures,
            "honest_under_pipelined_flood": pipelined,
            "profile_under_flood": profile,
            "targets": {"honest_verify_p99_ms_max": TARGET_P99_MS, "met": met},
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
