"""local_flood: one unprivileged local user floods twofad; the logins root waits on stay prompt.

A throwaway account with no rights at all runs the flood as itself (tests/support/flood.py):
two processes of 32 connections each, every connection with 8 requests in flight — set-ups
of its own account for half of them (a QR code each, until rate_limited), its status, what
the policy says about it, what a login would do, and one garbage line in 32 — and a third
process opening and closing connections in a loop. The daemon lets a uid hold 32
connections, so the second process's extra ones are refused (`busy`) and it reconnects at
once. A second flood splits the 32 as 16 + 16; a third is the 2 × 32 pipelines without the
connect/close loop, to tell the two attacks apart. Meanwhile root, as the PAM stack does,
measures:

(a) a hook-like login every 100 ms: a new connection, `check`, then `verify` with a valid
    code for an enrolled account (codes from oathtool);
(b) `twofactl unlock USER`, the whole command's wall time;
(c) real logins through pamtester, pam_python.so and the hook: wrong codes under
    `fail=open` (how many get in: a hook that times out lets them in) and right codes
    under `fail=secure` (how many are refused).

Each is measured without the flood first. The accounts for (a) are written into the
database before the daemon starts (many fresh codes are needed; see verify_throughput.py);
those for (c) and (b) are real accounts enrolled through the socket.

Run as root: `make bench`, or `.venv/bin/python bench/local_flood.py`.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import common as c
from common import Codes, Fresh

from pam_twofa.client import Client, ClientError
from support import flood
from support.cli import twofactl
from support.daemon import Daemon
from support.pam import pam_service
from support.users import TestUser

PAMTESTER = "/usr/bin/pamtester"
SECRETS = 16
INTERVAL = 0.1
HOOK_TIMEOUT = 5.0  # the hook's default timeout=
OVERRUN = 30.0  # seconds a measurement may run past its plan when the daemon stalls
TARGET_P99_MS = 20.0
NO_FLOOD = "no flood"
PROFILED = "2 × 32 conns + churn"
# name: connections of each pipelining process, and whether a third one opens and closes
# connections in a loop. The last is the pipelines alone, to tell the two attacks apart.
FLOODS: dict[str, tuple[tuple[int, ...], bool]] = {
    "2 × 32 conns + churn": ((32, 32), True),
    "16 + 16 conns + churn": ((16, 16), True),
    "2 × 32 conns, no churn": ((32, 32), False),
}


# --------------------------------------------------------------------------- root's measurements


def hook_logins(
    socket_path: str, pool: list[tuple[str, str]], codes: Codes, seconds: float
) -> dict[str, Any]:
    """One login every INTERVAL as the hook makes it: connect, check, verify, with the
    hook's time-out; each time as the next bulk-loaded account, so every code is fresh
    and must be accepted. A login that times out is one fail=open would let through."""
    verify_times, login_times, results = [], [], []
    start = time.monotonic()
    attempts = 0
    for attempt in range(int(seconds / INTERVAL)):
        if time.monotonic() > start + seconds + OVERRUN:
            break
        attempts += 1
        pause = start + attempt * INTERVAL - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        user, secret = pool.pop()
        code = codes.at_step(secret, c.current_step())
        where = {"service": "sshd", "rhost": "127.0.0.1"}
        t0 = time.perf_counter()
        t1 = t0
        try:
            with Client(socket_path, timeout=HOOK_TIMEOUT) as client:
                client.request("check", user=user, **where)
                t1 = time.perf_counter()
                reply = client.request("verify", user=user, code=code, **where)
                result = str(reply.get("result"))
        except ClientError as exc:
            result = f"failed: {type(exc).__name__}"
        t2 = time.perf_counter()
        verify_times.append(t2 - t1)
        login_times.append(t2 - t0)
        results.append(result)
    return {
        "attempts": attempts,
        "accepted": results.count("accepted"),
        "failed": sum(1 for result in results if result.startswith("failed")),
        "verify_p50_ms": c.ms(c.percentile(verify_times, 50)),
        "verify_p99_ms": c.ms(c.percentile(verify_times, 99)),
        "verify_max_ms": c.ms(max(verify_times, default=float("nan"))),
        "login_p50_ms": c.ms(c.percentile(login_times, 50)),
        "login_p99_ms": c.ms(c.percentile(login_times, 99)),
        "login_max_ms": c.ms(max(login_times, default=float("nan"))),
    }


def unlocks(socket_path: str, users: list[str]) -> dict[str, Any]:
    """`twofactl unlock USER` for each user: wall time of the whole command, and whether
    it succeeded (its client gives up after 5 s, as any twofactl command)."""
    times, failed = [], 0
    for user in users:
        t0 = time.perf_counter()
        done = twofactl(socket_path, "unlock", user)
        times.append(time.perf_counter() - t0)
        failed += done.returncode != 0
    return {
        "runs": len(users),
        "failed": failed,
        "p50_ms": c.ms(c.percentile(times, 50)),
        "max_ms": c.ms(max(times, default=float("nan"))),
    }


def pamtester(service: str, user: str, answer: str, answer_file: Path) -> tuple[bool, float]:
    """One authentication through the real pamtester, the answer on its standard input:
    (authenticated, wall seconds)."""
    answer_file.write_text(answer + "\n")
    with open(answer_file, "rb") as stdin:
        t0 = time.perf_counter()
        done = subprocess.run(
            [PAMTESTER, service, user, "authenticate"],
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=c.hook_env(),
            timeout=120,
            check=False,
        )
        elapsed = time.perf_counter() - t0
    return done.returncode == 0, elapsed


class Accounts:
    """The real, enrolled accounts for pamtester and twofactl, and their fresh codes."""

    def __init__(self, daemon: Daemon, users: list[TestUser], codes: Codes) -> None:
        self.codes = codes
        self.fresh = Fresh(codes)
        self.secrets: dict[str, str] = {}
        for user in users:
            secret, spent = c.enroll(daemon, user.name, codes)
            self.fresh.spend(user.name, spent)
            self.secrets[user.name] = secret
        self.names = [user.name for user in users]
        self.turn = 0

    def wrong(self) -> tuple[str, str]:
        user = self.names[self.turn % len(self.names)]
        self.turn += 1
        return user, self.codes.wrong(self.secrets[user], c.current_step())

    def right(self) -> tuple[str, str]:
        index, code = self.fresh.take_any(list(self.secrets.items()), self.turn)
        self.turn += 1
        return self.names[index], code


def pam_logins(
    services: dict[str, str], accounts: Accounts, count: int, answer_file: Path
) -> dict[str, Any]:
    """`count` wrong codes under fail=open, then `count` right ones under fail=secure
    (fewer if the daemon stalls so long that they would overrun by OVERRUN seconds)."""
    deadline = time.monotonic() + OVERRUN + count * 0.5
    let_in, wrong_times, wrong_users = 0, [], []
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        user, code = accounts.wrong()
        ok, seconds = pamtester(services["open"], user, code, answer_file)
        let_in += ok
        wrong_times.append(seconds)
        wrong_users.append(user)
    refused, right_times = 0, []
    deadline = time.monotonic() + OVERRUN + count * 0.5
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        user, code = accounts.right()
        ok, seconds = pamtester(services["secure"], user, code, answer_file)
        refused += not ok
        right_times.append(seconds)
    return {
        "wrong_under_fail_open": len(wrong_times),
        "wrong_let_in": let_in,
        "wrong_p50_ms": c.ms(c.percentile(wrong_times, 50)),
        "wrong_max_ms": c.ms(max(wrong_times, default=float("nan"))),
        "right_under_fail_secure": len(right_times),
        "right_refused": refused,
        "right_p50_ms": c.ms(c.percentile(right_times, 50)),
        "right_max_ms": c.ms(max(right_times, default=float("nan"))),
        "users_with_wrong_codes": sorted(set(wrong_users)),
    }


# --------------------------------------------------------------------------- the phases


def flood_configs(
    socket_path: str, user: str, shape: tuple[tuple[int, ...], bool], depth: int
) -> list[Any]:
    """The flooders' configurations: the pipelines first, then the churn if any."""
    split, churning = shape
    lines = flood.mixed_lines(user)
    pipelines = [flood.pipeline(socket_path, lines, connections, depth) for connections in split]
    return pipelines + ([flood.churn(socket_path)] if churning else [])


