"""Where the client looks for the root-only socket, and when it trusts that place."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pam_twofa import client
from pam_twofa.client import root_socket_path


def test_the_root_only_socket_is_beside_the_shared_one() -> None:
    assert root_socket_path("/run/twofad/twofad.sock") == "/run/twofad/root/twofad.sock"
    assert root_socket_path("/tmp/t/other.sock") == "/tmp/t/root/other.sock"
    assert root_socket_path("relative.sock") == "./root/relative.sock"


def _place(tmp_path: Path, mode: int) -> str:
    (tmp_path / "root").mkdir(mode=mode)
    (tmp_path / "root").chmod(mode)
    return str(tmp_path / "root" / "twofad.sock")


def test_a_private_directory_of_root_is_trusted(tmp_path: Path) -> None:
    assert client._root_directory_trusted(_place(tmp_path, 0o700))


@pytest.mark.parametrize("mode", [0o750, 0o705, 0o755, 0o777, 0o701])
def test_a_directory_others_may_enter_is_not(tmp_path: Path, mode: int) -> None:
    assert not client._root_directory_trusted(_place(tmp_path, mode))


def test_a_symbolic_link_is_not(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "root").symlink_to(tmp_path / "elsewhere")
    assert not client._root_directory_trusted(str(tmp_path / "root" / "twofad.sock"))


def test_a_missing_directory_is_not(tmp_path: Path) -> None:
    assert not client._root_directory_trusted(str(tmp_path / "root" / "twofad.sock"))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the directory away")
def test_a_directory_of_someone_else_is_not(tmp_path: Path) -> None:
    path = _place(tmp_path, 0o700)
    os.chown(tmp_path / "root", 65534, 65534)  # nobody: neither root nor the parent's owner
    assert not client._root_directory_trusted(path)
    os.chown(tmp_path, 65534, 65534)  # ... unless nobody owns the parent too (twofad's user)
    assert client._root_directory_trusted(path)
