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
from dataclasses import replace

import pytest

from support.stores import (
    BACKENDS,
    OLD_ALICE,
    OLD_CAROL_KEYS,
    OLD_DIGEST,
    SEALED,
    Database,
    add_user,
)
from twofad.lockout import Failure, LockState
from twofad.store import (
    Backend,
    Brought,
    BroughtDevice,
    Conflict,
    DeviceRow,
    SealedSecret,
    StoreError,
    UserRow,
)
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
        backend.begin_device("alice", None, "phone", SEALED, 1.0)
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


def device(row: UserRow, name: str = "phone") -> DeviceRow:
    found = row.device(name)
    assert found is not None, name
    return found


def test_begin_device_makes_an_account_with_a_device_to_confirm(backend: Backend) -> None:
    with backend.transaction():
        backend.begin_device("alice", None, "phone", NEW_KEY, 5.0)
    row = read(backend)
    assert not row.active and row.created_at == 5.0
    [phone] = row.devices
    assert (phone.name, phone.secret, phone.params) == ("phone", NEW_KEY.sealed, NEW_KEY.params)
    assert (phone.added_at, phone.confirmed_at, phone.last_step, phone.renews) == (
        5.0,
        None,
        None,
        False,
    )
    with pytest.raises(Conflict), backend.transaction():
        backend.begin_device("alice", None, "phone", SEALED, 6.0)  # the account exists meanwhile


def test_begin_device_leaves_the_active_devices_working(backend: Backend) -> None:
    before = add_user(backend, "alice")
    with backend.transaction():
        backend.begin_device("alice", before, "tablet", NEW_KEY, 5.0)
    row = read(backend)
    assert row.active and [d.name for d in row.devices] == ["phone", "tablet"]
    assert device(row).secret == SEALED.sealed and device(row).active
    tablet = device(row, "tablet")
    assert tablet.secret == NEW_KEY.sealed and not tablet.active and tablet.params == NEW_KEY.params


def test_begin_device_takes_the_place_of_a_pending_one_of_the_same_name(backend: Backend) -> None:
    add_user(backend, "alice")
    with backend.transaction():
        backend.begin_device("alice", current(backend), "tablet", SEALED, 5.0)
        backend.begin_device("alice", current(backend), "Tablet", NEW_KEY, 6.0)
        backend.begin_device("alice", current(backend), "watch", SEALED, 7.0)
    row = read(backend)
    assert [d.name for d in row.devices] == ["phone", "Tablet", "watch"]
    assert device(row, "tablet").secret == NEW_KEY.sealed


def test_an_account_not_yet_active_has_one_set_up_at_a_time(backend: Backend) -> None:
    with backend.transaction():
        backend.begin_device("alice", None, "phone", SEALED, 5.0)
        backend.begin_device("alice", current(backend), "tablet", NEW_KEY, 6.0)
    assert [d.name for d in read(backend).devices] == ["tablet"]


def test_a_renewal_takes_the_place_of_an_earlier_renewal_only(backend: Backend) -> None:
    add_user(backend, "alice")
    with backend.transaction():
        backend.begin_device("alice", current(backend), "tablet", SEALED, 5.0)
        backend.begin_device("alice", current(backend), "phone 2", SEALED, 6.0, renews=True)
        backend.begin_device("alice", current(backend), "phone 3", NEW_KEY, 7.0, renews=True)
    row = read(backend)
    assert [d.name for d in row.devices] == ["phone", "tablet", "phone 3"]
    assert device(row, "phone 3").renews and not device(row, "tablet").renews


def test_activate_device_adds_a_device_and_keeps_the_account_as_it_was(backend: Backend) -> None:
    add_user(backend, "alice", [b"o" * 32])
    with backend.transaction():
        backend.record_failure(current(backend), FAILED, 1030.0)
        backend.begin_device("alice", current(backend), "tablet", NEW_KEY, 1040.0)
        row = current(backend)
        backend.activate_device(row, device(row, "tablet"), 77, 1050.0, None)
    row = read(backend)
    tablet = device(row, "tablet")
    assert tablet.active and (tablet.confirmed_at, tablet.last_step) == (1050.0, 77)
    assert device(row).active and device(row).last_step is None
    assert row.lock == FAILED and row.enrolled_at == 1.0
    assert codes(backend) == [(b"o" * 32, None)]


