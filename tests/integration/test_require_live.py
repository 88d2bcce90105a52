"""`twofactl require`: the web console's drop-in, written beside a real twofad's policy.

The hand-written policy.yaml must come out of every run byte for byte as it went in.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cli import twofactl
from support.daemon import Daemon
from support.oath import oathtool
from support.users import throwaway_user

pytestmark = pytest.mark.integration

HAND_WRITTEN = (
    "# mine, with my comments and my spacing\n"
    "default:   optional\n"
    "include: [policy.d/*.yaml]\n"
    "rules:\n"
    "  - name: own\n"
    "    users: [nobody]\n"
    "    action: exempt\n"
)


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(HAND_WRITTEN)
    return path


@pytest.fixture
def dropin(tmp_path: Path) -> Path:
    return tmp_path / "policy.d" / "web-console.yaml"


@pytest.fixture
def live(tmp_path: Path, policy_file: Path) -> Iterator[Daemon]:
    daemon = Daemon(tmp_path, "--policy", str(policy_file)).start()
    yield daemon
    if daemon.alive():
        daemon.stop()


@pytest.fixture
def group() -> Iterator[str]:
    name = f"tfg{os.urandom(3).hex()}"
    subprocess.run(["groupadd", name], check=True)
    yield name
    subprocess.run(["groupdel", name], check=False)


def enroll(daemon: Daemon, user: str) -> None:
    secret = daemon.request("enroll.begin", user=user)["secret"]
    now = time.time()
    if now % 30 > 27:
        time.sleep(30 - now % 30 + 0.1)
    daemon.request("enroll.confirm", user=user, code=oathtool(str(secret), time.time()))


def test_show_before_anything_is_written(live: Daemon, dropin: Path) -> None:
    shown = twofactl(live.socket, "require", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    assert shown.json() == {"users": [], "groups": [], "file": str(dropin), "included": True}
    words = twofactl(live.socket, "require", "show")
    assert f"{dropin} (not written yet):" in words.stdout and "users:  -" in words.stdout


def test_a_dry_run_shows_who_and_writes_nothing(
    live: Daemon, policy_file: Path, dropin: Path, group: str
) -> None:
    with throwaway_user(groups=(group,)) as member, throwaway_user() as alone:
        enroll(live, member.name)
        report = twofactl(
            live.socket, "require", "set", "--users", alone.name, "--groups", group,
            "--dry-run", "--json",
        )  # fmt: skip
        assert report.returncode == 0, report.stderr
        data = report.json()
        assert {r["user"]: (r["state"], r["rule"]) for r in data["required"]} == {
            member.name: ("enabled", "web-console-groups"),
            alone.name: ("incomplete", "web-console-users"),
        }
        assert data["incomplete"] == [alone.name] and data["lockout_risk"] is None
        assert (data["written"], data["reloaded"], data["file"]) == (False, False, str(dropin))
        assert (data["users"], data["groups"]) == ([alone.name], [group])
        words = twofactl(live.socket, "require", "set", "--users", alone.name, "--dry-run")
        assert f"Not set up yet (incomplete): {alone.name}." in words.stdout
        assert "They need an app before they can log in." in words.stdout
        assert "Dry run" in words.stdout
        assert not dropin.parent.exists()
        assert live.request("check", user=alone.name, service="sshd")["action"] == "skip"
    assert policy_file.read_text() == HAND_WRITTEN


def test_set_writes_the_drop_in_and_puts_it_in_force(
    live: Daemon, policy_file: Path, dropin: Path, group: str
) -> None:
    with throwaway_user(groups=(group,)) as member, throwaway_user() as alone:
        done = twofactl(
            live.socket, "require", "set", "--users", alone.name, "--groups", group, "--json"
        )
        assert done.returncode == 0, done.stderr
        assert (done.json()["written"], done.json()["reloaded"]) == (True, True)
        assert stat.S_IMODE(dropin.stat().st_mode) == 0o644
        assert stat.S_IMODE(dropin.parent.stat().st_mode) == 0o755
        assert dropin.read_text().startswith("# Written by twofactl require")
        explained = twofactl(live.socket, "policy", "explain", alone.name, "--json").json()
        assert (explained["action"], explained["rule"]) == ("required", "web-console-users")
        assert explained["line"] == f"{dropin}:5"
        by_group = twofactl(live.socket, "policy", "explain", member.name).stdout
        assert f"required (rule 'web-console-groups', {dropin}:" in by_group
        assert live.request("check", user=alone.name, service="sshd")["action"] == "enroll"
        shown = twofactl(live.socket, "require", "show", "--json").json()
        assert (shown["users"], shown["groups"]) == ([alone.name], [group])

        # Empty lists: no rule left, no one required by the page.
        cleared = twofactl(live.socket, "require", "set")
        assert cleared.returncode == 0, cleared.stderr
        assert "a code required of no one" in cleared.stdout
        assert live.request("check", user=alone.name, service="sshd")["action"] == "skip"
        assert twofactl(live.socket, "require", "show", "--json").json()["users"] == []
    assert policy_file.read_text() == HAND_WRITTEN


def test_the_hand_written_rules_come_first(live: Daemon, policy_file: Path, tmp_path: Path) -> None:
    done = twofactl(live.socket, "require", "set", "--users", "nobody", "root")
    assert done.returncode == 0, done.stderr
    nobody = twofactl(live.socket, "policy", "explain", "nobody", "--json").json()
    assert (nobody["rule"], nobody["line"]) == ("own", f"{policy_file}:5")
    root = twofactl(live.socket, "policy", "explain", "root", "--json").json()
    assert root["rule"] == "web-console-users"


def test_the_lockout_guard_refuses_and_writes_nothing_unless_forced(
    tmp_path: Path, dropin: Path
) -> None:
    policy_file = tmp_path / "policy.yaml"
    hand_written = "enrollment: {at_login: false}\ninclude: [policy.d/*.yaml]\n"
    policy_file.write_text(hand_written)
    live = Daemon(tmp_path, "--policy", str(policy_file)).start()
    try:
        refused = twofactl(live.socket, "require", "set", "--users", "root", "--json")
        assert refused.returncode == 1
        assert "no administrator could log in" in refused.stderr
        assert "nothing written" in refused.stderr and "--force" in refused.stderr
        assert refused.json()["lockout_risk"] and not refused.json()["written"]
        assert not dropin.exists()
        assert live.request("check", user="root", service="sshd")["action"] == "skip"

        dry = twofactl(live.socket, "require", "set", "--users", "root", "--dry-run")
        assert dry.returncode == 0 and "Warning: " in dry.stdout and not dropin.exists()

        forced = twofactl(live.socket, "require", "set", "--users", "root", "--force")
        assert forced.returncode == 0, forced.stderr
        assert dropin.exists()
        assert live.request("check", user="root", service="sshd")["action"] == "refuse"
    finally:
        live.stop()
    assert policy_file.read_text() == hand_written


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--users=-rf",), "user '-rf' is not a valid user name"),
        (("--users", "../etc"), "is not a valid user name"),
        (("--groups", "a:b"), "group 'a:b' is not a valid group name"),
        (("--groups", " sudo"), "is not a valid group name"),
    ],
)
def test_bad_names_change_nothing(
    live: Daemon, policy_file: Path, dropin: Path, args: tuple[str, ...], says: str
) -> None:
    assert twofactl(live.socket, "require", "set", "--users", "root").returncode == 0
    before = dropin.read_bytes()
    failed = twofactl(live.socket, "require", "set", *args)
    assert failed.returncode == 1 and says in failed.stderr
    assert dropin.read_bytes() == before
    assert policy_file.read_text() == HAND_WRITTEN


def test_a_policy_that_does_not_include_it_is_not_written_to(tmp_path: Path, dropin: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text("default: optional\n")
    live = Daemon(tmp_path, "--policy", str(policy_file)).start()
    try:
        shown = twofactl(live.socket, "require", "show", "--json").json()
        assert shown["included"] is False
        assert "does not include it" in twofactl(live.socket, "require", "show").stdout
        refused = twofactl(live.socket, "require", "set", "--users", "root")
        assert refused.returncode == 1
        assert f"{policy_file} does not include policy.d/web-console.yaml" in refused.stderr
        assert "include: [policy.d/*.yaml]" in refused.stderr
        assert not dropin.parent.exists()
    finally:
        live.stop()
    assert policy_file.read_text() == "default: optional\n"


def test_a_drop_in_edited_by_hand_is_refused_by_show(live: Daemon, dropin: Path) -> None:
    dropin.parent.mkdir()
    dropin.write_text("rules:\n  - {name: mine, users: [root], action: exempt}\n")
    shown = twofactl(live.socket, "require", "show")
    assert shown.returncode == 1 and "not as twofactl require writes it" in shown.stderr
    # `set` replaces it whole, as it says.
    assert twofactl(live.socket, "require", "set", "--users", "root").returncode == 0
    assert twofactl(live.socket, "require", "show", "--json").json()["users"] == ["root"]
