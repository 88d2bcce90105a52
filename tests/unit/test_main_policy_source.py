"""Where twofad reads its policy from, at start and at every reload."""

from pathlib import Path

import pytest

from twofad.main import _policy_loader
from twofad.policy import REQUIRED


def test_a_vanished_system_policy_is_an_error_not_the_built_in(tmp_path: Path) -> None:
    system = tmp_path / "policy.yaml"
    system.write_text("default: required\n")
    load = _policy_loader(None, str(system))
    assert load().default == REQUIRED
    system.unlink()  # an editor's rename, a mistaken mv: the reload must keep the old one
    with pytest.raises(FileNotFoundError):
        load()


def test_the_built_in_until_a_system_policy_appears(tmp_path: Path) -> None:
    system = tmp_path / "policy.yaml"
    load = _policy_loader(None, str(system))
    assert load().source != str(system)
    system.write_text("default: required\n")
    assert load().default == REQUIRED
    system.unlink()
    with pytest.raises(FileNotFoundError):
        load()