def test_activate_device_of_a_renewal_is_a_new_start(backend: Backend) -> None:
    with backend.transaction():
        backend.take_over("alice", None, Brought([BroughtDevice("phone", SEALED, 50, 8)]), 1.0)
        backend.begin_device("alice", current(backend), "tablet", SEALED, 2.0)
        backend.record_failure(current(backend), FAILED, 1030.0)
        backend.begin_device("alice", current(backend), "phone 2", NEW_KEY, 1050.0, renews=True)
        row = current(backend)
        backend.activate_device(row, device(row, "phone 2"), 77, 1060.0, [b"n" * 32])
    row = read(backend)
    [renewed] = row.devices
    assert (renewed.name, renewed.secret, renewed.params) == (
        "phone 2",
        NEW_KEY.sealed,
        NEW_KEY.params,
    )
    assert (renewed.last_step, renewed.drift, renewed.totp_window, renewed.renews) == (
        77,
        0,
        None,
        False,
    )
    assert row.enrolled_at == 1060.0 and row.lock == LockState(0, None, False, 0, ())
    assert codes(backend) == [(b"n" * 32, None)]


def test_activate_device_needs_a_pending_device(backend: Backend) -> None:
    row = add_user(backend, "alice")
    with pytest.raises(Conflict), backend.transaction():
        backend.activate_device(row, device(row), 77, 2.0, [])
    assert read(backend) == row


def test_take_over_makes_an_account_active_at_once(backend: Backend) -> None:
    brought = Brought([BroughtDevice("oath", NEW_KEY, 42, 8)], [b"a" * 32])
    with backend.transaction():
        backend.take_over("alice", None, brought, 3.0)
    row = read(backend)
    oath = device(row, "oath")
    assert row.active and oath.secret == NEW_KEY.sealed and oath.params == NEW_KEY.params
    assert (oath.last_step, oath.totp_window, row.enrolled_at, row.created_at) == (42, 8, 3.0, 3.0)
    assert codes(backend) == [(b"a" * 32, None)]
    with pytest.raises(Conflict), backend.transaction():
        backend.take_over("alice", None, Brought([BroughtDevice("phone", SEALED)]), 4.0)


def test_take_over_replaces_devices_set_up_counts_and_codes(backend: Backend) -> None:
    add_user(backend, "alice", [b"o" * 32], devices=("phone", "tablet"))
    with backend.transaction():
        backend.record_failure(current(backend), FAILED, 1030.0)
        backend.begin_device("alice", current(backend), "watch", SEALED, 1040.0)
        brought = Brought([BroughtDevice("google-authenticator", NEW_KEY, 9)], [b"b" * 32])
        backend.take_over("alice", current(backend), brought, 1050.0)
    row = read(backend)
    [imported] = row.devices
    assert imported.name == "google-authenticator" and imported.secret == NEW_KEY.sealed
    assert (imported.last_step, imported.drift, row.enrolled_at) == (9, 0, 1050.0)
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


def test_record_success_spends_the_step_of_its_device_only(backend: Backend) -> None:
    add_user(backend, "alice", devices=("phone", "tablet"))
    with backend.transaction():
        backend.record_failure(current(backend), FAILED, 1030.0)
        backend.record_success(
            current(backend), LockState(0, None, False, 7), 1040.0, device="phone", step=34
        )
    row = read(backend)
    assert row.lock == LockState(0, None, False, 7, ()) and row.last_success == 1040.0
    assert (device(row).last_step, device(row).drift, device(row).last_used) == (34, 0, 1040.0)
    assert (device(row, "tablet").last_step, device(row, "tablet").last_used) == (None, None)
    with backend.transaction():
        backend.record_success(
            row, LockState(0, None, False, 7), 1050.0, device="tablet", step=40, drift=-2
        )
        backend.record_success(current(backend), LockState(0, None, False, 7), 1060.0)
    row = read(backend)
    tablet = device(row, "tablet")
    assert (tablet.last_step, tablet.drift, tablet.last_used) == (40, -2, 1050.0)
    assert device(row).last_step == 34 and row.last_success == 1060.0  # a recovery code


