from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.daemon import Daemon
from support.enrollment import Enrolled, enroll
from support.users import TestUser, throwaway_user


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every local user can reach (pytest's tmp_path is root's alone)."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="twofa-test-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def policy_path(shared_dir: Path) -> Path:
    path = shared_dir / "policy.yaml"
    path.write_text("default: optional\n")
    return path


@pytest.fixture
def hook_daemon(shared_dir: Path, policy_path: Path) -> Iterator[Daemon]:
    daemon = Daemon(shared_dir, "--policy", str(policy_path)).start()
    yield daemon
    if daemon.alive():
        daemon.stop()


@pytest.fixture
def person() -> Iterator[TestUser]:
    with throwaway_user() as user:
        yield user


@pytest.fixture
def enrolled(hook_daemon: Daemon, person: TestUser) -> Enrolled:
    codes, recovery = enroll(hook_daemon, person.name)
    return Enrolled(person, codes, recovery)
