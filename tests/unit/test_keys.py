from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from twofad.keys import KeyFileError, Keys, load_or_create


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


def test_sealed_secrets_round_trip_and_are_bound_to_user_and_key() -> None:
    keys = Keys.from_master(b"k" * 32)
    sealed = keys.seal("alice", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    assert b"JBSWY3DP" not in sealed
    assert keys.unseal("alice", sealed) == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    assert keys.seal("alice", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP") != sealed  # fresh nonce
    with pytest.raises(KeyFileError):
        keys.unseal("bob", sealed)
    with pytest.raises(KeyFileError, match="does not belong"):
        Keys.from_master(b"x" * 32).unseal("alice", sealed)


def test_the_two_purposes_get_different_keys() -> None:
    keys = Keys.from_master(b"k" * 32)
    assert keys.secret_key != keys.recovery_key
    assert b"k" * 32 not in (keys.secret_key, keys.recovery_key)