def test_record_success_of_a_device_gone_meanwhile_is_a_conflict(backend: Backend) -> None:
    add_user(backend, "alice", devices=("phone", "tablet"))
    with backend.transaction():
        backend.begin_device("alice", current(backend), "watch", SEALED, 2.0)
    row = read(backend)
    for gone in ("watch", "laptop"):  # pending, and not there at all
        with pytest.raises(Conflict), backend.transaction():
            backend.record_success(row, LockState(0, None, False), 3.0, device=gone, step=9)
        assert read(backend) == row


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


def test_rename_device_keeps_its_key_and_steps(backend: Backend) -> None:
    add_user(backend, "alice", devices=("phone", "tablet"))
    with backend.transaction():
        backend.record_success(
            current(backend), LockState(0, None, False), 5.0, device="phone", step=12
        )
        before = device(current(backend))
        backend.rename_device(current(backend), "phone", "old phone")
    row = read(backend)
    assert row.device("phone") is None
    assert device(row, "old phone") == replace(before, name="old phone")
    with pytest.raises(Conflict), backend.transaction():
        backend.rename_device(current(backend), "phone", "new phone")  # no longer there


def test_remove_device_removes_that_one_only(backend: Backend) -> None:
    add_user(backend, "alice", [b"a" * 32], devices=("phone", "tablet"))
    with backend.transaction():
        backend.remove_device(current(backend), "phone")
    row = read(backend)
    assert [d.name for d in row.devices] == ["tablet"] and row.active
    assert codes(backend) == [(b"a" * 32, None)]
    with pytest.raises(Conflict), backend.transaction():
        backend.remove_device(current(backend), "phone")


def test_reseal_replaces_the_sealed_keys_and_nothing_else(backend: Backend) -> None:
    add_user(backend, "alice", [b"a" * 32])
    codes_before = codes(backend)
    with backend.transaction():
        backend.record_failure(current(backend), FAILED, 1.0)
        backend.begin_device("alice", current(backend), "tablet", NEW_KEY, 2.0)
        before = current(backend)
        sealed = {"phone": b"the key, sealed again", "tablet": b"the new key, sealed again"}
        backend.reseal(before, sealed)
    after = read(backend)
    assert {d.name: d.secret for d in after.devices} == sealed
    for was, now in zip(before.devices, after.devices, strict=True):
        assert replace(was, secret=now.secret) == now
    unchanged = set(UserRow.__dataclass_fields__) - {"devices", "version"}
    for name in unchanged:
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


def test_delete_user_takes_the_devices_and_codes_with_it(backend: Backend) -> None:
    add_user(backend, "alice", [b"x" * 32], devices=("phone", "tablet"))
    with backend.transaction():
        backend.delete_user(current(backend))
        assert backend.get_user("alice") is None
        assert backend.recovery_codes("alice") == []
    with backend.transaction():  # the same name enrolled again starts with nothing of before
        backend.begin_device("alice", None, "phone", NEW_KEY, 9.0)
        assert [d.secret for d in current(backend).devices] == [NEW_KEY.sealed]


def test_two_accounts_may_name_their_devices_alike(backend: Backend) -> None:
    add_user(backend, "alice")
    add_user(backend, "bob")
    with backend.transaction():
        backend.record_success(
            current(backend), LockState(0, None, False), 5.0, device="phone", step=3
        )
    assert device(read(backend, "bob")).last_step is None


