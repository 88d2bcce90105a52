"""pam_login: one PAM authentication end to end through pamtester, side by side.

Alternating in one run (each round in a new random order): pam-twofa (the hook through
pam_python.so and a real twofad), pam_google_authenticator, pam_oath and pam_permit,
each answering one prompt with a valid code from oathtool; then pam_python with an
empty hook and with the hook's imports only, which split the hook's cost into the
interpreter, its imports, and the daemon round trips. Timed: the pamtester process, from
spawn to exit, with the answer waiting on its standard input (a file).

Run as root: `make bench`, or `.venv/bin/python bench/pam_login.py [--rounds N]`.
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
from typing import Any

import common as c
from common import Codes, Fresh

from support.daemon import Daemon
from support.pam import pam_service
from support.users import TestUser

PAMTESTER = "/usr/bin/pamtester"
TWOFA = "pam-twofa"
GA = "google-authenticator"
OATH = "pam_oath"
PERMIT = "pam_permit"
NAIVE = "naive hook (socket + json)"
EMPTY = "pam_python, empty hook"
IMPORTS = "pam_python, hook's imports only"
VARIANTS = (TWOFA, GA, OATH, PERMIT, NAIVE, EMPTY, IMPORTS)

TARGET_RATIO = 6.0  # pam-twofa / google-authenticator
TARGET_BEYOND_INTERPRETER_MS = 3.0

EMPTY_HOOK = '''\
"""pam_python with nothing to do: what the interpreter alone costs a login."""


def pam_sm_authenticate(pamh, flags, argv):
    return pamh.PAM_SUCCESS


def pam_sm_setcred(pamh, flags, argv):
    return pamh.PAM_SUCCESS
'''

NAIVE_HOOK = '''\
"""The same conversation with twofad, written the obvious way: socket and json."""

import json
import socket


def _request(conn, reader, **message):
    conn.sendall(json.dumps({"v": 1, **message}).encode() + b"\\n")
    reply = json.loads(reader.readline())
    return reply.get("data", {})


def pam_sm_authenticate(pamh, flags, argv):
    path = dict(a.split("=", 1) for a in argv[1:] if "=" in a)["socket"]
    user = pamh.get_user(None)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(5)
        conn.connect(path)
        reader = conn.makefile("rb")
        where = {"service": pamh.service, "rhost": pamh.rhost}
        decision = _request(conn, reader, op="check", user=user, **where)
        if decision.get("action") == "skip":
            return pamh.PAM_SUCCESS
        message = pamh.Message(pamh.PAM_PROMPT_ECHO_OFF, "Verification code: ")
        code = pamh.conversation(message).resp
        reply = _request(conn, reader, op="verify", user=user, code=code, **where)
    return pamh.PAM_SUCCESS if reply.get("result") == "accepted" else pamh.PAM_AUTH_ERR


def pam_sm_setcred(pamh, flags, argv):
    return pamh.PAM_SUCCESS
'''

BENCH_OVERRIDE = """

# --- benchmark: the hook file and its imports, no daemon and no conversation ---------


def pam_sm_authenticate(pamh, flags, argv):  # noqa: F811
    from pam_twofa import entry, login  # noqa: F401  (what the real one imports, first thing)

    return pamh.PAM_SUCCESS
