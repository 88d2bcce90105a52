"""The console: su and login on a pty, asking for the code through a test PAM stack.

su and login take their PAM service name from their own name, so the test stack is
bind-mounted over /etc/pam.d/su or /etc/pam.d/login inside a private mount namespace:
the machine's own files are never touched.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from support.daemon import Daemon
from support.enrollment import HOOK, Enrolled
from support.pam import PAM_DIR, PAM_PYTHON, pam_service, run_in_pty
from support.users import set_password

pytestmark = pytest.mark.integration


def in_namespace_with_stack(service: str, replaced: str, command: list[str]) -> list[str]:
    script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
        str(PAM_DIR / service),
        str(PAM_DIR / replaced),
        *command,
    ]


@pytest.fixture
def console_stack(hook_daemon: Daemon) -> Iterator[str]:
    lines = [
        "auth requisite pam_unix.so",
        f"auth required {PAM_PYTHON} {HOOK} socket={hook_daemon.socket}",
        "account required pam_unix.so",
        "session required pam_permit.so",
    ]
    with pam_service("twofa-test", lines) as name:
        yield name


def test_su_asks_for_the_code(console_stack: str, enrolled: Enrolled) -> None:
    set_password(enrolled.user.name, "pw-for-su")
    command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    command += ["su", enrolled.user.name, "-c", "echo SU-OK"]
    good = run_in_pty(
        in_namespace_with_stack(console_stack, "su", command), ["pw-for-su", enrolled.codes.next()]
    )
    assert good.ok and "SU-OK" in good.output, good
    assert [p.strip() for p in good.prompts] == ["Password:", "Verification code:"]
    bad = run_in_pty(in_namespace_with_stack(console_stack, "su", command), ["pw-for-su", "000000"])
    assert not bad.ok and "SU-OK" not in bad.output
    assert "Invalid verification code" in bad.output


def test_login_asks_for_the_code(console_stack: str, enrolled: Enrolled) -> None:
    set_password(enrolled.user.name, "pw-for-login")
    # dash reads commands with read(2), which the pty driver recognises as a prompt.
    subprocess.run(["usermod", "--shell", "/bin/sh", enrolled.user.name], check=True)
    command = ["login", "-p", enrolled.user.name]
    session = run_in_pty(
        in_namespace_with_stack(console_stack, "login", command),
        ["pw-for-login", enrolled.codes.next(), "echo LOGIN-SHELL-$((6*7)); exit"],
        timeout=40,
    )
    assert "LOGIN-SHELL-42" in session.output, session
    assert any(p.strip() == "Verification code:" for p in session.prompts)
