"""twofactl, every subcommand through the real daemon: output, JSON and exit codes."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from support.cli import run_cli, twofactl
from support.daemon import Daemon
from support.enrollment import Enrolled, enroll
from support.oath import CodeSource, oathtool
from support.users import TestUser, throwaway_user

pytestmark = pytest.mark.integration


def test_enroll_and_confirm_print_json(hook_daemon: Daemon, person: TestUser) -> None:
    begun = twofactl(hook_daemon.socket, "enroll", person.name, "--json")
    assert begun.returncode == 0, begun.stderr
    data = begun.json()
    assert set(data) >= {"user", "secret", "uri", "qr"}
    confirmed = twofactl(
        hook_daemon.socket,
        "confirm",
        person.name,
        oathtool(data["secret"], time.time()),
        "--json",
    )
    assert confirmed.returncode == 0, confirmed.stderr
    assert len(confirmed.json()["recovery_codes"]) == 8


def test_enroll_off_a_terminal_says_how_to_confirm(hook_daemon: Daemon, person: TestUser) -> None:
    shown = twofactl(hook_daemon.socket, "enroll", person.name)
    assert shown.returncode == 0
    assert "█" in shown.stdout and "otpauth://totp/" in shown.stdout
    assert f"twofactl confirm {person.name} CODE" in shown.stdout


def test_verify_prints_the_result_and_exits_1_unless_accepted(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    code = enrolled.codes.next()
    ok = twofactl(hook_daemon.socket, "verify", enrolled.user.name, code, "--json")
    assert (ok.returncode, ok.json()["result"]) == (0, "accepted")
    again = twofactl(hook_daemon.socket, "verify", enrolled.user.name, code, "--json")
    assert (again.returncode, again.json()["result"]) == (1, "replayed")
    plain = twofactl(hook_daemon.socket, "verify", enrolled.user.name, "000000")
    assert plain.returncode == 1 and plain.stdout.strip() == f"{enrolled.user.name}: rejected"


def test_status_unlock_disable(hook_daemon: Daemon, enrolled: Enrolled) -> None:
    name = enrolled.user.name
    for _ in range(5):
        twofactl(hook_daemon.socket, "verify", name, "000000")
    locked = twofactl(hook_daemon.socket, "status", name, "--json").json()
    assert locked[0]["state"] == "locked" and locked[0]["failures"] == 5
    assert twofactl(hook_daemon.socket, "unlock", name).returncode == 0
    assert twofactl(hook_daemon.socket, "status", name, "--json").json()[0]["state"] == "enabled"
    disabled = twofactl(hook_daemon.socket, "disable", name, "--json")
    assert disabled.returncode == 0 and disabled.json()["state"] == "none"
    assert twofactl(hook_daemon.socket, "status", name, "--json").json()[0]["state"] == "disabled"
    again = twofactl(hook_daemon.socket, "disable", name)
    assert again.returncode == 1 and "not_enrolled" in again.stderr
    assert again.stderr.count("\n") == 1  # one line


def test_reset_keeps_the_old_key_until_confirmed(hook_daemon: Daemon, enrolled: Enrolled) -> None:
    name = enrolled.user.name
    new = twofactl(hook_daemon.socket, "reset", name, "--json").json()
    status = twofactl(hook_daemon.socket, "status", name, "--json").json()[0]
    assert status["renewal_pending"] is True
    assert twofactl(hook_daemon.socket, "verify", name, enrolled.codes.next()).returncode == 0
    new_codes = CodeSource(new["secret"])
    new_codes.spend(time.time() - 30)
    assert (
        twofactl(
            hook_daemon.socket,
            "confirm",
            name,
            oathtool(new["secret"], time.time() - 30),
        ).returncode
        == 0
    )
    assert twofactl(hook_daemon.socket, "verify", name, enrolled.codes.next()).returncode == 1
    assert twofactl(hook_daemon.socket, "verify", name, new_codes.next()).returncode == 0


def test_recovery_codes_to_a_file_owned_by_the_user(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    name = enrolled.user.name
    refused = twofactl(hook_daemon.socket, "recovery-codes", name)
    assert refused.returncode == 2 and "--regenerate" in refused.stderr  # a usage error
    target = Path(enrolled.user.home) / "recovery-codes.txt"
    done = twofactl(
        hook_daemon.socket, "recovery-codes", name, "--regenerate", "--output", str(target)
    )
    assert done.returncode == 0, done.stderr
    info = target.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert (info.st_uid, info.st_gid) == (enrolled.user.uid, enrolled.user.gid)
    codes = [line.strip() for line in target.read_text().splitlines() if line.startswith("    ")]
    assert len(codes) == 8
    assert twofactl(hook_daemon.socket, "verify", name, codes[0]).returncode == 0
    assert twofactl(hook_daemon.socket, "verify", name, enrolled.recovery_codes[0]).returncode == 1
    not_txt = twofactl(
        hook_daemon.socket, "recovery-codes", name, "--regenerate", "--output", "/tmp/x.csv"
    )
    assert not_txt.returncode == 1 and ".txt" in not_txt.stderr


def test_a_refused_output_file_keeps_the_old_recovery_codes(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    """The file is opened before the codes are renewed: a bad one changes nothing."""
    name = enrolled.user.name
    for output in ("/tmp/x.csv", "/nonexistent-dir/codes.txt"):
        refused = twofactl(
            hook_daemon.socket, "recovery-codes", name, "--regenerate", "--output", output
        )
        assert refused.returncode == 1, refused.stdout
        assert output.rsplit("/", 1)[0] in refused.stderr
    assert twofactl(hook_daemon.socket, "verify", name, enrolled.recovery_codes[0]).returncode == 0


def test_resync(hook_daemon: Daemon, enrolled: Enrolled) -> None:
    secret = enrolled.codes.secret
    now = time.time()
    ahead = [oathtool(secret, now + 300 + 30 * i) for i in (0, 1)]
    done = twofactl(hook_daemon.socket, "resync", enrolled.user.name, *ahead, "--json")
    assert done.returncode == 0 and done.json()["result"] == "accepted"
    assert done.json()["drift"] in (10, 11)
    bad = twofactl(hook_daemon.socket, "resync", enrolled.user.name, "111111", "222222", "--json")
    assert bad.returncode == 1 and bad.json()["result"] == "rejected"


def test_every_subcommand_has_help_with_an_example() -> None:
    from pam_twofa.cli import ctl, user

    for parser in (ctl.build_parser(), user.build_parser()):
        stack = [parser]
        while stack:
            current = stack.pop()
            for action in current._actions:
                if hasattr(action, "choices") and isinstance(action.choices, dict):
                    for sub in action.choices.values():
                        stack.append(sub)  # command groups (import, policy) too
                        assert "example" in (sub.epilog or ""), sub.prog


def test_usage_errors_exit_2(hook_daemon: Daemon) -> None:
    assert twofactl(hook_daemon.socket, "verify").returncode == 2
    assert twofactl(hook_daemon.socket, "status", "--state", "bogus").returncode == 2
    assert twofactl(hook_daemon.socket).returncode == 2
    group = twofactl(hook_daemon.socket, "policy")
    assert group.returncode == 2 and "explain" in group.stderr and "check" in group.stderr


def test_a_non_admin_is_refused_in_one_line(hook_daemon: Daemon, enrolled: Enrolled) -> None:
    with throwaway_user() as outsider:
        for args in (
            ("status",),
            ("status", enrolled.user.name),
            ("unlock", enrolled.user.name),
            ("disable", enrolled.user.name),
            ("reset", enrolled.user.name),
            ("verify", enrolled.user.name, "123456"),
            ("reload",),
            ("recovery-codes", enrolled.user.name, "--regenerate"),
        ):
            done = run_cli("ctl", hook_daemon.socket, *args, user=outsider.uid)
            assert done.returncode == 1, (args, done.stdout)
            assert "[unauthorized]" in done.stderr and done.stderr.count("\n") == 1, args
    assert (
        twofactl(hook_daemon.socket, "status", enrolled.user.name, "--json").json()[0]["state"]
        == "enabled"
    )


def test_an_admin_group_member_may_manage_but_not_verify(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    with throwaway_user(groups=("sudo",)) as admin:
        listed = run_cli("ctl", hook_daemon.socket, "status", "--json", user=admin.uid)
        assert listed.returncode == 0, listed.stderr
        assert enrolled.user.name in {row["user"] for row in json.loads(listed.stdout)}
        assert (
            run_cli(
                "ctl", hook_daemon.socket, "unlock", enrolled.user.name, user=admin.uid
            ).returncode
            == 0
        )
        refused = run_cli(
            "ctl", hook_daemon.socket, "verify", enrolled.user.name, "123456", user=admin.uid
        )
        assert refused.returncode == 1 and "[unauthorized]" in refused.stderr


def test_socket_from_the_environment(hook_daemon: Daemon) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "pam_twofa.cli.ctl", "status", "--json"],
        env={**os.environ, "TWOFA_SOCKET": hook_daemon.socket},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and isinstance(json.loads(done.stdout), list)
    missing = twofactl("/nonexistent/twofad.sock", "status")
    assert missing.returncode == 1 and "cannot reach twofad" in missing.stderr


def test_an_admin_proves_themselves_with_a_code_on_their_own_account(
    hook_daemon: Daemon,
) -> None:
    with throwaway_user(groups=("sudo",)) as admin:
        codes, _ = enroll(hook_daemon, admin.name)
        bare = run_cli("ctl", hook_daemon.socket, "disable", admin.name, user=admin.uid)
        assert bare.returncode == 1 and "code is required" in bare.stderr
        wrong = run_cli(
            "ctl", hook_daemon.socket, "disable", admin.name, "--code", "000000", user=admin.uid
        )
        assert wrong.returncode == 1 and "[invalid_code]" in wrong.stderr
        still = twofactl(hook_daemon.socket, "status", admin.name, "--json").json()[0]
        assert still["state"] == "enabled"  # nothing changed: one wrong code locks nobody
        done = run_cli(
            "ctl",
            hook_daemon.socket,
            "disable",
            admin.name,
            "--code",
            codes.next(),
            user=admin.uid,
        )
        assert done.returncode == 0, done.stderr
        status = twofactl(hook_daemon.socket, "status", admin.name, "--json").json()[0]
        assert status["state"] == "disabled"
