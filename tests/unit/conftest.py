from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.fakes import Accounts, Clock
from twofad.keys import Keys
from twofad.policy import Policy
from twofad.service import Service
from twofad.store import Store


@pytest.fixture
def clock() -> Clock:
    # Ten seconds into a 30-second step, so a test has room before the next one.
    return Clock(1_700_000_010.0)


@pytest.fixture
def accounts() -> Accounts:
    directory = Accounts()
    directory.add("root", 0, "root")
    directory.add("alice", 1000, "alice", "sudo")
    directory.add("bob", 1001, "bob")
    return directory


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    instance = Store(str(tmp_path / "twofad.db"))
    yield instance
    instance.close()


@pytest.fixture
def keys() -> Keys:
    return Keys.from_master(bytes(range(32)))


@pytest.fixture
def service(store: Store, keys: Keys, clock: Clock, accounts: Accounts) -> Service:
    return Service(store, keys, Policy(issuer="testhost"), clock, accounts)
