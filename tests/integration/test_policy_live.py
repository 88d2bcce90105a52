"""The policy in a running twofad: start, reload, guard, explain, status, NSS groups."""

from __future__ import annotations

import os
import signal
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


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text("default: optional\n")
    return path


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


def enroll(daemon: Daemon, user: str) -> str:
    secret = daemon.request("enroll.begin", user=user)["secret"]
    now = time.time()
    if now % 30 > 27:
        time.sleep(30 - now % 30 + 0.1)
    daemon.request("enroll.confirm", user=user, code=oathtool(secret, time.time()))
    return str(secret)


def test_an_invalid_policy_stops_the_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("default: required\nrules:\n  - gruops: [sudo]\n    action: exempt\n")
    daemon = Daemon(tmp_path, "--policy", str(bad))
    with pytest.raises(RuntimeError, match=r"bad.yaml:3:5: rules\[0\]: unknown key 'gruops'"):
        daemon.start(timeout=10)
    assert daemon.proc is not None and daemon.proc.returncode == 1
    assert not Path(daemon.socket).exists()


def test_reload_applies_a_valid_file_and_keeps_the_old_one_on_error(
    live: Daemon, policy_file: Path
) -> None:
    assert live.request("check", user="root", service="sshd")["action"] == "skip"
    policy_file.write_text("default: required\n")
    done = twofactl(live.socket, "reload")
    assert done.returncode == 0 and "1" not in done.stderr
    assert "Policy reloaded" in done.stdout
    assert live.request("check", user="root", service="sshd")["action"] == "enroll"

    policy_file.write_text("default: exempt\nrules:\n  - from: [10.0.0.0/33]\n    action: exempt\n")
    failed = twofactl(live.socket, "reload")
    assert failed.returncode == 1
    assert (
        f"{policy_file}:3:12: rules[0].from[0]: '10.0.0.0/33' is not an IP network" in failed.stderr
    )
    assert live.request("check", user="root", service="sshd")["action"] == "enroll"  # old stays
    assert "policy not reloaded" in live.log_text()


def test_sighup_reloads_and_logs_errors(live: Daemon, policy_file: Path) -> None:
    assert live.proc is not None
    policy_file.write_text("default: required\n")
    live.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while live.request("check", user="root", service="sshd")["action"] != "enroll":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    policy_file.write_text("default: [\n")
    live.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "not valid YAML" not in live.log_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert live.alive()
    assert live.request("check", user="root", service="sshd")["action"] == "enroll"


def test_the_lockout_guard_refuses_and_force_overrides(live: Daemon, policy_file: Path) -> None:
    policy_file.write_text("default: required\nenrollment: {at_login: false}\n")
    refused = twofactl(live.socket, "reload")
    assert refused.returncode == 1
    assert "no administrator could log in" in refused.stderr and "--force" in refused.stderr
    assert live.request("check", user="root", service="sshd")["action"] == "skip"
    forced = twofactl(live.socket, "reload", "--force")
    assert forced.returncode == 0 and "forced" in forced.stdout
    assert live.request("check", user="root", service="sshd")["action"] == "refuse"


def test_the_guard_lets_a_policy_pass_once_an_admin_is_enrolled(
    live: Daemon, policy_file: Path
) -> None:
    enroll(live, "root")
    policy_file.write_text("default: required\nenrollment: {at_login: false}\n")
    assert twofactl(live.socket, "reload").returncode == 0


def test_groups_come_from_nss_including_supplementary(
    live: Daemon, policy_file: Path, group: str
) -> None:
    policy_file.write_text(f"rules:\n  - name: ops\n    groups: [{group}]\n    action: required\n")
    assert twofactl(live.socket, "reload").returncode == 0
    with throwaway_user(groups=(group,)) as member, throwaway_user() as other:
        explained = twofactl(live.socket, "policy", "explain", member.name, "--json").json()
        assert (explained["action"], explained["rule"]) == ("required", "ops")
        assert explained["line"] == f"{policy_file}:2"
        assert explained["state"] == "incomplete"
        assert live.request("check", user=member.name, service="sshd")["action"] == "enroll"
        assert live.request("check", user=other.name, service="sshd")["action"] == "skip"
        # Membership changes are seen at the next login, without a reload.
        subprocess.run(["gpasswd", "-a", other.name, group], check=True, capture_output=True)
        assert live.request("check", user=other.name, service="sshd")["action"] == "enroll"


