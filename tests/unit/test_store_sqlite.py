"""What only the SQLite backend promises, beyond the store contract."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from twofad.store import SCHEMA_VERSION, Store


def test_new_database_is_wal_at_the_current_schema(store: Store, tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "twofad.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.integrity_check() == "ok"
