"""The store contract: what every backend must do, run on each of them.

Every named write does what it says, and only on the row as the caller read it: a
stale row raises Conflict and changes nothing.  Two connections racing for the same
time step, the same recovery code or the same failure count get exactly one winner.
Every earlier schema is migrated with its rows kept; a newer one is refused (each
backend numbers its own schema's versions).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from support.stores import BACKENDS, OLD_ALICE, OLD_DIGEST, SEALED, Database, add_user
from twofad.lockout import Failure, LockState
from twofad.store import Backend, Brought, Conflict, SealedSecret, StoreError, UserRow
from twofad.totp import TotpParams

NEW_KEY = SealedSecret(b"another sealed key", TotpParams("SHA256", 8, 60))
FAILED = LockState(6, 1060.0, False, 9, (Failure(1000.0, "home"), Failure(1030.0, "away")))


@pytest.fixture(params=sorted(BACKENDS))
def database(request: pytest.FixtureRequest) -> Database:
    return BACKENDS[request.param].for_test(request)


@pytest.fixture
def connect(database: Database) -> Iterator[Callable[[], Backend]]:
    """Open connections to one database, as several daemons would; all closed at the end."""
    opened: list[Backend] = []

    def open_one() -> Backend:
        opened.append(database.connect())
        return opened[-1]

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def backend(connect: Callable[[], Backend]) -> Backend:
    return connect()


@pytest.fixture
def rival(connect: Callable[[], Backend]) -> Backend:
    """A second connection to the same database: another daemon, or another host."""
    return connect()


def current(store: Backend, name: str = "alice") -> UserRow:
    """The row as read inside a transaction already open."""
    row = store.get_user(name)
    assert row is not None
    return row


def read(store: Backend, name: str = "alice") -> UserRow:
    """The row as read in a transaction of its own."""
    with store.transaction():
        return current(store, name)


def codes(store: Backend, name: str = "alice") -> list[tuple[bytes, float | None]]:
    with store.transaction():
        return [(code.digest, code.used_at) for code in store.recovery_codes(name)]


# --- reading, transactions, settings ---------------------------------------------------


def test_a_new_database_holds_no_account(backend: Backend) -> None:
    with backend.transaction():
        assert backend.get_user("alice") is None
        assert backend.user_names() == [] and backend.list_users() == []
        assert backend.recovery_codes("alice") == []
        assert backend.unused_recovery_count("alice") == 0


def test_what_one_connection_commits_another_reads(backend: Backend, rival: Backend) -> None:
    add_user(backend, "bob")
    add_user(backend, "alice", [b"x" * 32])
    with rival.transaction():
        assert rival.user_names() == ["alice", "bob"]
        assert [row.name for row in rival.list_users()] == ["alice", "bob"]
        assert rival.unused_recovery_count("alice") == 1


def test_a_failed_transaction_leaves_nothing(backend: Backend) -> None:
    with pytest.raises(RuntimeError), backend.transaction():
        backend.begin_pending("alice", None, SEALED, 1.0)
        raise RuntimeError("boom")
    with backend.transaction():
        assert backend.get_user("alice") is None


def test_settings_of_the_database_are_kept_and_replaced(backend: Backend, rival: Backend) -> None:
    with backend.transaction():
        assert backend.get_meta("key_fingerprint") is None
        backend.set_meta("key_fingerprint", b"x")
        backend.set_meta("key_fingerprint", b"y")
    with rival.transaction():
        assert rival.get_meta("key_fingerprint") == b"y"


# --- each named write --------------------------------------------------------------------


def test_begin_pending_makes_an_account_with_a_key_to_confirm(backend: Backend) -> None:
    with backend.transaction():
        backend.begin_pending("alice", None, NEW_KEY, 5.0)
    row = read(backend)
    assert not row.active and row.pending_secret == NEW_KEY.sealed
    assert row.pending_params == NEW_KEY.params and row.pending_since == 5.0
    assert row.created_at == 5.0
    with pytest.raises(Conflict), backend.transaction():
        backend.begin_pending("alice", None, SEALED, 6.0)  # the account exists meanwhile


def test_begin_pending_leaves_an_active_key_working(backend: Backend) -> None:
    before = add_user(backend, "alice")
    with backend.transaction():
        backend.begin_pending("alice", before, NEW_KEY, 5.0)
    row = read(backend)
    assert row.active and row.secret == SEALED.sealed and row.params == SEALED.params
    assert row.pending_secret == NEW_KEY.sealed and row.pending_params == NEW_KEY.params


def test_activate_pending_makes_the_new_key_the_one_in_use(backend: Backend) -> None:
    with backend.transaction():
        backend.take_over("alice", None, Brought(SEALED, 50, 8, [b"o" * 32]), 1.0)
        backend.record_failure(current(backend), FAILED, 1030.0)
        backend.record_success(current(backend), LockState(0, None, False, 9), 1040.0, drift=3)
        backend.begin_pending("alice", current(backend), NEW_KEY, 1050.0)
        backend.activate_pending(current(backend), 77, 1060.0, [b"n" * 32])
    row = read(backend)
    assert row.secret == NEW_KEY.sealed and row.params == NEW_KEY.params
    assert row.pending_secret is None and row.pending_since is None
    assert (row.last_step, row.drift, row.totp_window, row.enrolled_at) == (77, 0, None, 1060.0)
    assert row.lock == LockState(0, None, False, 0, ())
    assert codes(backend) == [(b"n" * 32, None)]


def test_activate_pending_needs_a_pending_key(backend: Backend) -> None:
    row = add_user(backend, "alice")
    with pytest.raises(Conflict), backend.transaction():
        backend.activate_pending(row, 77, 2.0, [])
    assert read(backend) == row


def test_take_over_makes_an_account_active_at_once(backend: Backend) -> None:
    with backend.transaction():
        backend.take_over("alice", None, Brought(NEW_KEY, 42, 8, [b"a" * 32]), 3.0)
    row = read(backend)
    assert row.active and row.secret == NEW_KEY.sealed and row.params == NEW_KEY.params
    assert (row.last_step, row.totp_window, row.enrolled_at, row.created_at) == (42, 8, 3.0, 3.0)
    assert codes(backend) == [(b"a" * 32, None)]
    with pytest.raises(Conflict), backend.transaction():
        backend.take_over("alice", None, Brought(SEALED, None, None, []), 4.0)


def test_take_over_replaces_key_set_up_counts_and_codes(backend: Backend) -> None:
    add_user(backend, "alice", [b"o" * 32])
    with backend.transaction():
        backend.record_failure(current(backend), FAILED, 1030.0)
        backend.begin_pending("alice", current(backend), SEALED, 1040.0)
        row = current(backend)
        new_codes = [b"b" * 32]
        backend.take_over("alice", row, Brought(NEW_KEY, 9, None, new_codes), 1050.0)
    row = read(backend)
    assert row.secret == NEW_KEY.sealed and row.pending_secret is None
    assert (row.last_step, row.drift, row.enrolled_at) == (9, 0, 1050.0)
    assert row.lock == LockState(0, None, False, 0, ())
    assert codes(backend) == [(b"b" * 32, None)]


def test_record_failure_keeps_the_whole_lock_state(backend: Backend) -> None:
    add_user(backend, "alice")
    with backend.transaction():
        backend.record_failure(current(backend), FAILED, 1030.0)
    row = read(backend)
    assert row.lock == FAILED and row.last_failure == 1030.0
    hard = LockState(100, None, True, 100, ())
    with backend.transaction():
        backend.record_failure(row, hard, 1031.0)
    assert read(backend).lock == hard


def test_record_success_spends_its_step_and_keeps_what_it_does_not_forgive(
    backend: Backend,
) -> None:
    add_user(backend, "alice")
    with backend.transaction():
        backend.record_failure(current(backend), FAILED, 1030.0)
        backend.record_success(current(backend), LockState(0, None, False, 7), 1040.0, step=34)
    row = read(backend)
    assert row.lock == LockState(0, None, False, 7, ())
    assert (row.last_step, row.drift, row.last_success) == (34, 0, 1040.0)
    with backend.transaction():
        backend.record_success(row, LockState(0, None, False, 7), 1050.0, step=40, drift=-2)
        backend.record_success(current(backend), LockState(0, None, False, 7), 1060.0)
    row = read(backend)
    assert (row.last_step, row.drift, row.last_success) == (40, -2, 1060.0)  # a recovery code


def test_record_success_says_on_which_host(backend: Backend, rival: Backend) -> None:
    add_user(backend, "alice")
    assert read(backend).last_host is None
    with backend.transaction():
        backend.record_success(current(backend), LockState(0, None, False), 10.0, host="web1")
    assert read(rival).last_host == "web1"
    with rival.transaction():
        rival.record_success(current(rival), LockState(0, None, False), 20.0, host="web2")
    assert (read(backend).last_host, read(backend).last_success) == ("web2", 20.0)


def test_clear_lock_starts_both_counts_afresh(backend: Backend) -> None:
    add_user(backend, "alice")
    with backend.transaction():
        backend.record_failure(current(backend), LockState(100, None, True, 100, ()), 1.0)
        backend.clear_lock(current(backend))
    assert read(backend).lock == LockState(0, None, False, 0, ())


def test_reseal_replaces_the_sealed_keys_and_nothing_else(backend: Backend) -> None:
    add_user(backend, "alice", [b"a" * 32])
    codes_before = codes(backend)
    with backend.transaction():
        backend.record_failure(current(backend), FAILED, 1.0)
        backend.begin_pending("alice", current(backend), NEW_KEY, 2.0)
        before = current(backend)
        backend.reseal(before, b"the key, sealed again", b"the new key, sealed again")
    after = read(backend)
    assert (after.secret, after.pending_secret) == (
        b"the key, sealed again",
        b"the new key, sealed again",
    )
    unchanged = ("secret", "pending_secret", "version")
    for name in UserRow.__dataclass_fields__:
        if name not in unchanged:
            assert getattr(after, name) == getattr(before, name), name
    assert after.version > before.version and codes(backend) == codes_before


def test_replace_recovery_codes_replaces_them_all(backend: Backend) -> None:
    add_user(backend, "alice", [b"a" * 32, b"b" * 32])
    add_user(backend, "bob", [b"a" * 32])
    with backend.transaction():
        backend.replace_recovery_codes(current(backend), [b"c" * 32], 5.0)
    assert codes(backend) == [(b"c" * 32, None)]
    assert codes(backend, "bob") == [(b"a" * 32, None)]  # another user's stay


def test_a_recovery_code_is_spent_once(backend: Backend) -> None:
    add_user(backend, "alice", [b"x" * 32, b"y" * 32])
    with backend.transaction():
        first = backend.recovery_codes("alice")[0]
        backend.spend_recovery_code(first.id, 2.0)
    with pytest.raises(Conflict), backend.transaction():
        backend.spend_recovery_code(first.id, 3.0)
    with backend.transaction():
        assert backend.recovery_codes("alice")[0].used_at == 2.0
        assert backend.unused_recovery_count("alice") == 1


def test_delete_user_takes_the_codes_with_it(backend: Backend) -> None:
    add_user(backend, "alice", [b"x" * 32])
    with backend.transaction():
        backend.delete_user(current(backend))
        assert backend.get_user("alice") is None
        assert backend.recovery_codes("alice") == []


# --- every write is conditional on the row as read ------------------------------------

WRITES: dict[str, Callable[[Backend, UserRow], None]] = {
    "begin_pending": lambda s, row: s.begin_pending(row.name, row, NEW_KEY, 9.0),
    "activate_pending": lambda s, row: s.activate_pending(row, 5, 9.0, []),
    "take_over": lambda s, row: s.take_over(row.name, row, Brought(NEW_KEY), 9.0),
    "record_success": lambda s, row: s.record_success(row, LockState(0, None, False), 9.0, step=5),
    "record_failure": lambda s, row: s.record_failure(row, FAILED, 9.0),
    "clear_lock": lambda s, row: s.clear_lock(row),
    "reseal": lambda s, row: s.reseal(row, b"sealed again", None),
    "replace_recovery_codes": lambda s, row: s.replace_recovery_codes(row, [b"n" * 32], 9.0),
    "delete_user": lambda s, row: s.delete_user(row),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_a_write_on_a_stale_row_is_a_conflict_and_changes_nothing(
    backend: Backend, rival: Backend, write: str
) -> None:
    add_user(backend, "alice", [b"x" * 32])
    with backend.transaction():
        backend.begin_pending("alice", current(backend), SEALED, 2.0)
    stale = read(rival)
    with backend.transaction():
        backend.record_failure(current(backend), FAILED, 3.0)  # someone else wrote meanwhile
    written, its_codes = read(backend), codes(backend)
    with pytest.raises(Conflict), rival.transaction():
        WRITES[write](rival, stale)
    assert read(backend) == written and codes(backend) == its_codes
    with rival.transaction():
        WRITES[write](rival, current(rival))  # from a fresh read it goes through


@pytest.mark.parametrize("write", sorted(set(WRITES) - {"delete_user"}))
def test_every_write_moves_the_version_on(backend: Backend, write: str) -> None:
    add_user(backend, "alice")
    with backend.transaction():
        backend.begin_pending("alice", current(backend), SEALED, 2.0)
    before = read(backend)
    with backend.transaction():
        WRITES[write](backend, before)
    assert read(backend).version != before.version


# --- two connections racing: exactly one winner -----------------------------------------


def race(contenders: list[tuple[Backend, Callable[[Backend], None]]]) -> list[str]:
    """Run each write in its own transaction on its own connection, all at once."""
    start = threading.Barrier(len(contenders))
    outcomes: list[str] = []

    def run(store: Backend, write: Callable[[Backend], None]) -> None:
        start.wait()
        try:
            with store.transaction():
                write(store)
        except Conflict:
            outcomes.append("conflict")
        else:
            outcomes.append("won")

    threads = [threading.Thread(target=run, args=c) for c in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return sorted(outcomes)


def test_two_connections_spending_the_same_step_get_one_winner(
    backend: Backend, rival: Backend
) -> None:
    add_user(backend, "alice")
    seen = [read(backend), read(rival)]  # both see step 101 unused

    def spend(row: UserRow) -> Callable[[Backend], None]:
        return lambda store: store.record_success(row, LockState(0, None, False), 9.0, step=101)

    assert race([(backend, spend(seen[0])), (rival, spend(seen[1]))]) == ["conflict", "won"]
    row = read(backend)
    assert row.last_step == 101 and row.version == seen[0].version + 1


def test_two_connections_spending_the_same_recovery_code_get_one_winner(
    backend: Backend, rival: Backend
) -> None:
    add_user(backend, "alice", [b"x" * 32])
    with backend.transaction():
        [code] = backend.recovery_codes("alice")
    row = read(backend)

    def redeem(store: Backend) -> None:
        store.spend_recovery_code(code.id, 9.0)
        store.record_success(row, LockState(0, None, False), 9.0)

    assert race([(backend, redeem), (rival, redeem)]) == ["conflict", "won"]
    assert codes(backend) == [(b"x" * 32, 9.0)]
    assert read(backend).version == row.version + 1


def test_two_connections_counting_the_same_failure_get_one_winner(
    backend: Backend, rival: Backend
) -> None:
    """Neither failure is lost: the loser counts again from a fresh read."""
    add_user(backend, "alice")
    seen = read(backend)  # both read no failures yet

    def count(store: Backend) -> None:
        store.record_failure(seen, LockState(1, None, False, 1), 9.0)

    assert race([(backend, count), (rival, count)]) == ["conflict", "won"]
    assert read(backend).lock == LockState(1, None, False, 1)
    with rival.transaction():
        fresh = current(rival)
        rival.record_failure(fresh, LockState(2, None, False, 2), 10.0)
    assert read(backend).lock == LockState(2, None, False, 2)


# --- schema versions -------------------------------------------------------------------


EARLIER = [(name, v) for name in sorted(BACKENDS) for v in range(BACKENDS[name].latest)]


@pytest.mark.parametrize(
    ("database", "version"), EARLIER, indirect=["database"], ids=[f"{n}-{v}" for n, v in EARLIER]
)
def test_every_earlier_schema_is_migrated_with_its_rows(
    database: Database, connect: Callable[[], Backend], version: int
) -> None:
    database.at_version(version)
    store = connect()
    assert database.schema_version() == database.latest
    if version == 0:
        with store.transaction():
            assert store.user_names() == []
        return
    alice = read(store)
    assert alice.active and alice.secret == OLD_ALICE["secret"]
    assert alice.params == TotpParams() and alice.last_step == OLD_ALICE["last_step"]
    # Failures counted before the lifetime count existed still count toward the hard lock.
    assert alice.lock == LockState(7, None, False, 7, ())
    assert alice.totp_window is None  # the policy's, as before
    assert codes(store) == [(OLD_DIGEST, None)]
    bob = read(store, "bob")
    assert not bob.active and bob.pending_secret == b"pending"
    with store.transaction():  # and every write works on what was migrated
        store.activate_pending(bob, 5, 9.0, [])
        store.record_failure(alice, FAILED, 9.0)
        store.set_meta("key_fingerprint", b"x")
    assert read(store).lock == FAILED and read(store, "bob").active
    connect()  # opened again: nothing left to migrate
    assert database.schema_version() == database.latest


def test_a_newer_schema_is_refused_with_what_to_do(
    database: Database, connect: Callable[[], Backend]
) -> None:
    database.newer_than_known()
    with pytest.raises(StoreError) as refused:
        connect()
    message = str(refused.value)
    assert f"schema version {database.latest + 1}" in message
    assert f"newer than this twofad understands ({database.latest})" in message
    assert "upgrade twofad" in message
    assert database.schema_version() == database.latest + 1  # left as it was