def test_an_address_is_proven_then_the_accounts(backend: Backend) -> None:
    add_user(backend, "alice")
    with backend.transaction():
        backend.begin_email_address(current(backend), "a@example.org", b"h" * 40, 700.0, "100")
    row = read(backend)
    assert (row.email, row.email_pending, row.email_pending_digest) == (
        None,
        "a@example.org",
        b"h" * 40,
    )
    assert (row.email_pending_expires, row.email_sends) == (700.0, "100")
    with backend.transaction():
        backend.confirm_email_address(current(backend))
    row = read(backend)
    assert row.email == "a@example.org" and row.email_pending is None
    assert row.email_pending_digest is None and row.email_pending_expires is None
    with pytest.raises(Conflict), backend.transaction():
        backend.confirm_email_address(current(backend))  # nothing left to confirm


def test_an_address_set_or_removed_takes_what_was_mailed_before_with_it(
    backend: Backend,
) -> None:
    add_user(backend, "alice")
    with backend.transaction():
        backend.set_email_address(current(backend), "a@example.org")
        backend.begin_email_code(current(backend), b"c" * 40, 900.0, "100,200")
        backend.begin_email_address(current(backend), "b@example.org", b"h" * 40, 700.0, "1")
        backend.set_email_address(current(backend), "c@example.org")
    row = read(backend)
    assert row.email == "c@example.org"
    assert (row.email_pending, row.email_code_digest, row.email_code_expires) == (None, None, None)
    with backend.transaction():
        backend.set_email_address(current(backend), None)
    assert read(backend).email is None


def test_a_login_code_mailed_replaces_the_last_and_is_spent_by_its_success(
    backend: Backend,
) -> None:
    add_user(backend, "alice")
    with backend.transaction():
        backend.begin_email_code(current(backend), b"1" * 40, 900.0, "100")
        backend.begin_email_code(current(backend), b"2" * 40, 950.0, "100,200")
    row = read(backend)
    assert (row.email_code_digest, row.email_code_expires, row.email_sends) == (
        b"2" * 40,
        950.0,
        "100,200",
    )
    with backend.transaction():
        backend.record_success(current(backend), LockState(0, None, False), 300.0, emailed=True)
    row = read(backend)
    assert row.email_code_digest is None and row.email_code_expires is None
    assert row.email_sends == "100,200" and row.last_success == 300.0  # the send still counts


def test_a_send_withdrawn_drops_its_code_and_its_count(backend: Backend) -> None:
    add_user(backend, "alice")
    with backend.transaction():
        backend.begin_email_code(current(backend), b"1" * 40, 900.0, "100,200")
        backend.withdraw_email(current(backend), "100", code=True)
    row = read(backend)
    assert (row.email_code_digest, row.email_sends) == (None, "100")
    with backend.transaction():
        backend.begin_email_address(current(backend), "a@example.org", b"h" * 40, 700.0, "1,2")
        backend.withdraw_email(current(backend), None, code=False)
    row = read(backend)
    assert (row.email_pending, row.email_pending_digest, row.email_sends) == (None, None, None)


# --- every write is conditional on the row as read ------------------------------------

