"""fleet: verify throughput on SQLite and on one PostgreSQL database shared by 1, 2, 4 daemons.

Side by side in one run, 64 client connections in all, each with one verify in flight
(the next sent as soon as the answer arrives), half valid codes and half wrong:

- one twofad on SQLite, the default store;
- 1, 2 and 4 twofad processes on one PostgreSQL database (``--store CONNINFO``), each
  with its own socket and state directory and all with one key file, as a fleet's
  hosts have; the 64 connections are split evenly across them;
- PostgreSQL's own floor (bench/pg_floor.py): ``SELECT 1`` through psycopg (the driver
  the daemon uses), a verify's own statements through twofad's store code with no
  daemon, and pgbench (C libpq) running the same statements from as many connections
  as four daemons hold.

The server is a throwaway one made by the tests' harness (tests/support/postgres.py),
reached over 127.0.0.1 with the password in a libpq password file, and destroyed at the
end. The users are written with the daemons stopped through twofad's own store code
(the PostgreSQL store's and the SQLite store's own writes, secrets sealed with the
fleet's key file): enrolling through the socket needs a real system account per user.
Each user takes one valid and one wrong code per measurement, never a time step it has
spent, so every valid code is accepted and nobody is locked out; a user serves a
measurement again once a fresh step is open to it.

The configurations take turns, a new order each round, so the machine's busy moments
fall on all of them alike; each reports the CPU its daemons, the PostgreSQL server (all
its processes) and this client used, per verify. A py-spy profile of one daemon of four
shows where a daemon's time goes.

Run as root: `make bench`, or `.venv/bin/python bench/fleet.py`.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import secrets
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import common as c
from common import Codes
from pg_floor import pgbench_floor, postgres_cpu, python_floor

from support.daemon import Daemon
from support.postgres import Cluster

CLIENTS = 64
FLEETS = (1, 2, 4)
SECRETS = 16
FLOOR_USERS = CLIENTS  # rows of their own for the floor's writes: fl-0 .. fl-63
TARGET_P50_RATIO = 2.0
TARGET_RATE = 5_000.0
SQLITE = "sqlite"
VERIFY_PARTS = ("event_loops", "workers", "daemons", "daemons_kernel", "postgres", "client")
CPU_PARTS = (*VERIFY_PARTS, "others", "machine")


def pg_name(daemons: int) -> str:
    return f"postgres×{daemons}"


# --------------------------------------------------------------------------- users


@dataclass
class Plan:
    """Shuffled verifies, and for each a valid code's (user, step) or None (a wrong one)."""

    messages: list[bytes]
    valid: list[tuple[str, int] | None]
    short: bool = False  # fewer users had a fresh step than were asked for


@dataclass
class Accounts:
    """One store's enrolled users and the newest step each has spent at the daemons."""

    users: list[tuple[str, str]]
    spent: dict[str, int] = field(default_factory=dict)
    cursor: int = 0

    def plan(self, pairs: int, codes: Codes, rng: random.Random) -> Plan:
        """Up to `pairs` users, each once, with a valid code of a step they have not
        spent (now's or the next, both inside the ±1 window) and a wrong one."""
        step = c.current_step()
        entries: list[tuple[bytes, tuple[str, int] | None]] = []
        for _ in range(len(self.users)):
            if len(entries) >= 2 * pairs:
                break
            name, secret = self.users[self.cursor]
            self.cursor = (self.cursor + 1) % len(self.users)
            last = self.spent.get(name, -1)
            at = step if step > last else step + 1 if step + 1 > last else None
            if at is None:
                continue
            index = len(entries)
            entries.append((c.verify_request(name, codes.at_step(secret, at), index), (name, at)))
            entries.append((c.verify_request(name, codes.wrong(secret, at), index + 1), None))
        rng.shuffle(entries)
        return Plan([m for m, _ in entries], [v for _, v in entries], len(entries) < 2 * pairs)

    def sent(self, plan: Plan, count: int) -> None:
        """The first `count` of the plan reached a daemon: their valid steps are spent."""
        for mark in plan.valid[:count]:
            if mark is not None:
                name, at = mark
                self.spent[name] = max(self.spent.get(name, -1), at)


