"""The PostgreSQL backend beyond the contract: what a fleet's shared store must also do.

Against a real server (tests/support/postgres.py): migrations applied once however many
daemons start at once; a password refused in the conninfo and found in a password file;
the database dying, hanging or holding a lock answered with StoreUnavailable in bounded
time, and the same store working again once it is back; nothing left on the session
that a pgbouncer in transaction mode would carry to another client; the pool's bounds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from pam_twofa import errors
from support.postgres import Cluster, Database
from support.stores import add_user
from twofad.lockout import LockState
from twofad.store import Conflict, StoreError, StoreUnavailable
from twofad.store.pg_pool import PostgresPool
from twofad.store.postgres import SCHEMA_VERSION, PostgresStore

# How long a failing call may take at most: its bound (connect 2 s, or the transaction's
# 2.5 s) and room for a loaded machine.  A hang would be far past it.
HANG_GUARD = 60.0
PASSWORD = "hunter2-not-for-logs"


@pytest.fixture
def stores() -> Iterator[Callable[..., PostgresStore]]:
    """PostgresStores of the test's, all closed after it."""
    made: list[PostgresStore] = []

    def make(conninfo: str, **options: object) -> PostgresStore:
        made.append(PostgresStore(conninfo, **options))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for store in made:
        store.close()


