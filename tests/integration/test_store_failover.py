"""A fleet's store failing over: a synchronous standby promoted, the same store goes on.

A real primary and a real streaming standby (pg_basebackup -R, synchronous_standby_names
on the primary), a PostgresStore given both hosts: what it committed on the primary is
on the standby before the primary dies, the store answers StoreUnavailable while there
is no primary, and once the standby is promoted the same store reads the row there and
writes again, with no restart.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from psycopg.conninfo import make_conninfo

from support.postgres import DBNAME, ROLE, Cluster, Database
from support.stores import add_user
from twofad.lockout import LockState
from twofad.store import StoreUnavailable
from twofad.store.postgres import PostgresStore

pytestmark = pytest.mark.integration


def both_hosts(database: Database, standby: Cluster) -> str:
    """libpq tries the hosts in turn, and takes only one that accepts writes."""
    return make_conninfo(
        host="127.0.0.1,127.0.0.1",
        port=f"{database.cluster.port},{standby.port}",
        dbname=database.name,
        user=ROLE,
        passfile=str(database.cluster.passfile),
        options=f"-csearch_path={database.schema}",
    )


def test_a_row_written_on_the_primary_is_read_on_the_promoted_standby(
    postgres_cluster: Callable[[], Cluster],
) -> None:
    primary = postgres_cluster().start()
    database = primary.new_database()
    standby = primary.standby()
    try:
        store = PostgresStore(both_hosts(database, standby))
        row = add_user(store, "alice", [b"r" * 32])
        on_standby = Database(standby, database.schema)
        assert on_standby.execute("SELECT name FROM users") == [("alice",)]  # synchronous

        primary.kill()
        with pytest.raises(StoreUnavailable), store.transaction():
            store.get_user("alice")  # the primary gone, the standby read-only

        standby.promote()
        with store.transaction():
            assert store.get_user("alice") == row
            assert store.unused_recovery_count("alice") == 1
            store.record_failure(row, LockState(1, None, False, 1), 2.0)
        assert on_standby.execute("SELECT failures FROM users") == [(1,)]
        assert on_standby.execute("SELECT current_database()") == [(DBNAME,)]
        store.close()
    finally:
        standby.destroy()
