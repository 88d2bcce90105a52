from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.daemon import Daemon
from support.oath import CodeSource, oathtool
from support.users import TestUser, throwaway_user

REPO = Path(__file__).resolve().parents[2]
HOOK = REPO / "pam_twofa" / "hook.py"


@dataclass
class Enrolled:
    user: TestUser
    codes: CodeSource
    recovery_codes: list[str]


def enroll(daemon: Daemon, user: str) -> tuple[CodeSource, list[str]]:
    """Enroll and confirm `user` with a code from oathtool.

    The confirming code is the previous step's (still inside the ±1 window), which
    leaves the current and the next step free: two logins without waiting.
    """
    secret = str(daemon.request("enroll.begin", user=user)["secret"])
    source = CodeSource(secret)
    earlier = time.time() - 30
    confirmed = daemon.request("enroll.confirm", user=user, code=oathtool(secret, earlier))
    source.spend(earlier)
    return source, list(confirmed["recovery_codes"])  # type: ignore[call-overload]


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
