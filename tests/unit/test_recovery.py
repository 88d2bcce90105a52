from __future__ import annotations

import math

import pytest

from support.stores import add_user
from twofad import recovery
from twofad.keys import Keys
from twofad.store import Conflict, RecoveryRow, Store


def test_codes_have_at_least_40_random_bits_in_readable_groups() -> None:
    code = recovery.new_code()
    groups = code.split("-")
    assert [len(g) for g in groups] == [4, 4, 4]
    assert math.log2(len(recovery.ALPHABET)) * recovery.LENGTH >= 40
    assert len({recovery.new_code() for _ in range(1000)}) == 1000


def test_typed_forms_normalise_to_one_canonical_code() -> None:
    code = "k7pq-3xmd-9wtr"
    for typed in ("K7PQ-3XMD-9WTR", "k7pq 3xmd 9wtr", "k7pq3xmd9wtr", " K7PQ - 3xmd-9WTR "):
        assert recovery.normalize(typed) == "k7pq3xmd9wtr"
    assert recovery.normalize(code) == "k7pq3xmd9wtr"


def test_lookalike_letters_read_as_digits() -> None:
    assert recovery.normalize("oooo-iiii-llll") == "000011111111"


def test_non_codes_are_refused() -> None:
    for typed in ("", "123456", "k7pq-3xmd-9wt", "k7pq-3xmd-9wtru", "k7pq-3xmd-9wt!"):
        assert recovery.normalize(typed) is None


def test_digest_is_keyed_and_bound_to_the_user() -> None:
    canonical = "k7pq3xmd9wtr"
    one, other = Keys.from_master(b"a" * 32), Keys.from_master(b"b" * 32)
    assert one.recovery_digest("alice", canonical) != other.recovery_digest("alice", canonical)
    assert one.recovery_digest("alice", canonical) != one.recovery_digest("bob", canonical)


KEY = Keys.from_master(b"k" * 32)


def _with_codes(store: Store, *codes: str) -> None:
    add_user(store, "alice", recovery.digests_of(KEY, "alice", list(codes)))


def test_a_code_is_spent_once_then_a_replay(store: Store) -> None:
    _with_codes(store, "k7pq-3xmd-9wtr", "12345678")
    with store.transaction():
        assert recovery.redeem(store, KEY, "alice", "K7PQ 3XMD 9WTR", 2.0) == recovery.SPENT
        assert recovery.redeem(store, KEY, "alice", "k7pq-3xmd-9wtr", 3.0) == recovery.USED
        assert store.unused_recovery_count("alice") == 1


def test_what_is_no_code_of_the_users_is_unknown(store: Store) -> None:
    _with_codes(store, "k7pq-3xmd-9wtr")
    with store.transaction():
        for typed in ("", "123456", "zzzz-zzzz-zzzz", "87654321"):
            assert recovery.redeem(store, KEY, "alice", typed, 2.0) == recovery.UNKNOWN
        assert recovery.redeem(
            store, Keys.from_master(b"x" * 32), "alice", "k7pq-3xmd-9wtr", 2.0
        ) == (recovery.UNKNOWN)
        assert store.unused_recovery_count("alice") == 1


def test_a_code_spent_by_another_login_meanwhile_is_a_conflict(store: Store) -> None:
    """Two logins read the unspent code; the second one's spend must lose."""
    _with_codes(store, "k7pq-3xmd-9wtr")
    with store.transaction():
        read_before = store.recovery_codes("alice")

    class ReadBeforeTheOtherSpent:
        def recovery_codes(self, user: str) -> list[RecoveryRow]:
            return read_before

        def spend_recovery_code(self, code_id: int, now: float) -> None:
            store.spend_recovery_code(code_id, now)

    with store.transaction():
        assert recovery.redeem(store, KEY, "alice", "k7pq-3xmd-9wtr", 2.0) == recovery.SPENT
    with pytest.raises(Conflict), store.transaction():
        recovery.redeem(ReadBeforeTheOtherSpent(), KEY, "alice", "k7pq-3xmd-9wtr", 2.0)


def test_imported_codes_are_kept_once_and_a_malformed_one_refuses_all() -> None:
    digests = recovery.digests_of(KEY, "alice", ["12345678", "1234 5678", "87654321"])
    assert len(digests) == 2 and digests == sorted(digests)
    with pytest.raises(ValueError, match="malformed"):
        recovery.digests_of(KEY, "alice", ["12345678", "not a code"])


def test_new_codes_come_with_the_digests_that_recognise_them() -> None:
    codes, digests = recovery.new_codes(KEY, "alice", 8)
    assert len(set(codes)) == 8
    assert digests == [KEY.recovery_digest("alice", recovery.normalize(c) or "") for c in codes]


def test_a_code_made_under_an_older_key_works_while_that_key_is_in_the_ring(
    store: Store,
) -> None:
    old = Keys.from_master(b"o" * 32)
    add_user(store, "alice", recovery.digests_of(old, "alice", ["k7pq-3xmd-9wtr", "12345678"]))
    ring = Keys.from_master(b"n" * 32, [b"o" * 32])
    with store.transaction():
        assert recovery.redeem(store, ring, "alice", "k7pq-3xmd-9wtr", 2.0) == recovery.SPENT
        new_only = Keys.from_master(b"n" * 32)  # the old key retired: its codes are no more
        assert recovery.redeem(store, new_only, "alice", "12345678", 2.0) == recovery.UNKNOWN


def test_a_digest_of_the_kind_without_a_key_id_is_checked_against_every_key(
    store: Store,
) -> None:
    """Digests stored before key ids: the bare keyed hash, 32 bytes."""
    import hmac as hmac_module

    old = Keys.from_master(b"o" * 32)
    bare = hmac_module.new(old.current.recovery_key, b"alice\0k7pq3xmd9wtr", "sha256").digest()
    add_user(store, "alice", [bare])
    ring = Keys.from_master(b"n" * 32, [b"o" * 32])
    with store.transaction():
        assert recovery.redeem(store, ring, "alice", "k7pq-3xmd-9wtr", 2.0) == recovery.SPENT
