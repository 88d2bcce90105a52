"""The floor under a fleet's verifies: PostgreSQL on 127.0.0.1 without twofad (bench/fleet.py).

What a verify costs the database and its driver with no daemon in between: SELECT 1
through psycopg, a verify's statements through twofad's own stores (PostgreSQL from
one thread and from four, SQLite), and pgbench (C libpq) running those statements as
the store sends them, in fewer round trips, and prepared. Each figure with the CPU the
PostgreSQL server and the client spent per call.
"""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import common as c

from support.postgres import Cluster, Database, bindir, living_children


def postgres_cpu(cluster: Cluster) -> float:
    """CPU seconds so far of the server and every process it forked (backends, writers),
    also those that have exited: the postmaster reaped them, so theirs is in its own
    children's time."""
    assert cluster.proc is not None
    ticks = os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{cluster.proc.pid}/stat") as handle:
        fields_ = handle.read().rsplit(")", 1)[1].split()
    used = sum(int(v) for v in fields_[11:15]) / ticks  # utime stime cutime cstime
    for pid in living_children(cluster.proc.pid):
        with suppress(OSError):  # gone meanwhile: then in the postmaster's next reading
            used += c.cpu_seconds(pid)
    return used


class Cost:
    """CPU of the PostgreSQL server and of the client side (this process and the
    children it waited for, such as pgbench) over a block, and its wall time."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.postgres = self.client = self.wall = 0.0

    @staticmethod
    def _client() -> float:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

    def __enter__(self) -> Cost:
        self._pg, self._mine, self._at = (
            postgres_cpu(self.cluster),
            self._client(),
            time.perf_counter(),
        )
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.perf_counter() - self._at
        self.client = self._client() - self._mine
        self.postgres = postgres_cpu(self.cluster) - self._pg

    def row(
        self, what: str, latencies: Sequence[float], how: str, *, postgres: bool = True
    ) -> dict[str, Any]:
        """A floor figure: rate over the wall time, latencies, CPU µs per call."""
        count = len(latencies)
        return {
            "what": what,
            "count": count,
            "per_second": round(count / self.wall, 1),
            "p50_ms": c.ms(c.percentile(latencies, 50)),
            "p99_ms": c.ms(c.percentile(latencies, 99)),
            "postgres_us": round(1e6 * self.postgres / count, 1) if postgres else None,
            "client_us": round(1e6 * self.client / count, 1),
            "how": how,
        }


def timed(calls: int, once: Any, into: list[float] | None = None) -> list[float]:
    perf = time.perf_counter
    latencies = [] if into is None else into
    for _ in range(calls):
        began = perf()
        once()
        latencies.append(perf() - began)
    return latencies


def store_verify(store: Any, name: str) -> None:
    """A verify's statements through the store, no daemon: the transaction's bounds,
    the row read, one conditional write, the commit (as an accepted or a wrong code)."""
    with store.transaction():
        row = store.get_user(name)
        store.record_failure(row, row.lock, time.time())


def python_floor(cluster: Cluster, database: Database, sqlite_db: Path, calls: int) -> list[Any]:
    """The round trip through psycopg from one connection, and a verify's statements
    through each store alone (no daemon, no socket): from one thread, and from 4
    threads of one process on 4 connections, as a daemon's store workers run them."""
    import psycopg

    from twofad.store import Store
    from twofad.store.postgres import PostgresStore

    rows: list[dict[str, Any]] = []
    with psycopg.connect(database.conninfo, autocommit=True, prepare_threshold=None) as conn:
        timed(200, lambda: conn.execute("SELECT 1"))
        with Cost(cluster) as cost:
            latencies = timed(calls, lambda: conn.execute("SELECT 1").fetchone())
        how = "one connection, 127.0.0.1 (TCP, SCRAM), as the daemon connects"
        rows.append(cost.row("SELECT 1, psycopg", latencies, how))
    stores = [PostgresStore(database.conninfo) for _ in range(4)]
    try:
        timed(100, lambda: store_verify(stores[0], "fl-0"))
        with Cost(cluster) as cost:
            latencies = timed(calls, lambda: store_verify(stores[0], "fl-0"))
        how = "BEGIN+bounds, SELECT row, UPDATE, COMMIT: 4 round trips, one connection"
        rows.append(cost.row("verify's SQL, PostgresStore", latencies, how))
        together: list[float] = []
        threads = [
            threading.Thread(target=timed, args=(calls // 4, _verifier(store, f"fl-{i}"), together))
            for i, store in enumerate(stores)
        ]
        with Cost(cluster) as cost:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        how = "the same from 4 threads of one process, a connection each"
        rows.append(cost.row("verify's SQL, PostgresStore × 4 threads", together, how))
    finally:
        for store in stores:
            store.close()
    lite = Store(str(sqlite_db))
    try:
        timed(100, lambda: store_verify(lite, "fl-0"))
        with Cost(cluster) as cost:
            latencies = timed(calls, lambda: store_verify(lite, "fl-0"))
        how = "the same through SQLite's store, beside its idle daemon"
        rows.append(cost.row("verify's SQL, SqliteStore", latencies, how, postgres=False))
    finally:
        lite.close()
    return rows


def _verifier(store: Any, name: str) -> Any:
    return lambda: store_verify(store, name)


PGBENCH_VERIFY = """\
\\set n :client_id
BEGIN ISOLATION LEVEL READ COMMITTED \\; SET LOCAL statement_timeout = 1500 \\; \
SET LOCAL lock_timeout = 1500 \\; SET LOCAL idle_in_transaction_session_timeout = 2500;
{select} WHERE name = 'fl-' || :n::text;
UPDATE users SET last_failure = extract(epoch from now()), version = version + 1 \
WHERE name = 'fl-' || :n::text;
COMMIT;
"""
# The same statements in 2 round trips (the bounds and the read; the write and the commit).
PGBENCH_TWO_TRIPS = """\
\\set n :client_id
BEGIN ISOLATION LEVEL READ COMMITTED \\; SET LOCAL statement_timeout = 1500 \\; \
SET LOCAL lock_timeout = 1500 \\; SET LOCAL idle_in_transaction_session_timeout = 2500 \\; \
{select} WHERE name = 'fl-' || :n::text;
UPDATE users SET last_failure = extract(epoch from now()), version = version + 1 \
WHERE name = 'fl-' || :n::text \\; COMMIT;
"""
# Prepared statements cannot be compound: the bounds as one set_config statement after
# BEGIN, so 5 round trips where the store makes 4.
PGBENCH_PREPARED = """\
\\set n :client_id
BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT set_config('statement_timeout', '1500', true), \
set_config('lock_timeout', '1500', true), \
set_config('idle_in_transaction_session_timeout', '2500', true);
{select} WHERE name = 'fl-' || :n::text;
UPDATE users SET last_failure = extract(epoch from now()), version = version + 1 \
WHERE name = 'fl-' || :n::text;
COMMIT;
"""


def pgbench_floor(
    cluster: Cluster, database: Database, clients: Sequence[int], seconds: float
) -> list[dict[str, Any]]:
    """pgbench (C libpq, no Python) over the same conninfo: SELECT 1, and a verify's
    statements (each client its own row), from 1 connection and from as many as four
    daemons hold (4 each): parsed and planned every time, as the store's are (it makes
    no server-side prepared statements); to compare, the same in 2 round trips instead
    of 4, and prepared (-M prepared).
    Per-transaction latencies from pgbench's own log."""
    from twofad.store.writes import SELECT_USER

    pgbench = bindir() / "pgbench"
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="twofa-bench-pgbench-") as scratch:
        runs = [
            ("SELECT 1", "SELECT 1;\n", "simple", clients),
            ("verify's SQL", PGBENCH_VERIFY.format(select=SELECT_USER), "simple", clients),
            (
                "verify's SQL in 2 round trips",
                PGBENCH_TWO_TRIPS.format(select=SELECT_USER),
                "simple",
                clients[-1:],
            ),
            (
                "verify's SQL, prepared",
                PGBENCH_PREPARED.format(select=SELECT_USER),
                "prepared",
                clients[-1:],
            ),
        ]
        for what, text, mode, counts in runs:
            script = Path(scratch) / f"{len(rows)}.sql"
            script.write_text(text)
            for count in counts:
                prefix = Path(scratch) / f"log{len(rows)}"
                command = [str(pgbench), "-n", "-M", mode, "-c", str(count)]
                command += ["-j", str(count)]  # a thread each: per-transaction times exact
                command += ["-T", str(max(1, round(seconds))), "-f", str(script), "--log"]
                command += [f"--log-prefix={prefix}", database.conninfo]
                with Cost(cluster) as cost:
                    ran = subprocess.run(command, capture_output=True, text=True, cwd=scratch)
                    time.sleep(0.3)  # its backends exit and are reaped: their CPU counted
                if ran.returncode != 0:
                    c.note(f"(pgbench {what} × {count} failed: {ran.stderr.strip()[-300:]})")
                    continue
                latencies = []
                for log in Path(scratch).glob(f"{prefix.name}.*"):
                    for line in log.read_text().splitlines():
                        parts = line.split()
                        if len(parts) >= 3:
                            latencies.append(int(parts[2]) / 1e6)
                tps = next(
                    (float(line.split("=")[1].split()[0]) for line in ran.stdout.splitlines()
                     if line.startswith("tps")),
                    float("nan"),
                )  # fmt: skip
                how = f"{count} connection{'s' if count > 1 else ''}, C libpq, no Python, -M {mode}"
                row = cost.row(f"{what}, pgbench × {count}", latencies, how)
                row["per_second"] = round(tps, 1)  # pgbench's own, without its connecting
                rows.append(row)
    return rows
