"""PrivateFile: opened before its content exists, written whole or not at all."""

import os
import stat
from pathlib import Path

import pytest

from pam_twofa.files import FileRefused, PrivateFile


def test_commit_writes_a_private_file_and_leaves_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "codes.txt"
    opened = PrivateFile(str(target))
    assert not target.exists()  # nothing at the target until the content is there
    opened.commit("one\ntwo\n")
    assert target.read_text() == "one\ntwo\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["codes.txt"]


def test_discard_leaves_no_temporary_file(tmp_path: Path) -> None:
    opened = PrivateFile(str(tmp_path / "codes.txt"))
    assert len(os.listdir(tmp_path)) == 1  # the temporary file, created with its mode
    opened.discard()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["codes.csv", "missing-dir/codes.txt"])
def test_refused_before_anything_is_created(tmp_path: Path, name: str) -> None:
    with pytest.raises(FileRefused):
        PrivateFile(str(tmp_path / name))
    assert os.listdir(tmp_path) == []
