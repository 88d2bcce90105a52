"""The key ring: the current key seals; every key of the ring opens what it sealed."""

from __future__ import annotations

import pytest

from twofad.keys import KeyFileError, Keys

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def test_sealed_secrets_round_trip_and_are_bound_to_user_and_key() -> None:
    keys = Keys.from_master(b"k" * 32)
    sealed = keys.seal("alice", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    assert b"JBSWY3DP" not in sealed
    assert keys.unseal("alice", sealed) == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    assert keys.seal("alice", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP") != sealed  # fresh nonce
    with pytest.raises(KeyFileError):
        keys.unseal("bob", sealed)
    with pytest.raises(KeyFileError, match="does not hold"):
        Keys.from_master(b"x" * 32).unseal("alice", sealed)


def test_the_two_purposes_get_different_keys() -> None:
    key = Keys.from_master(b"k" * 32).current
    assert len({key.secret_key, key.recovery_key, key.id}) == 3
    assert b"k" * 32 not in (key.secret_key, key.recovery_key)


def test_a_secret_names_the_key_that_sealed_it_and_any_ring_holding_it_opens_it() -> None:
    old = Keys.from_master(b"o" * 32)
    sealed = old.seal("alice", SECRET)
    assert old.current.id in sealed and old.sealed_with_current(sealed)
    ring = Keys.from_master(b"n" * 32, [b"o" * 32])
    assert ring.unseal("alice", sealed) == SECRET and not ring.sealed_with_current(sealed)
    resealed = ring.seal("alice", ring.unseal("alice", sealed))
    assert ring.sealed_with_current(resealed)
    with pytest.raises(KeyFileError, match=f"sealed with key {old.current.name}"):
        Keys.from_master(b"n" * 32).unseal("alice", sealed)


def test_a_secret_sealed_before_key_ids_opens_with_whichever_key_sealed_it() -> None:
    import os

    old = Keys.from_master(b"o" * 32)
    nonce = os.urandom(12)
    legacy = (
        b"\x01" + nonce + old.current.aead.encrypt(nonce, SECRET.encode(), b"twofad-secret\0alice")
    )
    assert Keys.from_master(b"n" * 32, [b"o" * 32]).unseal("alice", legacy) == SECRET
    with pytest.raises(KeyFileError, match="any key of this host's ring"):
        Keys.from_master(b"n" * 32).unseal("alice", legacy)


def test_the_database_fingerprint_is_recognised_by_any_key_of_the_ring() -> None:
    old = Keys.from_master(b"o" * 32)
    assert Keys.from_master(b"n" * 32, [b"o" * 32]).matches(old.fingerprint)
    assert not Keys.from_master(b"n" * 32).matches(old.fingerprint)


def test_the_current_key_is_not_counted_twice_among_the_older() -> None:
    ring = Keys.from_master(b"n" * 32, [b"n" * 32, b"o" * 32, b"o" * 32])
    assert len(ring.older) == 1 and len(ring.all) == 2
