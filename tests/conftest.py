from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.daemon import Daemon

# The daemon's libraries; `make test` runs the tests with Debian's and with PyPI's newest.
LIBRARIES = ("pyotp", "PyYAML", "cryptography", "segno", "systemd-python")


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