def test_explain_in_words(live: Daemon, policy_file: Path) -> None:
    policy_file.write_text(
        "rules:\n  - name: lan\n    from: [192.168.0.0/16, 'fd00::/8']\n    action: exempt\n"
        "  - name: everyone\n    action: required\n"
    )
    assert twofactl(live.socket, "reload").returncode == 0
    lan = twofactl(live.socket, "policy", "explain", "root", "--from", "192.168.4.4")
    assert lan.returncode == 0
    assert f"root via sshd from 192.168.4.4: exempt (rule 'lan', {policy_file}:2)" in lan.stdout
    mapped = twofactl(
        live.socket, "policy", "explain", "root", "--from", "::ffff:192.168.4.4", "--json"
    )
    assert mapped.json()["action"] == "exempt"
    v6 = twofactl(live.socket, "policy", "explain", "root", "--from", "fd00::9", "--json").json()
    assert v6["rule"] == "lan"
    away = twofactl(
        live.socket, "policy", "explain", "root", "--from", "203.0.113.5", "--json"
    ).json()
    assert {k: away[k] for k in ("action", "rule", "state")} == {
        "action": "required",
        "rule": "everyone",
        "state": "incomplete",
    }


def test_policy_check_shows_the_impact_without_applying(
    live: Daemon, tmp_path: Path, group: str
) -> None:
    with throwaway_user(groups=(group,)) as member:
        enroll(live, member.name)
        candidate = tmp_path / "candidate.yaml"
        candidate.write_text(
            f"rules:\n  - name: ops\n    groups: [{group}, root]\n    action: required\n"
        )
        report = twofactl(live.socket, "policy", "check", str(candidate))
        assert report.returncode == 0, report.stderr
        assert f"{candidate}: valid, 1 rules." in report.stdout
        assert "Not set up yet (incomplete): root." in report.stdout
        as_json = twofactl(live.socket, "policy", "check", str(candidate), "--json").json()
        assert {r["user"]: r["state"] for r in as_json["required"]} == {
            member.name: "enabled",
            "root": "incomplete",
        }
        # Nothing was applied.
        assert live.request("check", user="root", service="sshd")["action"] == "skip"


def test_policy_check_reports_every_error(live: Daemon, tmp_path: Path) -> None:
    candidate = tmp_path / "typo.yaml"
    candidate.write_text("defualt: required\nrules:\n  - {users: [root], action: exmpt}\n")
    report = twofactl(live.socket, "policy", "check", str(candidate))
    assert report.returncode == 1
    assert f"{candidate}:1:1: unknown key 'defualt'" in report.stderr
    assert f"{candidate}:3:29: rules[0].action: 'exmpt' is not one of" in report.stderr


def test_status_lists_states_and_rules(live: Daemon, policy_file: Path) -> None:
    with throwaway_user() as enrolled, throwaway_user() as required:
        policy_file.write_text(
            f"rules:\n  - name: must\n    users: [{required.name}]\n    action: required\n"
        )
        assert twofactl(live.socket, "reload").returncode == 0
        enroll(live, enrolled.name)
        listed = twofactl(live.socket, "status", "--json").json()
        by_user = {s["user"]: (s["state"], s["rule"]) for s in listed}
        assert by_user[enrolled.name] == ("enabled", "default")
        assert by_user[required.name] == ("incomplete", "must")
        assert "root" not in by_user  # neither enrolled nor required
        incomplete = twofactl(live.socket, "status", "--state", "incomplete", "--json").json()
        assert [s["user"] for s in incomplete] == [required.name]
        table = twofactl(live.socket, "status").stdout
        assert "STATE" in table and "Incomplete" in table and "Enabled" in table
        for _ in range(5):
            live.request("verify", user=enrolled.name, code="000000")
        locked = twofactl(live.socket, "status", "--state", "locked", "--json").json()
        assert [s["user"] for s in locked] == [enrolled.name]
