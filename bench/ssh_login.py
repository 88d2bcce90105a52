"""ssh_login: real SSH logins, OpenSSH client to a test sshd on 127.0.0.1, side by side.

Three sshd processes on 127.0.0.1, each with its own PAM service (an argv[0] symlink,
tests/support/sshd.py) and `AuthenticationMethods publickey,keyboard-interactive:pam`:
the key, then PAM asks for the code — through the pam-twofa hook, through
pam_google_authenticator, or nothing at all (pam_permit). Logins alternate in one run;
each runs `true` and is timed from spawning `ssh` to its exit. The client answers the
prompt through SSH_ASKPASS (SSH_ASKPASS_REQUIRE=force: a tiny script that prints the
code), so no terminal polling adds its own delay.

Run as root: `make bench`, or `.venv/bin/python bench/ssh_login.py [--rounds N]`.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import common as c
from common import Codes, Fresh

from support.sshd import SshServer, authorize_key, ssh_command

TWOFA = "pam-twofa"
GA = "google-authenticator"
PERMIT = "pam_permit"
VARIANTS = (TWOFA, GA, PERMIT)
TARGET_RATIO = 1.08
# As in config/pam.d: pam_succeed_if answers PAM_IGNORE to setcred, skipping the hook there.
SETCRED_JUMP = "auth [ignore=1 default=ignore] pam_succeed_if.so quiet uid >= 0"
ACCOUNT_AND_SESSION = ["account required pam_unix.so", "session required pam_permit.so"]
ASKPASS = """#!/bin/sh
# ssh runs this for each keyboard-interactive prompt (SSH_ASKPASS_REQUIRE=force).
printf '%s\\n' "$BENCH_ANSWER"
"""


def run_ssh(argv: list[str], answer: str, env: dict[str, str]) -> float:
    """Seconds from spawning ssh to its exit; raises if the login failed."""
    environment = {**env, "BENCH_ANSWER": answer}
    started = time.perf_counter()
    proc = subprocess.run(
        argv, env=environment, stdin=subprocess.DEVNULL, capture_output=True, check=False
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(
            f"ssh login failed (exit {proc.returncode}): {proc.stderr.decode(errors='replace')}"
        )
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds (default 30)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--users", type=int, default=24, help="throwaway accounts")
    parser.add_argument("--traced", type=int, default=5, help="logins through a stamped hook")
    args = parser.parse_args()
    c.require_root()
    print("ssh_login: real SSH logins (key, then PAM keyboard-interactive) per PAM module")
    c.note(c.byte_compile_hook())
    env = c.hook_env()
    codes = Codes()
    with (
        c.work_dir("ssh-login") as root,
        c.running_daemon(root) as daemon,
        c.throwaway_users(args.users) as users,
        ExitStack() as stack,
    ):
        askpass = root / "askpass.sh"
        askpass.write_text(ASKPASS)
        askpass.chmod(0o755)
        keys_dir = root / "keys"
        keys_dir.mkdir()
        identities: dict[str, Path] = {}
        ga_secrets: dict[str, str] = {}
        twofa_pool: list[tuple[str, str]] = []
        fresh = Fresh(codes)
        for user in users:
            identities[user.name] = authorize_key(user, keys_dir)
            ga_secrets[user.name] = c.google_authenticator_file(user, disallow_reuse=False)
            secret, spent = c.enroll(daemon, user.name, codes)
            fresh.spend(user.name, spent)
            twofa_pool.append((user.name, secret))
        # pam-twofa's auth lines as config/pam.d/sshd-key-then-code ships them: the
        # pam_succeed_if jump keeps pam_setcred in sshd's monitor from starting Python.
        stacks = {
            TWOFA: [SETCRED_JUMP, c.hook_line(daemon), "auth optional pam_permit.so"],
            GA: ["auth required pam_google_authenticator.so"],
            PERMIT: ["auth required pam_permit.so"],
        }
        servers = {
            name: stack.enter_context(
                SshServer(
                    [*lines, *ACCOUNT_AND_SESSION],
                    authentication_methods="publickey,keyboard-interactive:pam",
                    service_prefix=f"sshd-{c.PAM_PREFIX}",
                    log_level="INFO",
                )
            )
            for name, lines in stacks.items()
        }
        c.note(
            f"{args.users} throwaway accounts, each with an ed25519 key; google-authenticator "
            "files by google-authenticator -t -D -f -u -w 3 (DISALLOW_REUSE off, no rate limit)"
        )
        c.note(
            "sshd: "
            + ", ".join(f"{name} on 127.0.0.1:{server.port}" for name, server in servers.items())
        )
        client_env = {
            **env,
            "SSH_ASKPASS": str(askpass),
            "SSH_ASKPASS_REQUIRE": "force",
        }
        timings: dict[str, list[float]] = {name: [] for name in VARIANTS}
        order = list(VARIANTS)
        rng = random.Random(11)
        for round_no in range(args.warmup + args.rounds):
            rng.shuffle(order)
            for name in order:
                user = users[round_no % len(users)].name
                answer = ""
                if name == TWOFA:
                    index, answer = fresh.take_any(twofa_pool, round_no)
                    user = twofa_pool[index][0]
                elif name == GA:
                    answer = codes.at_step(ga_secrets[user], c.current_step())
                argv = ssh_command(servers[name], user, identity=identities[user], command="true")
                seconds = run_ssh(argv, answer, client_env)
                if round_no >= args.warmup:
                    timings[name].append(seconds)
        stamps = root / "stamps.txt"
        stamped = root / "stamped_hook.py"
        stamped.write_text(c.stamped_hook_text(c.hook_copy_text(), stamps))
        server = stack.enter_context(
            SshServer(
                [
                    SETCRED_JUMP,
                    f"auth required {c.PAM_PYTHON} {stamped} socket={daemon.socket}",
                    "auth optional pam_permit.so",
                    *ACCOUNT_AND_SESSION,
                ],
                authentication_methods="publickey,keyboard-interactive:pam",
                service_prefix=f"sshd-{c.PAM_PREFIX}",
                log_level="INFO",
            )
        )
        traces = []
        for run in range(args.traced):
            index, answer = fresh.take_any(twofa_pool, run)
            user = twofa_pool[index][0]
            offset = stamps.stat().st_size if stamps.exists() else 0
            argv = ssh_command(server, user, identity=identities[user], command="true")
            started = time.monotonic()
            run_ssh(argv, answer, client_env)
            ended = time.monotonic()
            traces.append(trace(c.read_stamps(stamps, offset), started, ended))

    report(args, timings, traces)
    return 0


def trace(stamps: list[tuple[int, str, float]], started: float, ended: float) -> dict[str, float]:
    """Seconds from the ssh spawn to each of a login's hook events, by process."""
    loaded = {pid for pid, event, _ in stamps if event == "loaded"}
    authenticating = {pid for pid, event, _ in stamps if event == "pam_sm_authenticate.start"}
    events: dict[str, float] = {"interpreters": float(len(loaded)), "ssh exits": ended - started}
    for pid, event, when in stamps:
        if pid in authenticating:
            where = "PAM process"
        elif pid in loaded:
            where = "sshd monitor"
        else:
            continue  # a forked child whose interpreter was already running
        key = f"{where}: {event}"
        if key not in events:
            events[key] = when - started
    return events