def timed(call: Callable[[], object]) -> tuple[BaseException | None, float]:
    """What `call` raised, and how long it took (printed, never asserted: the machines
    are shared).  A call still running after HANG_GUARD seconds fails the test rather
    than hanging it; the bound that fired is proven by the error's own words."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    start = time.monotonic()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(HANG_GUARD)
    took = time.monotonic() - start
    assert outcome, f"still waiting after {HANG_GUARD} s: the store hung"
    print(f"answered in {took:.2f} s")
    return outcome[0], took


# --- migrations ---------------------------------------------------------------------


def test_ten_daemons_starting_at_once_migrate_exactly_once(postgres_database: Database) -> None:
    start = threading.Barrier(10)
    outcomes: list[object] = []

    def daemon() -> None:
        start.wait()
        try:
            store = PostgresStore(postgres_database.conninfo)
        except Exception as exc:
            outcomes.append(exc)
        else:
            outcomes.append("ok")
            store.close()

    threads = [threading.Thread(target=daemon) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes == ["ok"] * 10
    applied = postgres_database.execute("SELECT version FROM schema_version ORDER BY version")
    assert applied == [(v,) for v in range(1, SCHEMA_VERSION + 1)]


def test_tables_of_another_program_are_not_taken_over(
    postgres_database: Database, stores: Callable[..., PostgresStore]
) -> None:
    postgres_database.execute("CREATE TABLE users (id integer)")
    with pytest.raises(StoreError, match="tables of another program") as refused:
        stores(postgres_database.conninfo)
    assert not isinstance(refused.value, StoreUnavailable)


# --- the conninfo and the password ----------------------------------------------------


@pytest.mark.parametrize(
    "conninfo",
    [
        f"postgresql://twofad:{PASSWORD}@127.0.0.1:1/twofa",
        f"postgres://twofad@127.0.0.1:1/twofa?password={PASSWORD}",
        f"host=127.0.0.1 port=1 dbname=twofa password={PASSWORD}",
        f"host=127.0.0.1 port=1 password='{PASSWORD}' dbname=twofa",
    ],
    ids=["uri-userinfo", "uri-query", "keywords", "keywords-quoted"],
)
def test_a_password_in_the_conninfo_is_refused_unrepeated(conninfo: str) -> None:
    for make in (PostgresStore, PostgresPool):
        with pytest.raises(StoreError) as refused:
            make(conninfo)
        assert type(refused.value) is StoreError  # refused before any connection is tried
        assert "password file" in str(refused.value)
        assert PASSWORD not in str(refused.value) and refused.value.__cause__ is None


def test_a_conninfo_that_is_none_is_refused_unrepeated() -> None:
    with pytest.raises(StoreError) as refused:
        PostgresStore(f"host=127.0.0.1 port=1 dbname='{PASSWORD}")  # unterminated quote
    assert "neither a postgresql:// URI nor key=value" in str(refused.value)
    assert PASSWORD not in str(refused.value) and refused.value.__cause__ is None


def test_the_password_comes_from_a_password_file_over_tcp(
    postgres_database: Database,
    stores: Callable[..., PostgresStore],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = postgres_database.cluster
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))  # no ~/.pgpass of the tester's
    without = postgres_database.conninfo.replace(f"passfile={cluster.passfile}", "")
    assert "passfile" not in without
    with pytest.raises(StoreError, match="password") as missing:
        stores(without)  # SCRAM on 127.0.0.1: no password, no connection
    refused_for_good(missing.value)

    add_user(stores(postgres_database.conninfo), "alice")  # passfile= in the conninfo
    store = stores(postgres_database.uri)  # passfile in the URI's query
    with store.transaction():
        assert store.user_names() == ["alice"]
    monkeypatch.setenv("PGPASSFILE", str(cluster.passfile))  # or where PGPASSFILE says
    store = stores(without)
    with store.transaction():
        assert store.user_names() == ["alice"]

    wrong = tmp_path / "pgpass"
    wrong.touch(mode=0o600)
    wrong.write_text("127.0.0.1:*:*:twofad:not-the-password\n")
    monkeypatch.setenv("PGPASSFILE", str(wrong))
    with pytest.raises(StoreError, match="password authentication failed") as refused:
        stores(without)
    refused_for_good(refused.value)
    assert "not-the-password" not in str(refused.value)


def refused_for_good(error: BaseException) -> None:
    """A refusal that waiting will not end: `internal` (the hook refuses under any
    fail=), never `unavailable` (which fail=open would turn into a login without a code)."""
    assert isinstance(error, StoreError) and not isinstance(error, StoreUnavailable)
    assert error.code == errors.INTERNAL and "configuration error" in error.message


def test_a_database_or_role_that_does_not_exist_is_a_configuration_error(
    postgres_database: Database, stores: Callable[..., PostgresStore]
) -> None:
    for wrong in (
        postgres_database.conninfo.replace("dbname=twofa", "dbname=nosuchdb"),
        postgres_database.conninfo.replace("user=twofad", "user=nosuchrole"),
    ):
        assert wrong != postgres_database.conninfo
        with pytest.raises(StoreError) as caught:
            stores(wrong)
        refused_for_good(caught.value)


# --- nothing kept on the session: pgbouncer's transaction mode ------------------------


def test_no_prepared_statement_and_no_setting_outlive_a_transaction(
    postgres_database: Database, stores: Callable[..., PostgresStore]
) -> None:
    store = stores(postgres_database.conninfo)
    add_user(store, "alice")
    for _ in range(20):  # psycopg prepares a statement run 5 times, unless told not to
        with store.transaction():
            store.get_user("alice")
    with store.transaction():  # the bounds hold inside each transaction...
        [(timeout,)] = store._execute("SHOW statement_timeout").fetchall()
        assert timeout == "1500ms"
    conn = store._conn
    assert conn is not None  # ...and nothing is left on the session after it
    assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)
    for setting in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"):
        assert conn.execute(f"SHOW {setting}").fetchone() == ("0",)
    assert conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone() == (
        0,
    )


# --- bounded: a lock held elsewhere, the database killed, frozen ------------------------


def test_a_row_locked_elsewhere_past_the_lock_timeout_is_unavailable(
    postgres_database: Database, stores: Callable[..., PostgresStore]
) -> None:
    store = stores(postgres_database.conninfo, lock_timeout=0.2)
    row = add_user(store, "alice")
    with psycopg.connect(postgres_database.socket_conninfo) as holder:
        holder.execute("UPDATE users SET strikes = 1 WHERE name = 'alice'")  # and not committed
        with pytest.raises(StoreUnavailable, match="lock timeout"), store.transaction():
            store.record_failure(row, LockState(1, None, False, 1), 2.0)
        holder.rollback()
    with store.transaction():  # the lock released, the same store goes on
        store.record_failure(row, LockState(1, None, False, 1), 2.0)


def test_a_deadlock_between_two_hosts_is_a_conflict_to_start_over(
    postgres_database: Database, stores: Callable[..., PostgresStore]
) -> None:
    """A recovery code spent (code row, then user row) while another host renews the
    codes (user row, then code rows): the server aborts one, which starts over."""
    login, renewal = stores(postgres_database.conninfo), stores(postgres_database.conninfo)
    row = add_user(login, "alice", [b"x" * 32])
    with login.transaction():
        [code] = login.recovery_codes("alice")
    code_taken, user_taken = threading.Event(), threading.Event()
    outcomes: dict[str, str] = {}

    def redeem() -> None:
        try:
            with login.transaction():
                login.spend_recovery_code(code.id, 9.0)
                code_taken.set()
                user_taken.wait(10)
                login.record_success(row, LockState(0, None, False), 9.0)
        except Conflict:
            outcomes["login"] = "conflict"
        else:
            outcomes["login"] = "won"

    def renew() -> None:
        code_taken.wait(10)
        try:
            with renewal.transaction():
                renewal.clear_lock(row)
                user_taken.set()
                renewal.replace_recovery_codes(renewal.get_user("alice"), [b"n" * 32], 9.0)
        except Conflict:
            outcomes["renewal"] = "conflict"
        else:
            outcomes["renewal"] = "won"

    threads = [threading.Thread(target=redeem), threading.Thread(target=renew)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes.values()) == ["conflict", "won"]
    with login.transaction():
        spent = [c.used_at for c in login.recovery_codes("alice")]
    assert spent == (
        [9.0] if outcomes["login"] == "won" else [None]
    )  # all of one, none of the other


@pytest.fixture(scope="module")
def own_server() -> Iterator[Cluster]:
    """A server of this module's, for the tests that kill or freeze it."""
    cluster = Cluster().start()
    yield cluster
    cluster.destroy()


