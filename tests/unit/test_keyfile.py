"""Key files: created once, mode 0400; anything less private, or malformed, refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from twofad.keyfile import create_new, load_or_create, load_ring
from twofad.keys import KeyFileError


def test_first_start_creates_a_0400_key(tmp_path: Path) -> None:
    path = tmp_path / "twofad.key"
    old_umask = os.umask(0)  # even a permissive umask must not widen it
    try:
        keys = load_or_create(str(path))
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    assert path.stat().st_size == 32
    assert load_or_create(str(path)) == keys
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("mode", [0o440, 0o404, 0o600 | 0o004, 0o640])
def test_a_widely_readable_key_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "twofad.key"
    load_or_create(str(path))
    path.chmod(mode)
    with pytest.raises(KeyFileError, match=r"chmod 0400"):
        load_or_create(str(path))


def test_a_truncated_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "twofad.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o400)
    os.write(fd, b"short")
    os.close(fd)
    with pytest.raises(KeyFileError, match="exactly 32 bytes"):
        load_or_create(str(path))


def test_a_symlinked_key_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.key"
    load_or_create(str(real))
    (tmp_path / "link.key").symlink_to(real)
    with pytest.raises(KeyFileError):
        load_or_create(str(tmp_path / "link.key"))


def test_the_ring_is_the_current_key_and_every_older_key_file(tmp_path: Path) -> None:
    older = tmp_path / "older-keys"
    older.mkdir()
    first = create_new(str(older / "2025.key"))
    second = create_new(str(older / "2026.key"))
    (older / "notes.txt").write_text("not a key")
    ring = load_ring(str(tmp_path / "twofad.key"), str(older))
    assert ring.current.id not in (first.current.id, second.current.id)
    assert {k.id for k in ring.older} == {first.current.id, second.current.id}
    assert load_ring(str(tmp_path / "twofad.key"), str(tmp_path / "none")).older == ()


def test_an_older_key_file_is_held_to_the_same_rules(tmp_path: Path) -> None:
    older = tmp_path / "older-keys"
    older.mkdir()
    create_new(str(older / "old.key"))
    (older / "old.key").chmod(0o444)
    with pytest.raises(KeyFileError, match=r"chmod 0400"):
        load_ring(str(tmp_path / "twofad.key"), str(older))


def test_a_new_key_never_replaces_a_file(tmp_path: Path) -> None:
    path = tmp_path / "new.key"
    create_new(str(path))
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="exists already"):
        create_new(str(path))
    assert path.read_bytes() == before
