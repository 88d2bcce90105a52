from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.daemon import Daemon


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A running twofad with its own socket, state directory and key."""
    instance = Daemon(tmp_path).start()
    yield instance
    if instance.alive():
        instance.stop()
