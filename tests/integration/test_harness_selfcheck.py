"""The integration harness itself, proven with Debian's own PAM modules and a tiny hook.

No project code runs here: pam_permit, pam_deny and pam_unix through the real
pamtester and the real sshd/ssh, plus a throwaway pam_python hook that records what it
sees. If these fail, fix the harness (or the machine) before reading other failures.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support.pam import (
    PAM_PYTHON,
    PAM_PYTHON_BARE,
    ConversationTimeout,
    pam_service,
    pamtester,
    run_in_pty,
)
from support.sshd import SshServer, authorize_key, ssh_login
from support.users import set_password, throwaway_user

if TYPE_CHECKING:  # imported by name, pytest would try to collect TestUser as tests
    from support.users import TestUser

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: writes /etc/pam.d, runs sshd"),
    pytest.mark.skipif(
        not all(shutil.which(tool) for tool in ("pamtester", "ssh", "ssh-keygen")),
        reason="needs pamtester and openssh-client",
    ),
]

PASSWORD = "correct horse 42"

UNIX_STACK = (
    "auth required pam_unix.so",
    "account required pam_unix.so",
    "session required pam_permit.so",
)

PERMIT_STACK = (
    "auth required pam_permit.so",
    "account required pam_permit.so",
    "session required pam_permit.so",
)

# A pam_python hook that records what PAM tells it and talks through the conversation.
# argv[1] is the file it appends one JSON object per authentication to.
HOOK = """
import json

def _record(argv, facts):
    with open(argv[1], "a") as handle:
        handle.write(json.dumps(facts) + "\\n")

def pam_sm_authenticate(pamh, flags, argv):
    facts = {
        "service": pamh.service,
        "rhost": pamh.rhost,
        "user": pamh.user,
        "get_user": pamh.get_user(None),
        "tty": pamh.tty,
        "argv": argv,
    }
    pamh.conversation(pamh.Message(pamh.PAM_TEXT_INFO, "INFO-BEFORE"))
    pamh.conversation(pamh.Message(pamh.PAM_ERROR_MSG, "ERROR-BEFORE"))
    reply = pamh.conversation(pamh.Message(pamh.PAM_PROMPT_ECHO_OFF, "Verification code: "))
    facts["resp"] = reply.resp
    facts["resp_retcode"] = reply.resp_retcode
    ok = reply.resp == "123456"
    pamh.conversation(pamh.Message(pamh.PAM_TEXT_INFO, "INFO-AFTER-" + ("OK" if ok else "BAD")))
    _record(argv, facts)
    return pamh.PAM_SUCCESS if ok else pamh.PAM_AUTH_ERR

def pam_sm_setcred(pamh, flags, argv):
    return pamh.PAM_SUCCESS

def pam_sm_acct_mgmt(pamh, flags, argv):
    return pamh.PAM_SUCCESS

def pam_sm_open_session(pamh, flags, argv):
    return pamh.PAM_SUCCESS

def pam_sm_close_session(pamh, flags, argv):
    return pamh.PAM_SUCCESS

def pam_sm_chauthtok(pamh, flags, argv):
    return pamh.PAM_SUCCESS
