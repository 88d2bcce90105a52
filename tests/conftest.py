from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support.daemon import Daemon

if TYPE_CHECKING:  # support.postgres imports psycopg: only the tests that use it pay
    from support.postgres import Cluster, Database

# The daemon's libraries; `make test` runs the tests with Debian's and with PyPI's newest.
LIBRARIES = ("pyotp", "PyYAML", "cryptography", "segno", "systemd-python", "psycopg")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Which library set this run used, beside its result (pytest -q shows no header)."""
    versions = []
    for name in LIBRARIES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} absent")
    terminalreporter.write_line(f"libraries ({sys.prefix}): " + ", ".join(versions))


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A running twofad with its own socket, state directory and key."""
    instance = Daemon(tmp_path).start()
    yield instance
    if instance.alive():
        instance.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Cluster]:
    """One real PostgreSQL server for the whole run; each test takes a database of its own."""
    from support.postgres import Cluster

    cluster = Cluster().start()
    yield cluster
    cluster.destroy()


@pytest.fixture
def postgres_database(postgres_server: Cluster) -> Iterator[Database]:
    """A fresh, empty database on the shared server, owned by the twofad role."""
    database = postgres_server.new_database()
    yield database
    database.drop()


@pytest.fixture
def postgres_cluster() -> Iterator[Callable[[], Cluster]]:
    """Servers of the test's own, to kill, freeze or replicate; all removed after it."""
    from support.postgres import Cluster

    made: list[Cluster] = []

    def make() -> Cluster:
        made.append(Cluster())
        return made[-1]

    yield make
    for cluster in made:
        cluster.destroy()