def user_list(prefix: str, count: int, secret_list: Sequence[str]) -> list[tuple[str, str]]:
    return [(f"{prefix}-{i}", secret_list[i % len(secret_list)]) for i in range(count)]


def pg_bulk_load(conninfo: str, key_file: Path, users: Sequence[tuple[str, str]]) -> float:
    """Enrolled users written into the PostgreSQL store through twofad's own code, as
    bench/common.py's bulk_load writes SQLite's: the secret sealed with the fleet's key
    file (created here, as the first daemon would), the row and 8 recovery code digests
    by PostgresStore.take_over. The seconds it took."""
    from twofad.keyfile import load_or_create
    from twofad.store import Brought, BroughtDevice, SealedSecret
    from twofad.store.postgres import PostgresStore
    from twofad.totp import TotpParams

    started = time.perf_counter()
    keys = load_or_create(str(key_file))
    # A daemon's bounds are for one login; a bulk load's transactions are long.
    store = PostgresStore(
        conninfo, statement_timeout=60.0, lock_timeout=60.0, transaction_timeout=600.0
    )
    try:
        now = time.time()
        for start in range(0, len(users), 1000):
            with store.transaction():
                for name, secret in users[start : start + 1000]:
                    digests = [keys.recovery_digest(name, secrets.token_hex(6)) for _ in range(8)]
                    sealed = SealedSecret(keys.seal(name, secret), TotpParams("SHA1", 6, c.PERIOD))
                    phone = BroughtDevice("phone", sealed)
                    store.take_over(name, None, Brought([phone], digests), now)
    finally:
        store.close()
    return time.perf_counter() - started


# --------------------------------------------------------------------------- load


def thread_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process's main thread (its event loop) so far."""
    with open(f"/proc/{pid}/task/{pid}/stat") as handle:
        fields_ = handle.read().rsplit(")", 1)[1].split()
    return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")


def kernel_and_switches(pid: int) -> tuple[float, int]:
    """System CPU seconds and context switches (voluntary and not) of all of a
    process's threads so far: a thread waiting on a socket, a condition or the GIL
    sleeps and is woken, in the kernel."""
    system, switches = 0.0, 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with suppress(OSError):  # a thread gone meanwhile
            with open(f"/proc/{pid}/task/{task}/stat") as handle:
                system += int(handle.read().rsplit(")", 1)[1].split()[12])
            with open(f"/proc/{pid}/task/{task}/status") as handle:
                switches += sum(int(line.split()[1]) for line in handle if "ctxt_switches:" in line)
    return system / os.sysconf("SC_CLK_TCK"), switches


