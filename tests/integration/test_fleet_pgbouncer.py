"""A fleet's twofad through pgbouncer in transaction pooling mode, as fleets often run it.

Two real twofad processes reach one real PostgreSQL server through one real pgbouncer
(tests/support/pgbouncer.py) with ``pool_mode = transaction`` and a single server
connection: every transaction of every daemon's every pooled connection runs on the one
same server session, one after another.  A store that prepared named statements, or
SET anything on its session, would collide with itself or leak that setting into the
next client's transactions; twofad's rules must hold, and nothing be left on that
session.  Codes come from oathtool.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pam_twofa import protocol as p
from support.daemon import Daemon
from support.enrollment import enroll
from support.pgbouncer import Pgbouncer
from support.postgres import DBNAME, ROLE, Cluster

pytestmark = pytest.mark.integration

# What SET LOCAL gives each of twofad's transactions: none may outlive its transaction.
BOUNDS = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")


@pytest.fixture
def bouncer(postgres_cluster: Callable[[], Cluster]) -> Iterator[Pgbouncer]:
    """A server of the test's own (its role gets a setting), and pgbouncer before it."""
    cluster = postgres_cluster().start()
    database = cluster.new_database()
    # pgbouncer 1.18 passes no `options` on: the schema comes with the role instead,
    # a setting every server session starts with alike.
    cluster.execute(f"ALTER ROLE {ROLE} IN DATABASE {DBNAME} SET search_path = {database.schema}")
    instance = Pgbouncer(cluster, pool_size=1).start()
    yield instance
    instance.destroy()


@pytest.fixture
def fleet(tmp_path: Path, bouncer: Pgbouncer) -> Iterator[tuple[Daemon, Daemon]]:
    daemons = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        daemons.append(
            Daemon(
                tmp_path / name, "--store", bouncer.uri(), "--key-file", str(tmp_path / "fleet.key")
            ).start()  # the first makes the key, the second reads it
        )
    yield daemons[0], daemons[1]
    for daemon in daemons:
        if daemon.alive():
            daemon.stop()


def server_sessions(cluster: Cluster) -> list[tuple[Any, ...]]:
    """The twofad role's sessions on the server itself (pgbouncer's pool)."""
    return cluster.execute(
        "SELECT pid FROM pg_stat_activity WHERE usename = %s AND pid <> pg_backend_pid()", (ROLE,)
    )


def at_once(jobs: list[tuple[Daemon, str, dict[str, object]]]) -> list[object]:
    """Each (daemon, op, fields) sent from a thread of its own, all at once: the answers
    (or the exceptions raised), in the order of `jobs`."""
    answers: list[object] = [None] * len(jobs)

    def ask(index: int) -> None:
        daemon, op, fields = jobs[index]
        try:
            answers[index] = daemon.request(op, **fields)
        except Exception as exc:  # the failure itself is what is checked
            answers[index] = exc

    threads = [threading.Thread(target=ask, args=(index,)) for index in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    return answers


def test_two_hosts_through_transaction_pooling(
    fleet: tuple[Daemon, Daemon], bouncer: Pgbouncer
) -> None:
    a, b = fleet
    codes, recovery_codes = enroll(a, "root")
    assert b.request("status", user="root")["state"] == "enabled"

    code = codes.next()
    assert b.request("verify", user="root", code=code)["result"] == p.ACCEPTED
    assert a.request("verify", user="root", code=code)["result"] == p.REPLAYED
    first = a.request("verify", user="root", code=recovery_codes[0])
    assert (first["result"], first["method"]) == (p.ACCEPTED, "recovery")
    assert b.request("verify", user="root", code=recovery_codes[0])["result"] == p.REPLAYED

    # Both hosts at once, each with its pool of four: the same fresh code raced from
    # both, and status asked meanwhile, all through the one server session.
    race = codes.next()
    jobs: list[tuple[Daemon, str, dict[str, object]]] = [
        (d, "verify", {"user": "root", "code": race}) for d in (a, b)
    ]
    jobs += [(d, "status", {"user": "root"}) for _ in range(8) for d in (a, b)]
    answers = at_once(jobs)
    assert not [answer for answer in answers if isinstance(answer, Exception)], answers
    verdicts = sorted(str(answer["result"]) for answer in answers[:2])  # type: ignore[index]
    assert verdicts == sorted([p.ACCEPTED, p.REPLAYED]), answers
    assert all(answer["state"] == "enabled" for answer in answers[2:]), answers  # type: ignore[index]

    for daemon in fleet:
        status = daemon.request("status", user="root")
        assert status["recovery_codes_left"] == len(recovery_codes) - 1
        assert status["locked"] is False

    # pgbouncer kept its one server session throughout, and twofad left nothing on it.
    sessions = server_sessions(bouncer.cluster)
    print(f"server sessions of the pool: {len(sessions)}")
    assert len(sessions) == 1
    with psycopg.connect(bouncer.uri(), autocommit=True, prepare_threshold=None) as client:
        assert client.execute("SELECT pg_backend_pid()").fetchall() == sessions
        for name in BOUNDS:
            assert client.execute(f"SHOW {name}").fetchall() == [("0",)], name
        assert client.execute("SELECT name FROM pg_prepared_statements").fetchall() == []
        assert client.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        ).fetchall() == [(0,)]

    for daemon in fleet:
        log = daemon.log_text()
        assert "internal error" not in log and "not answered" not in log, log
        assert "prepared statement" not in log
    bouncer_log = bouncer.log_text()
    assert "ERROR" not in bouncer_log and "WARNING" not in bouncer_log, bouncer_log
    assert "prepared statement" not in bouncer.cluster.log_tail(200)