def phase(
    daemon: Daemon,
    args: argparse.Namespace,
    pool: list[tuple[str, str]],
    accounts: Accounts,
    services: dict[str, str],
    answer_file: Path,
) -> dict[str, Any]:
    """Root's three measurements, one after the other: PAM logins, unlocks, hook logins."""
    logins = pam_logins(services, accounts, args.logins, answer_file)
    unlocked = unlocks(daemon.socket, logins.pop("users_with_wrong_codes")[: args.unlocks])
    hook = hook_logins(daemon.socket, pool, accounts.codes, args.seconds)
    return {"hook": hook, "unlock": unlocked, "pam": logins}


def flooded_phase(
    daemon: Daemon,
    flooder: TestUser,
    shape: tuple[tuple[int, ...], bool],
    args: argparse.Namespace,
    measure: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`measure()` while the user floods; (its figures, the flood's figures)."""
    assert daemon.proc is not None
    configs = flood_configs(daemon.socket, flooder.name, shape, args.depth)
    cpu_before = c.cpu_seconds(daemon.proc.pid)
    started = time.monotonic()
    with flood.flooding(flooder.uid, flooder.gid, flooder.home, configs) as flooders:
        time.sleep(1.0)  # every connection is open and full
        figures = measure()
    elapsed = time.monotonic() - started
    cpu = c.cpu_seconds(daemon.proc.pid) - cpu_before
    pipelines = [f for f in flooders if f.config["mode"] == "pipeline"]
    churns = [f for f in flooders if f.config["mode"] == "churn"]
    summed = flood.total(pipelines)
    seconds = max(f.figures["seconds"] for f in pipelines)
    answers = {key.split(".", 1)[1]: n for key, n in summed.items() if key.startswith("answers.")}
    flood_figures = {
        "processes": [f.figures for f in flooders],
        "sent": summed["sent"],
        "answered": summed["answered"],
        "answered_per_second": round(summed["answered"] / seconds),
        "answers": answers,
        "connects": summed["connects"],
        "closed_by_daemon": summed["closed_by_daemon"],
        "churn_connects": sum(f.figures["connects"] for f in churns),
        "churn_connect_errors": sum(f.figures["connect_errors"] for f in churns),
        "seconds": round(seconds, 1),
        "daemon_cpu_percent": round(100 * cpu / elapsed, 1),
    }
    return figures, flood_figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="hook logins per phase")
    parser.add_argument("--logins", type=int, default=10, help="pamtester logins of each kind")
    parser.add_argument("--unlocks", type=int, default=5)
    parser.add_argument("--depth", type=int, default=8, help="requests in flight per connection")
    parser.add_argument("--accounts", type=int, default=12, help="real enrolled accounts")
    parser.add_argument("--profile-seconds", type=float, default=5.0, help="py-spy (0: none)")
    args = parser.parse_args()
    c.require_root()
    # A stop by signal still removes the accounts, the PAM files and the processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("local_flood: stopped by SIGTERM"))
    print("local_flood: one unprivileged user floods twofad; root's logins are measured")
    c.note(c.byte_compile_hook())
    codes = Codes()
    secrets = [c.new_secret() for _ in range(SECRETS)]
    phases = 1 + len(FLOODS) + (1 if args.profile_seconds else 0)
    needed = int(phases * (args.seconds + 1) / INTERVAL) + 50
    bulk = [(f"hooked-{i}", secrets[i % SECRETS]) for i in range(needed)]
    results: dict[str, dict[str, Any]] = {}
    floods: dict[str, dict[str, Any]] = {}
    profile: dict[str, Any] = {}
    with (
        c.work_dir("local-flood") as root,
        c.throwaway_users(args.accounts + 1) as users,
        ExitStack() as stack,
    ):
        flooder, enrolled = users[0], users[1:]
        c.prime_state(root)
        c.bulk_load(Daemon(root, "--policy", str(root / "policy.yaml")), bulk)
        daemon = stack.enter_context(c.running_daemon(root))
        accounts = Accounts(daemon, enrolled, codes)
        services = {
            kind: stack.enter_context(
                pam_service(c.PAM_PREFIX, [c.hook_line(daemon, f"fail={kind}")])
            )
            for kind in ("open", "secure")
        }
        c.note(
            f"{len(bulk)} accounts written through twofad's store code for the hook-like "
            f"logins; {len(enrolled)} real accounts enrolled for pamtester and twofactl; "
            f"the flood runs as {flooder.name} (uid {flooder.uid}), who has no rights"
        )
        answer_file = root / "answer"
        pool = list(reversed(bulk))

        def measure() -> dict[str, Any]:
            return phase(daemon, args, pool, accounts, services, answer_file)

        results[NO_FLOOD] = measure()
        for name, shape in FLOODS.items():
            results[name], floods[name] = flooded_phase(daemon, flooder, shape, args, measure)
        if args.profile_seconds and c.py_spy():
            assert daemon.proc is not None
            configs = flood_configs(daemon.socket, flooder.name, FLOODS[PROFILED], args.depth)
            with flood.flooding(flooder.uid, flooder.gid, flooder.home, configs):
                time.sleep(1.0)
                profile = c.profile_daemon(
                    daemon.proc.pid,
                    args.profile_seconds,
                    lambda: hook_logins(daemon.socket, pool, codes, args.profile_seconds - 1),
                )
    return report(args, results, floods, profile)


# --------------------------------------------------------------------------- the report


def report(
    args: argparse.Namespace,
    results: dict[str, dict[str, Any]],
    floods: dict[str, dict[str, Any]],
    profile: dict[str, Any],
) -> int:
    c.heading(f"(a) root's hook-like logins, one every {INTERVAL * 1000:.0f} ms")
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
            "login max ms",
        ],
        [
            [
                name,
                r["hook"]["attempts"],
                r["hook"]["accepted"],
                r["hook"]["verify_p50_ms"],
                r["hook"]["verify_p99_ms"],
                r["hook"]["verify_max_ms"],
                r["hook"]["login_p50_ms"],
                r["hook"]["login_p99_ms"],
                r["hook"]["login_max_ms"],
            ]
            for name, r in results.items()
        ],
    )
    c.note("login = new connection + check + verify, as the hook does")
    c.heading("(b) twofactl unlock USER, the whole command")
    c.table(
        ["", "runs", "failed", "p50 ms", "max ms"],
        [
            [name, *(r["unlock"][key] for key in ("runs", "failed", "p50_ms", "max_ms"))]
            for name, r in results.items()
        ],
    )
    c.heading("(c) pamtester through pam_python.so and the hook (timeout 5 s)")
    c.table(
        [
            "",
            "wrong, fail=open",
            "let in",
            "p50 ms",
            "max ms",
            "right, fail=secure",
            "refused",
            "p50 ms",
            "max ms",
        ],
        [
            [
                name,
                r["pam"]["wrong_under_fail_open"],
                r["pam"]["wrong_let_in"],
                r["pam"]["wrong_p50_ms"],
                r["pam"]["wrong_max_ms"],
                r["pam"]["right_under_fail_secure"],
                r["pam"]["right_refused"],
                r["pam"]["right_p50_ms"],
                r["pam"]["right_max_ms"],
            ]
            for name, r in results.items()
        ],
    )
    c.heading(f"the flood: one unprivileged uid, {args.depth} requests in flight per connection")
    c.table(
        [
            "",
            "answered",
            "per second",
            "ok",
            "rate_limited",
            "busy",
            "bad_request",
            "other",
            "connects",
            "churn connects",
            "daemon CPU %",
        ],
        [
            [
                name,
                f["answered"],
                f["answered_per_second"],
                f["answers"].get("ok", 0),
                f["answers"].get("rate_limited", 0),
                f["answers"].get("busy", 0),
                f["answers"].get("bad_request", 0),
                sum(
                    n
                    for kind, n in f["answers"].items()
                    if kind not in ("ok", "rate_limited", "busy", "bad_request")
                ),
                f["connects"],
                f["churn_connects"],
                f["daemon_cpu_percent"],
            ]
            for name, f in floods.items()
        ],
    )
    c.note(
        "busy: connections past the per-uid cap (32), refused and reopened at once; "
        "bad_request: the garbage lines (1 in 32), each ending its connection"
    )
    if args.profile_seconds:
        c.print_profile(f"where twofad's time goes under the {PROFILED} flood (py-spy)", profile)

    flooded = [results[name] for name in FLOODS]
    worst_p99 = max(r["hook"]["verify_p99_ms"] for r in flooded)
    let_in = sum(r["pam"]["wrong_let_in"] for r in flooded)
    refused = sum(r["pam"]["right_refused"] for r in flooded)
    unlock_failed = sum(r["unlock"]["failed"] for r in flooded)
    rate_limited = all(f["answers"].get("rate_limited", 0) > 0 for f in floods.values())
    rows = [
        [
            "root's verify p99 under the flood",
            f"≤ {TARGET_P99_MS:g} ms",
            f"{worst_p99:.2f} ms",
            c.verdict(worst_p99 <= TARGET_P99_MS),
        ],
        ["wrong codes let in under fail=open", "0", let_in, c.verdict(let_in == 0)],
        ["honest logins refused under fail=secure", "0", refused, c.verdict(refused == 0)],
        ["twofactl unlock failures", "0", unlock_failed, c.verdict(unlock_failed == 0)],
        ["the flood's set-ups rate_limited", "yes", rate_limited, c.verdict(rate_limited)],
    ]
    c.heading("targets (the worst of the floods)")
    c.table(["", "target", "measured", ""], rows)
    c.emit(
        "local_flood",
        {
            "depth": args.depth,
            "floods": {
                name: {"connections": list(split), "churn": churning}
                for name, (split, churning) in FLOODS.items()
            },
            "interval_ms": INTERVAL * 1000,
            "results": results,
            "flood": floods,
            "profile_under_flood": profile,
            "targets": {
                "root_verify_p99_ms_max": TARGET_P99_MS,
                "root_verify_p99_ms": worst_p99,
                "wrong_let_in": let_in,
                "right_refused": refused,
                "unlock_failed": unlock_failed,
                "rate_limited": rate_limited,
                "met": all(row[-1] == "MET" for row in rows),
            },
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