class CpuMeter:
    """CPU seconds used meanwhile by the daemons (and their event-loop threads), the
    PostgreSQL server (the postmaster and every process it forked: backends, writers),
    this client, and the whole machine, which is shared: the rest is other processes."""

    def __init__(self, daemons: Sequence[Daemon], cluster: Cluster) -> None:
        self.daemon_pids = [d.proc.pid for d in daemons if d.proc is not None]
        self.cluster = cluster

    @staticmethod
    def _machine() -> float:
        """Busy CPU seconds of the whole machine since boot (all cores)."""
        with open("/proc/stat") as stat:
            ticks = [int(v) for v in stat.readline().split()[1:]]
        return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")

    def snapshot(self) -> dict[str, Any]:
        return {
            "daemons": [c.cpu_seconds(pid) for pid in self.daemon_pids],
            "loops": [thread_cpu_seconds(pid) for pid in self.daemon_pids],
            "kernel": [kernel_and_switches(pid) for pid in self.daemon_pids],
            "postgres": postgres_cpu(self.cluster),
            "client": time.process_time(),
            "machine": self._machine(),
            "at": time.perf_counter(),
        }

    @staticmethod
    def percent(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
        """What each part used, in % of one core (the machine has 2: 200 %)."""
        wall = (after["at"] - before["at"]) / 100.0
        daemons = [(b - a) / wall for a, b in zip(before["daemons"], after["daemons"], strict=True)]
        loops = sum(after["loops"]) - sum(before["loops"])
        pg = after["postgres"] - before["postgres"]
        kernel = sum(b[0] - a[0] for a, b in zip(before["kernel"], after["kernel"], strict=True))
        switches = sum(b[1] - a[1] for a, b in zip(before["kernel"], after["kernel"], strict=True))
        parts = {
            "daemons": sum(daemons),
            "daemons_kernel": kernel / wall,
            "event_loops": loops / wall,
            "workers": sum(daemons) - loops / wall,
            "postgres": pg / wall,
            "client": (after["client"] - before["client"]) / wall,
            "machine": (after["machine"] - before["machine"]) / wall,
        }
        parts["others"] = max(
            0.0, parts["machine"] - parts["daemons"] - parts["postgres"] - parts["client"]
        )
        rounded = {key: round(value, 1) for key, value in parts.items()}
        return {**rounded, "per_daemon": [round(d, 1) for d in daemons], "switches": switches}


@dataclass
class Target:
    """One configuration under load: its daemons, its users, its meter."""

    name: str
    daemons: list[Daemon]
    accounts: Accounts
    meter: CpuMeter
    rate: float = 0.0  # the last measured verifies/s, to size the next plan

    @property
    def sockets(self) -> list[str]:
        return [d.socket for d in self.daemons]


def measure(
    target: Target,
    seconds: float,
    codes: Codes,
    rng: random.Random,
    round_: int,
    clients: int = CLIENTS,
) -> dict[str, Any]:
    """One timed closed loop of `seconds` on the target, and its figures."""
    rate = target.rate if clients == CLIENTS else 5_000.0 / len(target.daemons)
    pairs = math.ceil(max(rate, 500.0) * seconds * 1.3 / 2) + clients
    plan = target.accounts.plan(pairs, codes, rng)
    before = target.meter.snapshot()
    outcome = c.closed_loop(target.sockets, iter(plan.messages), clients, max_seconds=seconds)
    after = target.meter.snapshot()
    done = len(outcome["latencies"])
    target.accounts.sent(plan, done)
    cpu = CpuMeter.percent(before, after)
    elapsed = outcome["elapsed"]
    if clients == CLIENTS:
        target.rate = done / elapsed
    return {
        "config": target.name,
        "round": round_,
        "clients": clients,
        "daemons": len(target.daemons),
        "done": done,
        "seconds": round(elapsed, 3),
        "per_second": round(done / elapsed, 1),
        "p50_ms": c.ms(c.percentile(outcome["latencies"], 50)),
        "p99_ms": c.ms(c.percentile(outcome["latencies"], 99)),
        "max_ms": c.ms(max(outcome["latencies"])),
        "results": outcome["counts"],
        "users_short": plan.short,
        "latencies": outcome["latencies"],
        "cpu_percent": cpu,
        "cpu_us_per_verify": {
            **{key: round(cpu[key] * 1e4 * elapsed / done, 1) for key in VERIFY_PARTS},
            "daemon_switches": round(cpu["switches"] / done, 1),
        },
    }


def warm_up(target: Target, codes: Codes, rng: random.Random) -> None:
    """Every daemon's pool of database connections made, the caches warm, a first
    rate to size the plans: a short closed loop, not counted."""
    plan = target.accounts.plan(800 * len(target.daemons), codes, rng)
    outcome = c.closed_loop(target.sockets, iter(plan.messages), CLIENTS, max_seconds=1.0)
    target.accounts.sent(plan, len(outcome["latencies"]))
    target.rate = len(outcome["latencies"]) / outcome["elapsed"]


# --------------------------------------------------------------------------- the run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="turns of every configuration")
    parser.add_argument("--pg-users", type=int, default=6_000, help="users in PostgreSQL")
    parser.add_argument("--sqlite-users", type=int, default=20_000, help="users in SQLite")
    parser.add_argument("--floor-calls", type=int, default=2_000, help="per floor figure")
    parser.add_argument(
        "--profile-seconds",
        type=float,
        default=4.0,
        help="py-spy on the SQLite daemon and on one of 4 on PostgreSQL (0: none)",
    )
    args = parser.parse_args()
    c.require_root()
    import psycopg

    print("fleet: verify throughput, SQLite beside 1, 2 and 4 daemons on one PostgreSQL")
    c.note(f"psycopg {psycopg.__version__}, libpq wrapper: {psycopg.pq.__impl__}")
    codes = Codes()
    secret_list = [c.new_secret() for _ in range(SECRETS)]
    rng = random.Random(7)
    floor_users = user_list("fl", FLOOR_USERS, secret_list)
    with ExitStack() as stack:
        cluster = Cluster().start()
        stack.callback(cluster.destroy)
        database = cluster.new_database()
        root = stack.enter_context(c.work_dir("fleet"))
        policy = root / "policy.yaml"
        policy.write_text("default: optional\n")
        key_file = root / "fleet.key"

        pg_users = user_list("pg", args.pg_users, secret_list)
        pg_seconds = pg_bulk_load(database.conninfo, key_file, pg_users + floor_users)
        c.note(
            f"{len(pg_users) + len(floor_users):,} users written to PostgreSQL through "
            f"PostgresStore in {pg_seconds:.1f} s (8 recovery codes each)"
        )
        (root / "sqlite").mkdir()
        c.prime_state(root / "sqlite")
        lite = Daemon(root / "sqlite", "--policy", str(policy))
        lite_users = user_list("sq", args.sqlite_users, secret_list)
        lite_seconds = c.bulk_load(lite, lite_users + floor_users)
        c.note(
            f"{len(lite_users) + len(floor_users):,} users written to SQLite through its store "
            f"in {lite_seconds:.1f} s"
        )
        lite.start()
        stack.callback(lite.stop)
        hosts = []
        for index in range(max(FLEETS)):
            (root / f"pg{index}").mkdir()
            host = Daemon(
                root / f"pg{index}",
                "--store", database.conninfo, "--key-file", str(key_file),
                "--policy", str(policy),
            )  # fmt: skip
            host.start()
            stack.callback(host.stop)
            hosts.append(host)
        c.note(
            f"twofad on SQLite: pid {lite.proc.pid if lite.proc else '?'}; on PostgreSQL: "
            f"pids {[h.proc.pid for h in hosts if h.proc]}; PostgreSQL on 127.0.0.1:{cluster.port}"
        )
        pg_accounts = Accounts(pg_users)
        targets = [Target(SQLITE, [lite], Accounts(lite_users), CpuMeter([lite], cluster))]
        targets += [
            Target(pg_name(n), hosts[:n], pg_accounts, CpuMeter(hosts[:n], cluster)) for n in FLEETS
        ]
        for target in targets:
            warm_up(target, codes, rng)
        runs = []
        for round_ in range(args.rounds):
            for target in rng.sample(targets, len(targets)):
                runs.append(measure(target, args.seconds, codes, rng, round_))
        c.note(f"{len(runs)} measurements done; the floor next")
        floor = python_floor(cluster, database, lite.database, args.floor_calls)
        floor += pgbench_floor(cluster, database, (1, 4 * max(FLEETS)), 2.0)
        single = [
            measure(target, args.seconds / 2, codes, rng, 0, clients=1) for target in targets[:2]
        ]
        profiles: dict[str, Any] = {}
        if args.profile_seconds:
            if c.py_spy():
                for target in (targets[0], targets[-1]):
                    profiles[target.name] = profiled(target, args.profile_seconds, codes, rng)
            else:
                c.note("(no profiles: py-spy is not installed; bench/setup.sh installs it)")
    return report(runs, single, floor, profiles)


def profiled(target: Target, seconds: float, codes: Codes, rng: random.Random) -> dict[str, Any]:
    """py-spy on the target's first daemon while all of them take the closed loop."""
    plan = target.accounts.plan(math.ceil(target.rate * seconds * 0.7), codes, rng)
    daemon = target.daemons[0]
    assert daemon.proc is not None
    outcome: dict[str, Any] = {}

    def load() -> None:
        outcome.update(
            c.closed_loop(target.sockets, iter(plan.messages), CLIENTS, max_seconds=seconds)
        )

    profile = c.profile_daemon(daemon.proc.pid, seconds, load)
    target.accounts.sent(plan, len(outcome.get("latencies", ())))
    return profile


# --------------------------------------------------------------------------- the report


def summary(runs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """A configuration over its rounds: medians of the rounds' rates and p50s, p99 and
    max over every latency, CPU shares as the rounds' medians."""
    mine = [r for r in runs if r["config"] == name]
    latencies = [t for r in mine for t in r["latencies"]]
    results: dict[str, int] = {}
    for r in mine:
        for key, value in r["results"].items():
            results[key] = results.get(key, 0) + value

    def med(pick: Any) -> float:
        return round(c.median([pick(r) for r in mine]), 1)

    return {
        "config": name,
        "daemons": mine[0]["daemons"],
        "rounds": len(mine),
        "verifies": len(latencies),
        "per_second": med(lambda r: r["per_second"]),
        "per_second_rounds": [r["per_second"] for r in mine],
        "p50_ms": round(c.median([r["p50_ms"] for r in mine]), 3),
        "p99_ms": c.ms(c.percentile(latencies, 99)),
        "max_ms": c.ms(max(latencies)),
        "results": results,
        "users_short": any(r["users_short"] for r in mine),
        "cpu_percent": {key: med(lambda r, k=key: r["cpu_percent"][k]) for key in CPU_PARTS},
        "cpu_percent_per_daemon": [
            round(c.median([r["cpu_percent"]["per_daemon"][i] for r in mine]), 1)
            for i in range(mine[0]["daemons"])
        ],
        "cpu_us_per_verify": {
            key: med(lambda r, k=key: r["cpu_us_per_verify"][k])
            for key in (*VERIFY_PARTS, "daemon_switches")
        },
    }


def paired_p50_ratio(runs: list[dict[str, Any]], name: str, base: str) -> float:
    """The median over rounds of `name`'s p50 over `base`'s in the same round."""
    by_round: dict[int, dict[str, float]] = {}
    for r in runs:
        by_round.setdefault(r["round"], {})[r["config"]] = r["p50_ms"]
    return round(c.median([v[name] / v[base] for v in by_round.values()]), 3)


def report(
    runs: list[dict[str, Any]],
    single: list[dict[str, Any]],
    floor: list[dict[str, Any]],
    profiles: dict[str, Any],
) -> int:
    names = [SQLITE, *(pg_name(n) for n in FLEETS)]
    rows = [summary(runs, name) for name in names]
    c.heading(f"verify through the socket, {CLIENTS} connections in all, half valid, half wrong")
    c.table(
        ["store", "daemons", "verifies", "verifies/s", "p50 ms", "p99 ms", "max ms"],
        [
            [r["config"], r["daemons"], r["verifies"], r["per_second"], r["p50_ms"], r["p99_ms"],
             r["max_ms"]]
            for r in rows
        ],
    )  # fmt: skip
    c.note(
        "verifies/s and p50: medians of the rounds ("
        + "; ".join(f"{r['config']}: {r['per_second_rounds']}" for r in rows)
        + "); p99 and max over every verify"
    )
    c.note(
        "one connection alone, no queue: "
        + "; ".join(
            f"{r['config']} p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms "
            f"({r['per_second']:,.0f}/s, daemon {r['cpu_us_per_verify']['daemons']:.0f} µs CPU "
            f"and {r['cpu_us_per_verify']['daemon_switches']:g} context switches per verify)"
            for r in single
        )
    )
    c.heading("where the time goes: CPU while measured, % of one core (the machine: 200 %)")
    c.table(
        ["store", "daemons", "each daemon", "their loops", "their workers", "PostgreSQL",
         "client", "other processes", "machine"],
        [
            [r["config"], r["cpu_percent"]["daemons"],
             " ".join(f"{v:g}" for v in r["cpu_percent_per_daemon"]),
             *(r["cpu_percent"][k] for k in ("event_loops", "workers", "postgres", "client",
                                             "others", "machine"))]
            for r in rows
        ],
    )  # fmt: skip
    c.note(
        "medians of the rounds; loops: the daemons' main threads (asyncio: sockets, "
        "dispatch, and on SQLite the store too); workers: their other threads (on "
        "PostgreSQL the store's worker threads and the watchdog); other processes: "
        "everything else on this shared machine meanwhile"
    )
    c.heading("CPU per answered verify, µs (on 2 cores the rate cannot pass 2 s ÷ the sum)")
    c.table(
        ["store", "daemon loops", "daemon workers", "daemons", "of it in kernel", "PostgreSQL",
         "client", "sum", "ceiling /s", "daemon switches"],
        [
            [r["config"], *(r["cpu_us_per_verify"][k] for k in VERIFY_PARTS),
             sum(r["cpu_us_per_verify"][k] for k in ("daemons", "postgres", "client")),
             2e6 / max(1.0, sum(r["cpu_us_per_verify"][k]
                                for k in ("daemons", "postgres", "client"))),
             r["cpu_us_per_verify"]["daemon_switches"]]
            for r in rows
        ],
    )  # fmt: skip
    c.note(
        "in kernel: the daemons' system time (sockets, futexes, wake-ups); daemon switches: "
        "context switches of all the daemons' threads per verify (a thread that waits on "
        "the database, a condition or the GIL sleeps and is woken)"
    )
    c.heading("answers")
    kinds = sorted({k for r in rows for k in r["results"]})
    c.table(
        ["store", *kinds], [[r["config"], *(r["results"].get(k, 0) for k in kinds)] for r in rows]
    )
    c.note("expected: accepted = rejected (each user: one valid, one wrong code per measurement)")
    if any(r["users_short"] for r in rows):
        c.note("(some plans ran short of users with a fresh step: raise --pg-users/--sqlite-users)")
    c.heading("the floor: PostgreSQL on 127.0.0.1 without twofad")
    c.table(
        ["what", "count", "per second", "p50 ms", "p99 ms", "PostgreSQL µs", "client µs", "how"],
        [
            [
                f["what"],
                f["count"],
                f["per_second"],
                f["p50_ms"],
                f["p99_ms"],
                float("nan") if f["postgres_us"] is None else f["postgres_us"],
                f["client_us"],
                f["how"],
            ]
            for f in floor
        ],
    )
    c.note(
        "µs: CPU per call (PostgreSQL: all its processes; client: this process through "
        "psycopg, or pgbench); pgbench's rate is its own, without its connecting"
    )
    for name, profile in profiles.items():
        which = (
            "the SQLite daemon" if name == SQLITE else f"one of {max(FLEETS)} PostgreSQL daemons"
        )
        c.print_profile(f"where the time of {which} goes at {CLIENTS} clients (py-spy)", profile)
    if any(name != SQLITE for name in profiles):
        c.note(
            "shares of samples, not of CPU: py-spy counts a store worker in wait_select "
            "(waiting for PostgreSQL's answer) as busy; the CPU tables above measure the cost"
        )
    lite, fleet = rows[0], rows[-1]
    one = rows[1]
    p50_ratio = paired_p50_ratio(runs, one["config"], SQLITE)
    p50_met = p50_ratio <= TARGET_P50_RATIO
    rate_met = fleet["per_second"] >= TARGET_RATE
    c.heading("targets")
    c.note(
        f"1 daemon on PostgreSQL, verify p50 ≤ {TARGET_P50_RATIO:g}× SQLite's: "
        f"{one['p50_ms']:.2f} ms vs {lite['p50_ms']:.2f} ms, {p50_ratio:.2f}× (median of "
        f"per-round ratios) — {c.verdict(p50_met)}"
    )
    c.note(
        f"{fleet['daemons']} daemons on PostgreSQL together ≥ {TARGET_RATE:,.0f} verifies/s: "
        f"{fleet['per_second']:,.0f}/s — {c.verdict(rate_met)}"
    )
    for run in [*runs, *single]:
        del run["latencies"]
    c.emit(
        "fleet",
        {
            "method": f"closed loop, {CLIENTS} persistent connections in all split evenly "
            "across the daemons, one verify in flight each, half valid and half wrong; "
            "users bulk-loaded through twofad's store code; configurations in turns",
            "configs": rows,
            "runs": runs,
            "floor": floor,
            "one_client": single,
            "profiles": profiles,
            "targets": {
                "p50_ratio_max": TARGET_P50_RATIO,
                "p50_ratio": p50_ratio,
                "p50_met": p50_met,
                "per_second_min": TARGET_RATE,
                "per_second": fleet["per_second"],
                "per_second_met": rate_met,
            },
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