"""


@pytest.fixture
def user() -> Iterator[TestUser]:
    with throwaway_user("tfa") as account:
        set_password(account.name, PASSWORD)
        yield account


@pytest.fixture
def hook(tmp_path: Path) -> tuple[Path, Path]:
    """(hook file, the file it records into)."""
    path = tmp_path / "probe_hook.py"
    path.write_text(HOOK)
    return path, tmp_path / "facts.jsonl"


def recorded(facts_file: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in facts_file.read_text().splitlines()]


# --------------------------------------------------------------------------- pty driver


def test_pty_driver_times_out_and_stops_the_child() -> None:
    with pytest.raises(ConversationTimeout) as caught:
        run_in_pty(["sh", "-c", "echo started; exec sleep 60"], timeout=2)
    assert "started" in caught.value.output


def test_pty_driver_answers_each_prompt_in_order() -> None:
    script = 'printf "First: "; read a; printf "Second: "; read b; echo "got $a/$b"'
    result = run_in_pty(["sh", "-c", script], ["one", "two"])
    assert result.returncode == 0, result
    assert result.prompts == ["First: ", "Second: "]
    assert "got one/two" in result.output


# --------------------------------------------------------------------------- pamtester


def test_pamtester_permit_succeeds_and_deny_fails() -> None:
    with pam_service("twofa-test", ["auth required pam_permit.so"]) as service:
        assert service.startswith("twofa-test-")
        assert (Path("/etc/pam.d") / service).exists()
        result = pamtester(service, "root", [])
        assert result.returncode == 0, result
        assert "successfully authenticated" in result.output
    assert not (Path("/etc/pam.d") / service).exists()

    with pam_service("twofa-test", ["auth required pam_deny.so"]) as service:
        result = pamtester(service, "root", [])
        assert result.returncode != 0, result
        assert "Authentication failure" in result.output


def test_pamtester_pam_unix_checks_the_password(user: TestUser) -> None:
    stack = ["auth required pam_unix.so", "account required pam_unix.so"]
    with pam_service("twofa-test", stack) as service:
        good = pamtester(service, user.name, [PASSWORD], ("authenticate", "acct_mgmt"))
        assert good.returncode == 0, good
        assert good.prompts == ["Password: "]
        assert PASSWORD not in good.output  # typed with echo off
        assert "account management done" in good.output

        bad = pamtester(service, user.name, ["not the password"])
        assert bad.returncode != 0, bad
        assert bad.prompts == ["Password: "]
        assert "Authentication failure" in bad.output


# --------------------------------------------------------------------------- sshd


def test_sshd_keyboard_interactive_with_pam_unix(user: TestUser) -> None:
    with SshServer(UNIX_STACK) as server:
        assert server.service.startswith("sshd-twofa-test-")
        good = ssh_login(server, user, [PASSWORD])
        assert good.returncode == 0, f"{good}\n--- sshd log ---\n{server.log_text()}"
        assert "LOGIN-OK" in good.output
        assert [p.endswith("Password: ") for p in good.prompts] == [True]

        bad = ssh_login(server, user, ["not the password"])
        assert bad.returncode == 255, bad
        assert "LOGIN-OK" not in bad.output
        assert "Permission denied" in bad.output
        server.wait_for_log(f"Accepted keyboard-interactive/pam for {user.name} from 127.0.0.1")
        server.wait_for_log(f"Failed keyboard-interactive/pam for {user.name} from 127.0.0.1")


def test_sshd_takes_the_pam_service_from_argv0(user: TestUser) -> None:
    # /etc/pam.d/sshd would accept the right password; our deny stack must not.
    deny = ("auth required pam_deny.so", *UNIX_STACK[1:])
    with SshServer(deny) as server:
        result = ssh_login(server, user, [PASSWORD])
        assert result.returncode == 255, result
    # ... and our permit stack lets a wrong password in, which /etc/pam.d/sshd would not.
    with SshServer(PERMIT_STACK) as server:
        result = ssh_login(server, user, ["anything"])
        assert result.returncode == 0, f"{result}\n--- sshd log ---\n{server.log_text()}"
        assert "LOGIN-OK" in result.output


def test_sshd_publickey_then_keyboard_interactive(user: TestUser, tmp_path: Path) -> None:
    identity = authorize_key(user, tmp_path)
    with SshServer(
        PERMIT_STACK, authentication_methods="publickey,keyboard-interactive:pam"
    ) as server:
        result = ssh_login(server, user, [], identity=identity)
        assert result.returncode == 0, f"{result}\n--- sshd log ---\n{server.log_text()}"
        assert "LOGIN-OK" in result.output
        assert result.prompts == []  # pam_permit asks nothing
        log = server.wait_for_log(f"Accepted keyboard-interactive/pam for {user.name}")
        assert f"Partial publickey for {user.name}" in log

        # keyboard-interactive alone is not enough
        without_key = ssh_login(server, user, [])
        assert without_key.returncode == 255, without_key
        assert "LOGIN-OK" not in without_key.output


# --------------------------------------------------------------------------- pam_python


@pytest.mark.parametrize("module", [PAM_PYTHON, PAM_PYTHON_BARE])
def test_pam_python_loads_and_converses_via_pamtester(module: str, hook: tuple[Path, Path]) -> None:
    hook_file, facts_file = hook
    stack = [f"auth required {module} {hook_file} {facts_file} extra=1"]
    with pam_service("twofa-test", stack) as service:
        good = pamtester(service, "nobody", ["123456"], items={"rhost": "127.0.0.1"})
        assert good.returncode == 0, good
        assert good.prompts == ["Verification code: "]
        assert "INFO-BEFORE\nERROR-BEFORE\nVerification code: \n" in good.output
        assert "INFO-AFTER-OK" in good.output
        assert "123456" not in good.output  # echo off

        bad = pamtester(service, "nobody", ["000000"])
        assert bad.returncode != 0, bad
        assert "INFO-AFTER-BAD" in bad.output

        # No answer left: the driver sends end-of-file; misc_conv hands the hook None.
        silent = pamtester(service, "nobody", [])
        assert silent.returncode != 0, silent

    first, second, third = recorded(facts_file)
    assert first == {
        "service": service,
        "rhost": "127.0.0.1",
        "user": "nobody",
        "get_user": "nobody",
        "tty": None,
        "argv": [str(hook_file), str(facts_file), "extra=1"],
        "resp": "123456",
        "resp_retcode": 0,
    }
    assert second["rhost"] is None and second["resp"] == "000000"
    assert third["resp"] is None


def test_pam_python_prompts_are_answered_reliably(hook: tuple[Path, Path]) -> None:
    """No answer is lost to misc_conv's TCSAFLUSH or typed before its prompt (support.pam)."""
    hook_file, facts_file = hook
    with pam_service("twofa-test", [f"auth required {PAM_PYTHON} {hook_file} {facts_file}"]) as svc:
        results = [pamtester(svc, "nobody", ["123456"]) for _ in range(15)]
    assert [r.returncode for r in results] == [0] * 15, [str(r) for r in results if r.returncode]
    assert [f["resp"] for f in recorded(facts_file)] == ["123456"] * 15


