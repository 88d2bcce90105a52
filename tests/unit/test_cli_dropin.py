"""The web console's drop-in as twofactl writes it: its text, and its file on disk."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pam_twofa.cli import _ctl_policy, _dropin, ctl
from pam_twofa.client import RequestFailed
from twofad.policy_file import parse_fragment


@pytest.fixture
def tight_umask() -> Iterator[None]:
    old = os.umask(0o077)
    yield
    os.umask(old)


def test_the_text_is_rules_the_daemon_reads_and_twofactl_reads_back() -> None:
    text = _dropin.render(["alice", "bob"], ["domain admins"])
    assert text.startswith("# Written by twofactl require (the web console's page)")
    assert "edit policy.yaml instead" in text
    rules = parse_fragment(text, "web-console.yaml")
    assert [(r.name, r.action, r.users, r.groups) for r in rules] == [
        ("web-console-users", "required", ("alice", "bob"), None),
        ("web-console-groups", "required", None, ("domain admins",)),
    ]
    assert _dropin.parse(text, "f") == (["alice", "bob"], ["domain admins"])


def test_no_one_is_no_rule() -> None:
    text = _dropin.render([], [])
    assert parse_fragment(text, "web-console.yaml") == ()
    assert _dropin.parse(text, "f") == ([], [])
    assert _dropin.parse("", "f") == ([], [])


@pytest.mark.parametrize(
    "text",
    [
        "rules:\n  - {name: mine, action: exempt}\n",
        '{"rules": [{"name": "mine", "action": "exempt"}]}',
        '{"rules": 5}',
        "[1]",
    ],
)
def test_a_hand_edited_drop_in_is_not_guessed_at(text: str) -> None:
    with pytest.raises(_dropin.DropinError, match="not as twofactl require writes it"):
        _dropin.parse(text, "web-console.yaml")


def test_written_whole_with_its_final_mode_whatever_the_umask(
    tmp_path: Path, tight_umask: None
) -> None:
    path = tmp_path / "policy.d" / "web-console.yaml"
    _dropin.write(str(path), "one\n")
    _dropin.write(str(path), "two\n")
    assert path.read_text() == "two\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o755
    assert os.listdir(path.parent) == ["web-console.yaml"]  # no temporary file left
    if os.geteuid() == 0:
        assert (path.stat().st_uid, path.stat().st_gid) == (0, 0)


def test_put_back_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "web-console.yaml"
    _dropin.write(str(path), "new\n")
    _dropin.restore(str(path), "old\n")
    assert _dropin.read(str(path)) == "old\n"
    _dropin.restore(str(path), None)
    assert not path.exists() and _dropin.read(str(path)) is None


def test_never_read_through_a_link(tmp_path: Path) -> None:
    (tmp_path / "target").write_text("x")
    (tmp_path / "web-console.yaml").symlink_to(tmp_path / "target")
    with pytest.raises(_dropin.DropinError, match="a symbolic link"):
        _dropin.read(str(tmp_path / "web-console.yaml"))


def test_a_directory_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "policy.d").write_text("a file where the directory should be")
    with pytest.raises(_dropin.DropinError, match="cannot write in"):
        _dropin.write(str(tmp_path / "policy.d" / "web-console.yaml"), "x")


class Daemon:
    """Answers `policy.check` as twofad would for a drop-in it includes; `reload` fails."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.asked: list[str] = []

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        self.asked.append(op)
        if op == "reload":
            raise RequestFailed("invalid_policy", f"{self.path}:1:1: not read: its directory ...")
        return {
            "source": str(self.path.parent.parent / "policy.yaml"),
            "rules": 1,
            "required": [],
            "lockout_risk": None,
            "next": None,
            "dropin": {
                "name": "policy.d/web-console.yaml",
                "file": str(self.path),
                "included": True,
            },
        }


@pytest.mark.parametrize("before", [None, "# the old one\n"])
def test_a_drop_in_the_daemon_will_not_load_is_put_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], before: str | None
) -> None:
    path = tmp_path / "policy.d" / "web-console.yaml"
    if before is not None:
        _dropin.write(str(path), before)
    daemon = Daemon(path)
    args = ctl.build_parser().parse_args(["require", "set", "--users", "alice", "--json"])
    assert _ctl_policy._require_set(daemon, args) == 1  # type: ignore[arg-type]
    assert daemon.asked == ["policy.check", "reload"]
    assert _dropin.read(str(path)) == before
    out, err = capsys.readouterr()
    assert json.loads(out)["reloaded"] is False
    assert "the daemon did not load it: " in err
    assert ("is back as it was" if before else "is removed again") in err


@pytest.mark.parametrize(
    "path",
    [
        "/etc/shadow",
        "/etc/twofa/policy.d/other.yaml",
        "/etc/twofa/elsewhere/web-console.yaml",
        "policy.d/web-console.yaml",
        "/etc/twofa/policy.d/../policy.d/web-console.yaml",
        None,
    ],
)
def test_a_daemon_naming_another_file_is_not_written_to(path: Any) -> None:
    """twofactl runs as root: the drop-in's path in an answer is checked before use."""
    with pytest.raises(_dropin.DropinError, match="nothing read or written"):
        _ctl_policy._checked_path(path)
    assert _ctl_policy._checked_path("/etc/twofa/policy.d/web-console.yaml")