@pytest.fixture
def server(own_server: Cluster) -> Cluster:
    """That server, running and answering whatever the test before did to it."""
    own_server.thaw()
    if not own_server.alive():
        own_server.start()
    return own_server


def test_the_database_killed_is_unavailable_at_once_and_back_without_a_restart(
    server: Cluster, stores: Callable[..., PostgresStore]
) -> None:
    store = stores(server.new_database().conninfo)
    add_user(store, "alice")
    server.kill()

    def read() -> None:
        with store.transaction():
            store.get_user("alice")

    for _ in range(2):  # the connection lost, then no server to connect to
        error, _ = timed(read)
        assert isinstance(error, StoreUnavailable), error
    server.start()
    with store.transaction():  # the same store, no restart of anything
        assert store.user_names() == ["alice"]


def test_the_database_restarted_while_idle_costs_no_failed_login(
    server: Cluster, stores: Callable[..., PostgresStore]
) -> None:
    store = stores(server.new_database().conninfo)
    add_user(store, "alice")
    server.stop()
    server.start()
    with store.transaction():  # its connection died idle: a new one at once
        assert store.user_names() == ["alice"]


def test_the_database_frozen_is_unavailable_within_the_bound(
    server: Cluster, stores: Callable[..., PostgresStore]
) -> None:
    store = stores(server.new_database().conninfo, transaction_timeout=0.5)
    add_user(store, "alice")
    server.freeze()
    try:

        def read() -> None:
            with store.transaction():
                store.get_user("alice")

        error, _ = timed(read)  # the server's own timeouts cannot fire: it is stopped
        assert isinstance(error, StoreUnavailable), error
        assert "did not answer within 0.5 s" in str(error)
        error, _ = timed(read)  # and connecting again is bounded (connect_timeout, 2 s)
        assert isinstance(error, StoreUnavailable), error
        assert "cannot connect" in str(error)
    finally:
        server.thaw()
    with store.transaction():
        assert store.user_names() == ["alice"]


# --- the pool -----------------------------------------------------------------------


def test_the_pool_makes_at_most_size_reuses_and_bounds_the_wait(
    postgres_database: Database,
) -> None:
    pool = PostgresPool(postgres_database.conninfo, size=2, wait=0.3)
    try:
        with pool.connection() as first, pool.connection() as second:
            assert first is not second
            error, _ = timed(lambda: pool.connection().__enter__())
            assert isinstance(error, StoreUnavailable), error
            assert "all 2 database connections stayed busy" in str(error)
        with pool.connection() as again:
            assert again in (first, second)  # kept, not made anew
            add_user(again, "alice")
    finally:
        pool.close()


def test_the_pool_drops_a_broken_connection_and_makes_another(
    postgres_database: Database,
) -> None:
    pool = PostgresPool(postgres_database.conninfo, size=1)
    try:
        with pool.connection() as store:
            add_user(store, "alice")
            with pytest.raises(StoreUnavailable), store.transaction():
                [(pid,)] = store._execute("SELECT pg_backend_pid()").fetchall()
                postgres_database.cluster.execute("SELECT pg_terminate_backend(%s)", (pid,))
                store.get_user("alice")  # its connection is gone mid-transaction
        with pool.connection() as other:
            assert other is not store
            with other.transaction():
                assert other.user_names() == ["alice"]
    finally:
        pool.close()


def test_the_pool_serves_many_threads_on_at_most_size_connections(
    postgres_database: Database,
) -> None:
    conninfo = f"{postgres_database.conninfo} application_name=twofad-pool-test"
    pool = PostgresPool(conninfo, size=3)
    try:
        with pool.connection() as store:
            add_user(store, "alice")
        counted: list[int] = []

        def work() -> None:
            for _ in range(10):
                with pool.connection() as store, store.transaction():
                    assert store.get_user("alice") is not None
                    [(n,)] = store._execute(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE application_name = 'twofad-pool-test'"
                    ).fetchall()
                    counted.append(n)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(counted) == 80 and max(counted) <= 3
    finally:
        pool.close()