def test_pam_python_text_info_under_sshd(user: TestUser, hook: tuple[Path, Path]) -> None:
    hook_file, facts_file = hook
    stack = [f"auth required {PAM_PYTHON} {hook_file} {facts_file}", *PERMIT_STACK[1:]]
    with SshServer(stack) as server:
        good = ssh_login(server, user, ["123456"])
        assert good.returncode == 0, f"{good}\n--- sshd log ---\n{server.log_text()}"
        # Messages before a prompt travel with it, as part of the prompt text.
        assert "INFO-BEFORE\nERROR-BEFORE\nVerification code: " in good.output
        assert good.prompts == ["Verification code: "]
        # Messages after the last prompt still reach the client, before the command runs.
        assert good.output.index("INFO-AFTER-OK") < good.output.index("LOGIN-OK")

        bad = ssh_login(server, user, ["000000"])
        assert bad.returncode == 255, bad
        assert bad.output.index("INFO-AFTER-BAD") < bad.output.index("Permission denied")

    facts = recorded(facts_file)
    assert [f["resp"] for f in facts] == ["123456", "000000"]
    for fact in facts:
        assert fact["service"] == server.service  # the argv[0] symlink's name
        assert fact["rhost"] == "127.0.0.1"
        assert fact["user"] == fact["get_user"] == user.name
        assert fact["tty"] == "ssh"
