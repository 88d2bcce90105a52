"""A store URL: SQLite's file, or a PostgreSQL connection string with no password in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from twofad.store import StoreError
from twofad.store.location import is_postgres, open_store, sqlite_path


@pytest.mark.parametrize(
    "location",
    [
        "postgresql:///twofa?host=/run/postgresql",
        "postgresql://twofad@db1,db2/twofa?target_session_attrs=read-write",
        "postgres://db/twofa",
        "service=twofa",
        "host=db1 dbname=twofa user=twofad",
    ],
)
def test_each_form_libpq_reads_is_postgres(location: str) -> None:
    assert is_postgres(location)


def test_a_sqlite_url_names_an_absolute_file(tmp_path: Path) -> None:
    assert sqlite_path(f"sqlite://{tmp_path}/a/../twofad.db") == f"{tmp_path}/twofad.db"
    opened = open_store(f"sqlite://{tmp_path}/twofad.db")
    try:
        assert not opened.remote and str(tmp_path) in opened.description
    finally:
        opened.store.close()


@pytest.mark.parametrize(
    "location",
    ["sqlite://relative.db", "sqlite:relative.db", "sqlite:///x.db?mode=ro", "/var/lib/x.db", ""],
)
def test_anything_else_is_refused_saying_what_is_read(location: str) -> None:
    with pytest.raises(StoreError, match="sqlite:///ABSOLUTE/PATH"):
        open_store(location)


@pytest.mark.parametrize(
    "location",
    [
        "postgresql://twofad:hunter2@db/twofa",
        "postgresql://db/twofa?password=hunter2",
        "dbname=twofa password=hunter2",
    ],
)
def test_a_password_in_the_url_is_refused_and_never_repeated(location: str) -> None:
    with pytest.raises(StoreError) as caught:
        open_store(location)
    assert "password" in caught.value.message and "hunter2" not in caught.value.message
