"""doctor on a broken and on a working set-up; try-login through a real PAM stack on a pty."""

from __future__ import annotations

import ctypes
import json
import sys
from pathlib import Path

import pytest

from support.cli import twofactl
from support.daemon import Daemon
from support.enrollment import HOOK, Enrolled
from support.pam import PAM_PYTHON, pam_service, run_in_pty
from support.sshd import SshServer
from support.users import set_password

pytestmark = pytest.mark.integration


def hook_line(daemon: Daemon, control: str = "required") -> str:
    return f"auth {control} {PAM_PYTHON} {HOOK} socket={daemon.socket}"


def doctor(daemon: Daemon, server: SshServer, login_service: str) -> dict[str, dict[str, object]]:
    done = twofactl(
        daemon.socket,
        "doctor",
        "--json",
        "--sshd-service",
        server.service,
        "--login-service",
        login_service,
        "--sshd-config",
        str(server.config_path),
    )
    checks = {row["check"]: row for row in done.json()}
    assert done.returncode == (0 if all(row["ok"] for row in checks.values()) else 1)
    return checks


def clock_synchronised() -> bool:
    class Timex(ctypes.Structure):
        _fields_ = (("modes", ctypes.c_uint), ("pad", ctypes.c_long * 40))

    return ctypes.CDLL(None).adjtimex(ctypes.byref(Timex())) != 5


def test_a_working_setup(hook_daemon: Daemon) -> None:
    stack = [hook_line(hook_daemon), "account required pam_permit.so"]
    with (
        SshServer(stack, authentication_methods="publickey,keyboard-interactive:pam") as server,
        pam_service("twofa-test", ["auth requisite pam_unix.so", *stack]) as login,
    ):
        checks = doctor(hook_daemon, server, login)
    for name in (
        "daemon",
        "policy",
        f"PAM {server.service}",
        f"PAM {login}",
        "sshd",
        "key file",
        "state directory",
        "administrators",
        "mailer",
    ):
        assert checks[name]["ok"], checks[name]
    assert checks["clock"]["ok"] == clock_synchronised()
    assert "publickey,keyboard-interactive:pam" in str(checks["sshd"]["detail"])


def test_a_broken_setup_names_each_fault_and_its_fix(
    hook_daemon: Daemon, policy_path: Path
) -> None:
    early_exit = [
        "auth sufficient pam_permit.so",
        hook_line(hook_daemon),
        "account required pam_permit.so",
    ]
    with (
        SshServer(early_exit, authentication_methods=None) as server,
        pam_service("twofa-test", ["auth required pam_unix.so"]) as login,
    ):
        hook_daemon.key_file.chmod(0o440)
        policy_path.write_text("rules:\n  - gruops: [x]\n    action: exempt\n")
        checks = doctor(hook_daemon, server, login)
        hook_daemon.key_file.chmod(0o400)
    sshd_pam = checks[f"PAM {server.service}"]
    assert not sshd_pam["ok"] and "sufficient pam_permit.so' succeeds past the hook" in str(
        sshd_pam["detail"]
    )
    assert not checks[f"PAM {login}"]["ok"] and "not in the auth stack" in str(
        checks[f"PAM {login}"]["detail"]
    )
    assert not checks["sshd"]["ok"] and "AuthenticationMethods 'any'" in str(
        checks["sshd"]["detail"]
    )
    assert not checks["key file"]["ok"] and "chmod 0400" in str(checks["key file"]["fix"])
    assert not checks["policy"]["ok"] and "unknown key 'gruops'" in str(checks["policy"]["detail"])
    assert checks["daemon"]["ok"]


def test_an_optional_hook_is_a_fault(hook_daemon: Daemon) -> None:
    with SshServer(
        [hook_line(hook_daemon, "optional")], authentication_methods="keyboard-interactive:pam"
    ) as server:
        checks = doctor(hook_daemon, server, server.service)
    assert "a wrong code would not stop a login" in str(checks[f"PAM {server.service}"]["detail"])
    # keyboard-interactive alone, and no password module: the code would be the only factor.
    assert not checks["sshd"]["ok"]
    assert "the code alone logs in" in str(checks["sshd"]["detail"])


def test_the_daemon_down(tmp_path: Path) -> None:
    done = twofactl(str(tmp_path / "none.sock"), "doctor")
    assert done.returncode == 1
    assert "✗ daemon: cannot reach twofad" in done.stdout


def test_try_login_proves_a_stack_on_a_terminal(hook_daemon: Daemon, enrolled: Enrolled) -> None:
    set_password(enrolled.user.name, "try-pw")
    lines = ["auth requisite pam_unix.so", hook_line(hook_daemon), "account required pam_unix.so"]
    with pam_service("twofa-test", lines) as service:
        command = [sys.executable, "-m", "pam_twofa.cli.ctl", "--socket", hook_daemon.socket]
        command += ["try-login", enrolled.user.name, "--service", service]
        good = run_in_pty(command, ["try-pw", enrolled.codes.next()])
        assert good.ok, good
        assert [p.strip() for p in good.prompts] == ["Password:", "Verification code:"]
        assert f"Success: {enrolled.user.name} could log in through {service}." in good.output
        bad = run_in_pty(command, ["try-pw", "000000"])
        assert bad.returncode == 1
        assert "Invalid verification code" in bad.output
        assert "could NOT log in: authentication failed" in bad.output
        as_json = run_in_pty([*command, "--json"], ["try-pw", enrolled.codes.next()])
        assert as_json.ok, as_json
        result = json.loads(as_json.output[as_json.output.index("{") :])
        assert result["ok"] and result["authenticated"] and result["account_ok"]
        assert (result["user"], result["service"]) == (enrolled.user.name, service)


def test_try_login_needs_a_terminal(hook_daemon: Daemon) -> None:
    done = twofactl(hook_daemon.socket, "try-login", "root")
    assert done.returncode == 1 and "needs a terminal" in done.stderr