WRITES: dict[str, Callable[[Backend, UserRow], None]] = {
    "begin_device": lambda s, row: s.begin_device(row.name, row, "watch", NEW_KEY, 9.0),
    "activate_device": lambda s, row: s.activate_device(row, device(row, "tablet"), 5, 9.0, []),
    "take_over": lambda s, row: s.take_over(
        row.name, row, Brought([BroughtDevice("oath", NEW_KEY)]), 9.0
    ),
    "record_success": lambda s, row: s.record_success(
        row, LockState(0, None, False), 9.0, device="phone", step=5
    ),
    "record_failure": lambda s, row: s.record_failure(row, FAILED, 9.0),
    "clear_lock": lambda s, row: s.clear_lock(row),
    "rename_device": lambda s, row: s.rename_device(row, "phone", "old phone"),
    "remove_device": lambda s, row: s.remove_device(row, "tablet"),
    "reseal": lambda s, row: s.reseal(row, {"phone": b"sealed again"}),
    "replace_recovery_codes": lambda s, row: s.replace_recovery_codes(row, [b"n" * 32], 9.0),
    "delete_user": lambda s, row: s.delete_user(row),
    "begin_email_address": lambda s, row: s.begin_email_address(
        row, "a@example.org", b"h" * 40, 9.0, "9"
    ),
    "set_email_address": lambda s, row: s.set_email_address(row, "a@example.org"),
    "begin_email_code": lambda s, row: s.begin_email_code(row, b"c" * 40, 9.0, "9"),
    "withdraw_email": lambda s, row: s.withdraw_email(row, None, code=True),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_a_write_on_a_stale_row_is_a_conflict_and_changes_nothing(
    backend: Backend, rival: Backend, write: str
) -> None:
    add_user(backend, "alice", [b"x" * 32])
    with backend.transaction():
        backend.begin_device("alice", current(backend), "tablet", SEALED, 2.0)
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
        backend.begin_device("alice", current(backend), "tablet", SEALED, 2.0)
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
        return lambda store: store.record_success(
            row, LockState(0, None, False), 9.0, device="phone", step=101
        )

    assert race([(backend, spend(seen[0])), (rival, spend(seen[1]))]) == ["conflict", "won"]
    row = read(backend)
    assert device(row).last_step == 101 and row.version == seen[0].version + 1


def test_two_connections_adding_one_name_in_two_cases_get_one_winner(
    backend: Backend, rival: Backend
) -> None:
    """The table's key is exact, the account's names are not: the account's row decides."""
    add_user(backend, "alice")
    seen = read(backend)

    def add(name: str) -> Callable[[Backend], None]:
        return lambda store: store.begin_device("alice", seen, name, NEW_KEY, 9.0)

    assert race([(backend, add("Tablet")), (rival, add("tablet"))]) == ["conflict", "won"]
    assert len(read(backend).devices) == 2


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
    [phone] = alice.devices  # the account's one key became its one device
    assert alice.active and phone.name == "phone" and phone.secret == OLD_ALICE["secret"]
    assert phone.params == TotpParams() and phone.last_step == OLD_ALICE["last_step"]
    assert phone.confirmed_at == OLD_ALICE["enrolled_at"] and phone.totp_window is None
    # Failures counted before the lifetime count existed still count toward the hard lock.
    assert alice.lock == LockState(7, None, False, 7, ())
    assert codes(store) == [(OLD_DIGEST, None)]
    bob = read(store, "bob")
    [pending] = bob.devices  # a set-up begun: a device to confirm
    assert not bob.active and pending.secret == b"pending" and not pending.active
    with store.transaction():  # and every write works on what was migrated
        store.activate_device(bob, pending, 5, 9.0, [])
        store.record_failure(alice, FAILED, 9.0)
        store.set_meta("key_fingerprint", b"x")
    assert read(store).lock == FAILED and read(store, "bob").active
    carol = read(store, "carol")
    assert [(d.name, d.secret, d.active, d.renews) for d in carol.devices] == [
        ("phone", OLD_CAROL_KEYS[0], True, False),
        ("phone 2", OLD_CAROL_KEYS[1], False, True),  # replaces the phone once confirmed
    ]
    phone, renewal = carol.devices
    assert phone.params == TotpParams("SHA256", 8, 60) and renewal.params == TotpParams()
    assert (phone.last_step, phone.drift, phone.last_used, phone.confirmed_at) == (
        200,
        -2,
        40.0,
        3.0,
    )
    assert (renewal.added_at, renewal.last_step) == (50.0, None)
    with store.transaction():
        alice = current(store)
        store.record_success(alice, LockState(0, None, False), 10.0, device="phone", step=101)
    assert device(read(store)).last_step == 101
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
