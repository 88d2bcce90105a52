from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from twofad.store import SCHEMA_VERSION, Conflict, Store, StoreError


def test_new_database_is_wal_at_the_current_schema(store: Store, tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "twofad.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.integrity_check() == "ok"


def test_reopening_keeps_data(tmp_path: Path) -> None:
    path = str(tmp_path / "twofad.db")
    first = Store(path)
    with first.transaction():
        first.insert_user("alice", 1.0)
    first.close()
    second = Store(path)
    with second.transaction():
        assert second.get_user("alice") is not None
    second.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "twofad.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer"):
        Store(str(path))


def test_update_is_a_compare_and_set(store: Store) -> None:
    with store.transaction():
        store.insert_user("alice", 1.0)
        seen = store.get_user("alice")
    assert seen is not None
    with store.transaction():
        store.update_user(seen, failures=1)
    with pytest.raises(Conflict), store.transaction():
        store.update_user(seen, failures=7)  # stale version: someone changed it meanwhile
    with store.transaction():
        current = store.get_user("alice")
    assert current is not None and current.failures == 1 and current.version == seen.version + 1


def test_an_update_without_changes_claims_the_row(store: Store) -> None:
    with store.transaction():
        store.insert_user("alice", 1.0)
        seen = store.get_user("alice")
    assert seen is not None
    with store.transaction():
        store.update_user(seen)
        claimed = store.get_user("alice")
    assert claimed is not None and claimed.version == seen.version + 1
    with pytest.raises(Conflict), store.transaction():
        store.update_user(seen)  # a second writer that read before the claim loses


def test_a_failed_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.insert_user("alice", 1.0)
        raise RuntimeError("boom")
    with store.transaction():
        assert store.get_user("alice") is None


def test_recovery_code_is_spent_once(store: Store) -> None:
    with store.transaction():
        store.insert_user("alice", 1.0)
        store.replace_recovery_codes("alice", [b"x" * 32, b"y" * 32], 1.0)
        first = store.recovery_codes("alice")[0]
        store.spend_recovery_code(first.id, 2.0)
    with pytest.raises(Conflict), store.transaction():
        store.spend_recovery_code(first.id, 3.0)
    with store.transaction():
        assert store.unused_recovery_count("alice") == 1


def test_deleting_a_user_deletes_their_codes(store: Store) -> None:
    with store.transaction():
        store.insert_user("alice", 1.0)
        store.replace_recovery_codes("alice", [b"x" * 32], 1.0)
        row = store.get_user("alice")
        assert row is not None
        store.delete_user(row)
        assert store.recovery_codes("alice") == []


def test_only_known_columns_are_writable(store: Store) -> None:
    with store.transaction():
        store.insert_user("alice", 1.0)
        row = store.get_user("alice")
    assert row is not None
    with pytest.raises(ValueError), store.transaction():
        store.update_user(row, **{"failures = 0; DROP TABLE users; --": 1})
    with pytest.raises(ValueError), store.transaction():
        store.update_user(row, version=99)


def test_a_version_1_database_is_migrated_in_place(tmp_path: Path) -> None:
    from twofad.store import MIGRATIONS

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[1])
    db.execute("INSERT INTO users (name, created_at) VALUES ('alice', 1.0)")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    store = Store(str(path))
    with store.transaction():
        alice = store.get_user("alice")
        assert alice is not None and alice.totp_window is None  # the policy's, as before
        assert store.get_meta("key_fingerprint") is None
        store.set_meta("key_fingerprint", b"x")
        store.set_meta("key_fingerprint", b"y")
        assert store.get_meta("key_fingerprint") == b"y"
    store.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_version_3_database_keeps_its_failures_as_strikes(tmp_path: Path) -> None:
    """Failures counted before the lifetime count existed still count toward the hard lock."""
    from twofad.store import MIGRATIONS

    path = tmp_path / "v3.db"
    db = sqlite3.connect(path)
    for version in (1, 2, 3):
        db.executescript(MIGRATIONS[version])
    db.execute("INSERT INTO users (name, created_at, failures) VALUES ('alice', 1.0, 7)")
    db.execute("INSERT INTO users (name, created_at) VALUES ('bob', 1.0)")
    db.execute("PRAGMA user_version = 3")
    db.commit()
    db.close()
    store = Store(str(path))
    with store.transaction():
        alice, bob = store.get_user("alice"), store.get_user("bob")
    store.close()
    assert alice is not None and (alice.failures, alice.strikes) == (7, 7)
    assert alice.recent_failures is None
    assert bob is not None and (bob.failures, bob.strikes) == (0, 0)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 4
