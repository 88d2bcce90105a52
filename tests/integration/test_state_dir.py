"""twofad refuses a state directory, or a database in it, that another user could write."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from support.daemon import Daemon
from support.users import throwaway_user

pytestmark = pytest.mark.integration


def _start(root: Path) -> subprocess.CompletedProcess[str]:
    daemon = Daemon(root)
    return subprocess.run(
        daemon.command(), capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
    )


def test_a_world_writable_state_directory_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    started = _start(tmp_path)
    assert started.returncode == 1
    assert f"{state}: the state directory is writable by group or others (mode 0777)" in (
        started.stderr
    )
    assert os.listdir(state) == []  # nothing was created in it


def test_a_group_writable_state_directory_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o770)
    state.chmod(0o770)
    started = _start(tmp_path)
    assert started.returncode == 1 and "mode 0770" in started.stderr


def test_a_state_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    with throwaway_user("tfs") as other:
        os.chown(state, other.uid, other.gid)
        started = _start(tmp_path)
    assert started.returncode == 1
    assert f"belongs to uid {other.uid}, not to twofad's user (uid 0)" in started.stderr


def test_a_database_planted_by_another_user_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    planted = state / "twofad.db"
    sqlite3.connect(planted).close()
    with throwaway_user("tfs") as other:
        os.chown(planted, other.uid, other.gid)
        started = _start(tmp_path)
    assert started.returncode == 1
    assert f"{planted}: a file of state belongs to uid {other.uid}" in started.stderr


def test_a_private_state_directory_is_taken(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o750)
    daemon = Daemon(tmp_path).start()
    try:
        assert daemon.request("ping")["pong"] is True
    finally:
        daemon.stop()