def report(
    args: argparse.Namespace,
    timings: dict[str, list[float]],
    traces: list[dict[str, float]],
) -> None:
    med = {name: c.median(values) for name, values in timings.items()}
    p95 = {name: c.percentile(values, 95) for name, values in timings.items()}
    c.heading(f"one SSH login, key then code ({args.rounds} rounds each, alternating)")
    c.table(
        ["module", "median ms", "p95 ms", "× google-auth", "× pam_permit", "− google-auth ms"],
        [
            [
                name,
                c.ms(med[name]),
                c.ms(p95[name]),
                c.ratio(med[name], med[GA]),
                c.ratio(med[name], med[PERMIT]),
                c.ms(med[name] - med[GA]),
            ]
            for name in VARIANTS
        ],
    )
    c.note("timed: ssh spawn to exit, running `true`; the code comes from an SSH_ASKPASS script")
    shown = [
        ("PAM process: loaded", "PAM process (auth): hook file running, interpreter up"),
        ("PAM process: imported", "PAM process (auth): hook imports done"),
        ("PAM process: pam_sm_authenticate.start", "PAM process (auth): authenticate called"),
        ("PAM process: pam_sm_authenticate.end", "PAM process (auth): authenticate returns"),
        ("sshd monitor: loaded", "sshd monitor: hook file running again (2nd interpreter)"),
        ("sshd monitor: pam_sm_setcred.start", "sshd monitor: setcred called"),
        ("sshd monitor: pam_sm_setcred.end", "sshd monitor: setcred returns"),
        ("ssh exits", "ssh exits"),
    ]
    c.heading(f"where a pam-twofa SSH login's time goes: stamped hook, {len(traces)} logins")
    interpreters = c.median([t["interpreters"] for t in traces])
    c.table(
        ["event", "ms after ssh spawn (median)"],
        [
            [label, c.ms(c.median([t[key] for t in traces if key in t]))]
            for key, label in shown
            if any(key in t for t in traces)
        ],
    )
    c.note(
        f"interpreters started per login: {interpreters:g} (pam_python initialises Python "
        "in every process that calls into the hook; the shipped PAM lines keep the sshd "
        "monitor's pam_setcred away from it, so only the PAM process for authenticate does)"
    )
    ratio = med[TWOFA] / med[GA]
    met = ratio <= TARGET_RATIO
    c.heading("targets")
    c.note(f"pam-twofa ≤ {TARGET_RATIO:g}× google-authenticator: {ratio:.3f}× — {c.verdict(met)}")
    trace_ms = {
        key: c.ms(c.median([t[key] for t in traces if key in t]))
        for key, _ in shown
        if any(key in t for t in traces)
    }
    c.emit(
        "ssh_login",
        {
            "rounds": args.rounds,
            "method": "ssh spawn to exit (publickey,keyboard-interactive:pam; SSH_ASKPASS "
            "answers); pam_twofa byte-compiled; sshd with a clean environment",
            "google_authenticator_disallow_reuse": False,
            "median_ms": {name: c.ms(value) for name, value in med.items()},
            "p95_ms": {name: c.ms(value) for name, value in p95.items()},
            "ratio_to_google_authenticator": {n: c.ratio(med[n], med[GA]) for n in VARIANTS},
            "ratio_to_pam_permit": {n: c.ratio(med[n], med[PERMIT]) for n in VARIANTS},
            "interpreters_per_login": interpreters,
            "stamped_login_ms_after_spawn": trace_ms,
            "targets": {"ratio_to_google_authenticator_max": TARGET_RATIO, "ratio_met": met},
        },
    )


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
