"""Real logins: the OpenSSH client against a real sshd on 127.0.0.1, through the hook.

(a) key then code: AuthenticationMethods publickey,keyboard-interactive:pam, and a PAM
    stack with the hook alone in auth.
(b) password then code: keyboard-interactive with pam_unix first, then the hook.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.daemon import Daemon
from support.enrollment import HOOK, Enrolled
from support.oath import oathtool
from support.pam import PAM_PYTHON
from support.sshd import SshServer, authorize_key, ssh_login
from support.users import set_password

pytestmark = pytest.mark.integration

ACCOUNT_AND_SESSION = ["account required pam_unix.so", "session required pam_permit.so"]


def hook(daemon: Daemon) -> str:
    return f"auth required {PAM_PYTHON} {HOOK} socket={daemon.socket}"


@pytest.fixture
def key_then_code(hook_daemon: Daemon) -> Iterator[SshServer]:
    with SshServer(
        [hook(hook_daemon), *ACCOUNT_AND_SESSION],
        authentication_methods="publickey,keyboard-interactive:pam",
    ) as server:
        yield server


@pytest.fixture
def password_then_code(hook_daemon: Daemon) -> Iterator[SshServer]:
    with SshServer(
        ["auth requisite pam_unix.so", hook(hook_daemon), *ACCOUNT_AND_SESSION],
        authentication_methods="keyboard-interactive:pam",
    ) as server:
        yield server


@pytest.fixture
def identity(enrolled: Enrolled, tmp_path: Path) -> Path:
    return authorize_key(enrolled.user, tmp_path)


def test_key_then_the_right_code_runs_the_command(
    key_then_code: SshServer, enrolled: Enrolled, identity: Path
) -> None:
    login = ssh_login(key_then_code, enrolled.user, [enrolled.codes.next()], identity=identity)
    assert login.ok, login
    assert "LOGIN-OK" in login.output
    assert [p.strip().endswith("Verification code:") for p in login.prompts] == [True]


def test_key_then_a_wrong_code_is_refused(
    key_then_code: SshServer, enrolled: Enrolled, identity: Path
) -> None:
    login = ssh_login(key_then_code, enrolled.user, ["000000"], identity=identity)
    assert login.returncode == 255 and "LOGIN-OK" not in login.output
    assert "Invalid verification code" in login.output
    assert "Permission denied" in login.output


def test_the_same_code_cannot_log_in_twice(
    key_then_code: SshServer, enrolled: Enrolled, identity: Path
) -> None:
    code = enrolled.codes.next()
    assert ssh_login(key_then_code, enrolled.user, [code], identity=identity).ok
    again = ssh_login(key_then_code, enrolled.user, [code], identity=identity)
    assert again.returncode == 255 and "LOGIN-OK" not in again.output


def test_a_recovery_code_logs_in_once(
    key_then_code: SshServer, enrolled: Enrolled, identity: Path
) -> None:
    code = enrolled.recovery_codes[5]
    first = ssh_login(key_then_code, enrolled.user, [code], identity=identity)
    assert first.ok and "LOGIN-OK" in first.output, first
    assert "Recovery code accepted; 7 left." in first.output
    second = ssh_login(key_then_code, enrolled.user, [code], identity=identity)
    assert second.returncode == 255


def test_without_the_key_there_is_no_code_prompt(
    key_then_code: SshServer, enrolled: Enrolled
) -> None:
    login = ssh_login(key_then_code, enrolled.user, [enrolled.codes.next()])
    assert login.returncode == 255 and login.prompts == []


def test_password_then_code(password_then_code: SshServer, enrolled: Enrolled) -> None:
    set_password(enrolled.user.name, "tr0ub4dor&3")
    login = ssh_login(password_then_code, enrolled.user, ["tr0ub4dor&3", enrolled.codes.next()])
    assert login.ok and "LOGIN-OK" in login.output, login
    assert login.prompts[0].strip().endswith("Password:")
    assert login.prompts[1].strip().endswith("Verification code:")
    wrong_code = ssh_login(password_then_code, enrolled.user, ["tr0ub4dor&3", "000000"])
    assert wrong_code.returncode == 255 and "Invalid verification code" in wrong_code.output


def test_a_wrong_password_never_reaches_the_code(
    password_then_code: SshServer, enrolled: Enrolled
) -> None:
    set_password(enrolled.user.name, "tr0ub4dor&3")
    login = ssh_login(password_then_code, enrolled.user, ["wrong", enrolled.codes.next()])
    assert login.returncode == 255
    assert not any("Verification code" in prompt for prompt in login.prompts)


def test_password_then_code_refuses_replays_and_takes_a_recovery_code_once(
    password_then_code: SshServer, enrolled: Enrolled
) -> None:
    set_password(enrolled.user.name, "tr0ub4dor&3")
    code = enrolled.codes.next()
    assert ssh_login(password_then_code, enrolled.user, ["tr0ub4dor&3", code]).ok
    replayed = ssh_login(password_then_code, enrolled.user, ["tr0ub4dor&3", code])
    assert replayed.returncode == 255 and "LOGIN-OK" not in replayed.output
    assert "Invalid verification code" in replayed.output
    recovery = enrolled.recovery_codes[2]
    first = ssh_login(password_then_code, enrolled.user, ["tr0ub4dor&3", recovery])
    assert first.ok and "Recovery code accepted; 7 left." in first.output, first
    again = ssh_login(password_then_code, enrolled.user, ["tr0ub4dor&3", recovery])
    assert again.returncode == 255 and "LOGIN-OK" not in again.output


@pytest.mark.parametrize("setup", ["key then code", "password then code"])
def test_first_login_enrolls_end_to_end(
    hook_daemon: Daemon, policy_path: Path, person: object, tmp_path: Path, setup: str
) -> None:
    policy_path.write_text("default: required\n")
    hook_daemon.request("reload")
    seen: dict[str, str] = {}

    def confirm_with_code_from_screen(output: str) -> str:
        match = re.search(r"Key: ((?:[A-Z2-7]{4} ?){8})", output)
        assert match, output
        seen["secret"] = match.group(1).replace(" ", "")
        assert f"secret={seen['secret']}" in output  # the otpauth:// URI, to paste
        seen["at"] = str(time.time())
        return oathtool(seen["secret"], float(seen["at"]))

    if setup == "key then code":
        stack = [hook(hook_daemon), *ACCOUNT_AND_SESSION]
        methods, password = "publickey,keyboard-interactive:pam", []
        key: Path | None = authorize_key(person, tmp_path)
    else:
        set_password(person.name, "b4ttery-st4ple")  # type: ignore[attr-defined]
        stack = ["auth requisite pam_unix.so", hook(hook_daemon), *ACCOUNT_AND_SESSION]
        methods, password, key = "keyboard-interactive:pam", ["b4ttery-st4ple"], None
    with SshServer(stack, authentication_methods=methods) as server:
        first = ssh_login(
            server,
            person,
            [*password, confirm_with_code_from_screen, ""],
            identity=key,
            env={"LC_ALL": "C.UTF-8"},  # in the C locale the client masks the QR's blocks
        )
        assert first.ok and "LOGIN-OK" in first.output, first
        assert "█" in first.output
        recovery = re.findall(r"([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})", first.output)
        assert len(recovery) == 8
        # Later logins ask for a code: one from a later time step than the confirming one.
        step = int(float(seen["at"]) // 30)
        later = oathtool(seen["secret"], (step + 1) * 30)
        second = ssh_login(server, person, [*password, later], identity=key)
        assert second.ok, second
        assert second.prompts[-1].strip().endswith("Verification code:")


def test_a_policy_exempting_loopback_asks_nothing(
    hook_daemon: Daemon,
    policy_path: Path,
    key_then_code: SshServer,
    enrolled: Enrolled,
    identity: Path,
) -> None:
    policy_path.write_text(
        "rules:\n  - name: loopback\n    from: [127.0.0.0/8]\n    action: exempt\n"
    )
    hook_daemon.request("reload")
    login = ssh_login(key_then_code, enrolled.user, [], identity=identity)
    assert login.ok and "LOGIN-OK" in login.output and login.prompts == []


CONFIG = Path(__file__).resolve().parents[2] / "config"


def shipped(path: Path, daemon: Daemon) -> list[str]:
    """A shipped example's lines, pointed at this checkout's hook and the test daemon."""
    installed = "/usr/lib/python3/dist-packages/pam_twofa/hook.py"
    text = path.read_text().replace(installed, f"{HOOK} socket={daemon.socket}")
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize(
    ("example", "drop_in", "with_key"),
    [
        ("sshd-key-then-code", "twofa-key-then-code.conf", True),
        ("sshd-password-then-code", "twofa-password-then-code.conf", False),
    ],
)
def test_the_shipped_examples_work_as_written(
    hook_daemon: Daemon,
    enrolled: Enrolled,
    tmp_path: Path,
    example: str,
    drop_in: str,
    with_key: bool,
) -> None:
    set_password(enrolled.user.name, "example-pw")
    stack = shipped(CONFIG / "pam.d" / example, hook_daemon)
    config = shipped(CONFIG / "sshd_config.d" / drop_in, hook_daemon)
    identity = authorize_key(enrolled.user, tmp_path) if with_key else None
    answers = [enrolled.codes.next()] if with_key else ["example-pw", enrolled.codes.next()]
    with SshServer(stack, extra_config=config) as server:
        login = ssh_login(server, enrolled.user, answers, identity=identity)
        assert login.ok and "LOGIN-OK" in login.output, f"{login}\n{server.log_text()}"
        refused = ssh_login(server, enrolled.user, answers[:-1] + ["000000"], identity=identity)
        assert refused.returncode == 255