"""


def imports_hook_text() -> str:
    """The real hook with an authenticate that only imports what the real one imports."""
    return c.hook_copy_text() + BENCH_OVERRIDE


def run_pamtester(
    service: str, user: str, answer_file: Path, env: dict[str, str]
) -> tuple[float, float]:
    """Wall seconds from spawning pamtester to its exit, and the CPU seconds it used;
    raises if it did not authenticate."""
    with open(answer_file, "rb") as answer:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [PAMTESTER, service, user, "authenticate"],
            stdin=answer,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"pamtester {service} {user} failed (exit {code})")
    return elapsed, usage.ru_utime + usage.ru_stime


def python_seconds(code: str, runs: int, env: dict[str, str]) -> list[float]:
    """A figure that `code` prints, from `runs` fresh system interpreters."""
    values = []
    for _ in range(runs):
        out = subprocess.run(
            [c.SYSTEM_PYTHON, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        values.append(float(out.stdout.strip()))
    return values


def interpreter_runs(runs: int, env: dict[str, str]) -> list[float]:
    values = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([c.SYSTEM_PYTHON, "-c", "pass"], env=env, check=True)
        values.append(time.perf_counter() - started)
    return values


def import_profile(env: dict[str, str]) -> list[tuple[str, float, float]]:
    """`python3 -X importtime` of what the hook imports: (module, self ms, cumulative ms)."""
    out = subprocess.run(
        [
            c.SYSTEM_PYTHON,
            "-X",
            "importtime",
            "-c",
            f"import sys; sys.path.insert(0, {str(c.REPO)!r}); from pam_twofa import entry, login",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    seen_site = False
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        head, cumulative_us, name = line.split("|", 2)
        self_us = head.rpartition(":")[2]
        if name.strip() == "site":
            seen_site = True
            continue
        if seen_site:
            rows.append((name.rstrip()[1:], int(self_us) / 1000.0, int(cumulative_us) / 1000.0))
    return rows


def run_timeline(
    service: str, user: str, answer_file: Path, env: dict[str, str], stamps: Path
) -> dict[str, float]:
    """One login through a stamped hook: the seconds of each phase."""
    offset = stamps.stat().st_size if stamps.exists() else 0
    with open(answer_file, "rb") as answer:
        spawned = time.monotonic()
        proc = subprocess.Popen(
            [PAMTESTER, service, user, "authenticate"],
            stdin=answer,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        if proc.wait() != 0:
            raise RuntimeError(f"pamtester {service} {user} failed (exit {proc.returncode})")
        exited = time.monotonic()
    marks = {event: t for _pid, event, t in c.read_stamps(stamps, offset)}
    return {
        "start": marks["loaded"] - spawned,
        "imports": marks["imported"] - marks["loaded"],
        "authenticate": marks["pam_sm_authenticate.end"] - marks["pam_sm_authenticate.start"],
        "finalize": exited - marks["finalizing"],
        "other": marks["pam_sm_authenticate.start"]
        - marks["imported"]
        + marks["finalizing"]
        - marks["pam_sm_authenticate.end"],
        "total": exited - spawned,
    }


class Pools:
    """Throwaway accounts, each set up for every module, and who may answer next."""

    def __init__(self, daemon: Daemon, users: list[TestUser], root: Path) -> None:
        self.codes = Codes()
        self.users = users
        self.usersfile = root / "users.oath"
        self.ga: dict[str, str] = {}
        self.twofa: list[tuple[str, str]] = []
        self.oath: list[tuple[str, str]] = []
        self.twofa_fresh = Fresh(self.codes)
        self.oath_fresh = Fresh(self.codes)
        lines = []
        for user in users:
            self.ga[user.name] = c.google_authenticator_file(user, disallow_reuse=False)
            secret, spent = c.enroll(daemon, user.name, self.codes)
            self.twofa_fresh.spend(user.name, spent)
            self.twofa.append((user.name, secret))
            oath_secret = c.new_secret()
            self.oath.append((user.name, oath_secret))
            lines.append(c.oath_line(user.name, oath_secret))
        self.usersfile.write_text("".join(lines))
        self.usersfile.chmod(0o600)

    def twofa_code(self, start: int) -> tuple[str, str]:
        index, code = self.twofa_fresh.take_any(self.twofa, start)
        return self.twofa[index][0], code

    def answer(self, variant: str, round_no: int) -> tuple[str, str]:
        """(user, answer) for one login with `variant`; "" when nothing is asked."""
        user = self.users[round_no % len(self.users)].name
        if variant in (TWOFA, NAIVE):
            return self.twofa_code(round_no)
        if variant == OATH:
            index, code = self.oath_fresh.take_any(self.oath, round_no)
            return self.oath[index][0], code
        if variant == GA:
            return user, self.codes.at_step(self.ga[user], c.current_step())
        return user, ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=60, help="timed rounds (default 60)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--users", type=int, default=100, help="throwaway accounts")
    parser.add_argument("--split-runs", type=int, default=30, help="runs of each part alone")
    args = parser.parse_args()
    c.require_root()
    print("pam_login: one authentication through pamtester, per PAM module")
    c.note(c.byte_compile_hook())
    env = c.hook_env()
    figures: dict[str, Any] = {}
    with (
        c.work_dir("pam-login") as root,
        c.running_daemon(root) as daemon,
        c.throwaway_users(args.users) as users,
        ExitStack() as stack,
    ):
        pools = Pools(daemon, users, root)
        stamps = root / "stamps.txt"
        hooks = {
            "empty_hook.py": EMPTY_HOOK,
            "naive_hook.py": NAIVE_HOOK,
            "imports_hook.py": imports_hook_text(),
            "timeline_empty_hook.py": c.stamped_hook_text(EMPTY_HOOK, stamps),
            "timeline_hook.py": c.stamped_hook_text(c.hook_copy_text(), stamps),
        }
        for file_name, text in hooks.items():
            (root / file_name).write_text(text)
        stacks = {
            TWOFA: c.hook_line(daemon),
            GA: "auth required pam_google_authenticator.so",
            OATH: f"auth required pam_oath.so usersfile={pools.usersfile} window=1 digits=6",
            PERMIT: "auth required pam_permit.so",
            NAIVE: f"auth required {c.PAM_PYTHON} {root / 'naive_hook.py'} socket={daemon.socket}",
            EMPTY: f"auth required {c.PAM_PYTHON} {root / 'empty_hook.py'}",
            IMPORTS: f"auth required {c.PAM_PYTHON} {root / 'imports_hook.py'}",
            "timeline empty": f"auth required {c.PAM_PYTHON} {root / 'timeline_empty_hook.py'}",
            "timeline hook": f"auth required {c.PAM_PYTHON} {root / 'timeline_hook.py'} "
            f"socket={daemon.socket}",
        }
        services = {
            name: stack.enter_context(pam_service(c.PAM_PREFIX, [line]))
            for name, line in stacks.items()
        }
        c.note(
            f"{args.users} throwaway accounts; their google-authenticator files written by "
            "google-authenticator -t -D -f -u -w 3: DISALLOW_REUSE off (one code answers "
            "every round of a time step), no rate limit, window ±1 step"
        )
        c.note(
            "pam-twofa, the naive hook and pam_oath refuse replays: each of their rounds "
            "takes an account with a time step not yet spent"
        )
        answer_file = root / "answer"

        def login(variant: str, round_no: int) -> tuple[float, float]:
            user, answer = pools.answer(variant, round_no)
            answer_file.write_text(answer + "\n" if answer else "")
            return run_pamtester(services[variant], user, answer_file, env)

        timings: dict[str, list[float]] = {name: [] for name in VARIANTS}
        cpu_times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        order = list(VARIANTS)
        rng = random.Random(7)
        for round_no in range(args.warmup + args.rounds):
            rng.shuffle(order)
            for variant in order:
                seconds, cpu = login(variant, round_no)
                if round_no >= args.warmup:
                    timings[variant].append(seconds)
                    cpu_times[variant].append(cpu)
        figures["logins"] = (timings, cpu_times)

        # Where a login's time goes inside pam_python: stamped copies of the hooks.
        timeline: dict[str, list[dict[str, float]]] = {"empty hook": [], "pam-twofa hook": []}
        for run in range(args.split_runs):
            answer_file.write_text("")
            timeline["empty hook"].append(
                run_timeline(services["timeline empty"], "root", answer_file, env, stamps)
            )
            user, code = pools.twofa_code(run)
            answer_file.write_text(code + "\n")
            timeline["pam-twofa hook"].append(
                run_timeline(services["timeline hook"], user, answer_file, env, stamps)
            )
        figures["timeline"] = timeline
        figures["round_trips"] = client_round_trips(daemon, pools, args.split_runs)

    figures["bare"] = interpreter_runs(args.split_runs, env)
    figures["hook_imports"] = python_seconds(
        "import sys, time; t = time.perf_counter(); "
        f"sys.path.insert(0, {str(c.REPO)!r}); from pam_twofa import entry, login; "
        "print(time.perf_counter() - t)",
        args.split_runs,
        env,
    )
    figures["socket_json"] = python_seconds(
        "import time; t = time.perf_counter(); import socket, json; print(time.perf_counter() - t)",
        args.split_runs,
        env,
    )
    figures["profile"] = import_profile(env)
    return report(args, figures)


def client_round_trips(daemon: Daemon, pools: Pools, runs: int) -> dict[str, list[float]]:
    """What the hook asks twofad, through pam_twofa.client: connect, check, verify."""
    from pam_twofa.client import Client

    parts: dict[str, list[float]] = {"connect": [], "check": [], "verify": [], "all": []}
    for run in range(runs):
        user, code = pools.twofa_code(run)
        where = {"service": "bench", "rhost": "127.0.0.1"}
        t0 = time.perf_counter()
        with Client(daemon.socket, timeout=5.0) as client:
            client._connect()  # what request() would do first, timed on its own
            t1 = time.perf_counter()
            client.request("check", user=user, **where)
            t2 = time.perf_counter()
            reply = client.request("verify", user=user, code=code, **where)
            t3 = time.perf_counter()
        if reply.get("result") != "accepted":
            raise RuntimeError(f"round-trip sample not accepted: {reply}")
        parts["connect"].append(t1 - t0)
        parts["check"].append(t2 - t1)
        parts["verify"].append(t3 - t2)
        parts["all"].append(t3 - t0)
    return parts


def report(args: argparse.Namespace, figures: dict[str, Any]) -> int:
    timings, cpu_times = figures["logins"]
    med = {name: c.median(values) for name, values in timings.items()}
    p95 = {name: c.percentile(values, 95) for name, values in timings.items()}
    cpu = {name: c.median(values) for name, values in cpu_times.items()}
    c.heading(f"one authentication through pamtester ({args.rounds} rounds each, alternating)")
    c.table(
        ["module", "median ms", "p95 ms", "× google-auth", "× pam_permit", "CPU ms"],
        [
            [
                name,
                c.ms(med[name]),
                c.ms(p95[name]),
                c.ratio(med[name], med[GA]),
                c.ratio(med[name], med[PERMIT]),
                c.ms(cpu[name]),
            ]
            for name in VARIANTS
        ],
    )
    c.note("wall: pamtester spawn to exit; CPU: pamtester's own user + system time (median)")

    interpreter = med[EMPTY] - med[PERMIT]
    imports = med[IMPORTS] - med[EMPTY]
    daemon_part = med[TWOFA] - med[IMPORTS]
    beyond = med[TWOFA] - med[EMPTY]
    c.heading("the hook's cost, from the medians above")
    c.table(
        ["part", "wall ms", "CPU ms", "how"],
        [
            [
                "interpreter (pam_python, empty hook)",
                c.ms(interpreter),
                c.ms(cpu[EMPTY] - cpu[PERMIT]),
                "empty hook − pam_permit",
            ],
            [
                "hook file compile + imports",
                c.ms(imports),
                c.ms(cpu[IMPORTS] - cpu[EMPTY]),
                "imports-only hook − empty hook",
            ],
            [
                "daemon round trips + prompt",
                c.ms(daemon_part),
                c.ms(cpu[TWOFA] - cpu[IMPORTS]),
                "pam-twofa − imports-only hook",
            ],
            [
                "all beyond the bare interpreter",
                c.ms(beyond),
                c.ms(cpu[TWOFA] - cpu[EMPTY]),
                "pam-twofa − empty hook",
            ],
        ],
    )

    timeline = figures["timeline"]
    phases = ["start", "imports", "authenticate", "other", "finalize", "total"]
    labels = {
        "start": "spawn → hook file running (libpython, init, site, pam_python, compile)",
        "imports": "the hook file's module-level imports",
        "authenticate": "pam_sm_authenticate (pam_twofa imports, round trips, prompt)",
        "other": "pam_python between the calls",
        "finalize": "interpreter finalization → exit",
        "total": "total",
    }
    c.heading(f"inside one login: stamped hooks, monotonic clock ({args.split_runs} runs, medians)")
    c.table(
        ["phase", "empty hook ms", "pam-twofa ms"],
        [
            [
                labels[phase],
                c.ms(c.median([run[phase] for run in timeline["empty hook"]])),
                c.ms(c.median([run[phase] for run in timeline["pam-twofa hook"]])),
            ]
            for phase in phases
        ],
    )

    rt = {name: c.median(values) for name, values in figures["round_trips"].items()}
    c.heading(f"the hook's parts, measured alone ({args.split_runs} runs each, medians)")
    c.table(
        ["part", "ms"],
        [
            ["/usr/bin/python3 -c pass (spawn to exit)", c.ms(c.median(figures["bare"]))],
            [
                "import pam_twofa.entry and .login (byte-compiled)",
                c.ms(c.median(figures["hook_imports"])),
            ],
            ["for comparison: import socket, json", c.ms(c.median(figures["socket_json"]))],
            ["pam_twofa.client: connect", c.ms(rt["connect"])],
            ["pam_twofa.client: check", c.ms(rt["check"])],
            ["pam_twofa.client: verify (accepted)", c.ms(rt["verify"])],
            ["pam_twofa.client: connect + check + verify", c.ms(rt["all"])],
        ],
    )
    c.heading("python3 -X importtime: what the hook imports (one run, after site)")
    c.table(["module", "self ms", "cumulative ms"], [list(row) for row in figures["profile"]])

    ratio = med[TWOFA] / med[GA]
    ratio_met = ratio <= TARGET_RATIO
    beyond_met = beyond * 1000 <= TARGET_BEYOND_INTERPRETER_MS
    c.heading("targets")
    c.note(
        f"pam-twofa ≤ {TARGET_RATIO:g}× google-authenticator: {ratio:.2f}× — {c.verdict(ratio_met)}"
        f" (pam_python with an empty hook alone: {med[EMPTY] / med[GA]:.2f}×;"
        f" the naive hook: {med[NAIVE] / med[GA]:.2f}×)"
    )
    c.note(
        f"hook beyond the bare interpreter ≤ {TARGET_BEYOND_INTERPRETER_MS:g} ms: "
        f"{beyond * 1000:.2f} ms — {c.verdict(beyond_met)}"
    )
    c.emit(
        "pam_login",
        {
            "rounds": args.rounds,
            "method": "pamtester spawn to exit, the answer on stdin; pam_twofa byte-compiled; "
            "clean environment",
            "google_authenticator_disallow_reuse": False,
            "median_ms": {name: c.ms(value) for name, value in med.items()},
            "p95_ms": {name: c.ms(value) for name, value in p95.items()},
            "cpu_median_ms": {name: c.ms(value) for name, value in cpu.items()},
            "ratio_to_google_authenticator": {n: c.ratio(med[n], med[GA]) for n in VARIANTS},
            "ratio_to_pam_permit": {n: c.ratio(med[n], med[PERMIT]) for n in VARIANTS},
            "hook_split_ms": {
                "interpreter": c.ms(interpreter),
                "imports": c.ms(imports),
                "daemon_round_trips": c.ms(daemon_part),
                "beyond_interpreter": c.ms(beyond),
            },
            "timeline_ms": {
                hook: {phase: c.ms(c.median([r[phase] for r in runs])) for phase in phases}
                for hook, runs in timeline.items()
            },
            "alone_ms": {
                "python_c_pass": c.ms(c.median(figures["bare"])),
                "import_pam_twofa_entry": c.ms(c.median(figures["hook_imports"])),
                "import_socket_json": c.ms(c.median(figures["socket_json"])),
                **{f"client_{name}": c.ms(value) for name, value in rt.items()},
            },
            "targets": {
                "ratio_to_google_authenticator_max": TARGET_RATIO,
                "ratio_met": ratio_met,
                "beyond_interpreter_ms_max": TARGET_BEYOND_INTERPRETER_MS,
                "beyond_interpreter_met": beyond_met,
            },
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
