"""The hook through the real pam_python.so, driven by pamtester: every outcome a login has."""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pam_twofa import protocol as p
from pam_twofa.vocabulary import DEFAULT_SOCKET
from support.daemon import Daemon
from support.enrollment import HOOK, Enrolled, enroll
from support.oath import oathtool
from support.pam import PAM_PYTHON, pam_service, pamtester
from support.users import set_password

pytestmark = pytest.mark.integration


def hook_line(daemon: Daemon, *arguments: str, control: str = "required") -> str:
    return f"auth {control} {PAM_PYTHON} {HOOK} socket={daemon.socket} {' '.join(arguments)}"


@pytest.fixture
def service(hook_daemon: Daemon) -> Iterator[str]:
    with pam_service(
        "twofa-test", [hook_line(hook_daemon), "account required pam_permit.so"]
    ) as name:
        yield name


def test_right_code_is_accepted(service: str, enrolled: Enrolled) -> None:
    result = pamtester(service, enrolled.user.name, [enrolled.codes.next()])
    assert result.ok, result
    assert result.prompts_stripped == ["Verification code:"]


def test_wrong_code_is_refused(service: str, enrolled: Enrolled) -> None:
    result = pamtester(service, enrolled.user.name, ["000000"])
    assert not result.ok
    assert "Invalid verification code" in result.output
    assert "Authentication failure" in result.output


def test_a_code_works_once(service: str, enrolled: Enrolled) -> None:
    code = enrolled.codes.next()
    assert pamtester(service, enrolled.user.name, [code]).ok
    replay = pamtester(service, enrolled.user.name, [code])
    assert not replay.ok and "Invalid verification code" in replay.output


def test_spaces_in_the_code_are_ignored(service: str, enrolled: Enrolled) -> None:
    code = enrolled.codes.next()
    assert pamtester(service, enrolled.user.name, [f" {code[:3]} {code[3:]} "]).ok


def test_a_recovery_code_works_once(service: str, enrolled: Enrolled) -> None:
    code = enrolled.recovery_codes[0]
    first = pamtester(service, enrolled.user.name, [code.upper()])
    assert first.ok, first
    assert "Recovery code accepted; 7 left." in first.output
    again = pamtester(service, enrolled.user.name, [code])
    assert not again.ok and "Invalid verification code" in again.output


def test_failures_lock_the_account(service: str, enrolled: Enrolled) -> None:
    for _ in range(5):
        assert not pamtester(service, enrolled.user.name, ["000000"]).ok
    locked = pamtester(service, enrolled.user.name, [enrolled.codes.next()])
    assert not locked.ok
    assert re.search(r"Too many failed attempts; try again in \d+ seconds", locked.output)
    assert locked.prompts_stripped == []  # no code is even asked for


def test_an_unknown_user_is_prompted_then_refused(service: str) -> None:
    result = pamtester(service, "nosuchuser-twofa", ["123456"])
    assert result.prompts_stripped == ["Verification code:"]
    assert not result.ok and "Invalid verification code" in result.output


def test_a_user_without_2fa_passes_under_an_optional_policy(service: str, person: object) -> None:
    result = pamtester(service, person.name, [])  # type: ignore[attr-defined]
    assert result.ok and result.prompts_stripped == []


def test_a_daemon_that_is_down_refuses_by_default(hook_daemon: Daemon, enrolled: Enrolled) -> None:
    with pam_service(
        "twofa-test", [hook_line(hook_daemon), "account required pam_permit.so"]
    ) as name:
        hook_daemon.stop()
        result = pamtester(name, enrolled.user.name, ["123456"])
    assert not result.ok
    assert "Two-step verification is unavailable; login refused" in result.output
    assert "Authentication service cannot retrieve authentication info" in result.output


def test_fail_open_lets_logins_through_when_the_daemon_is_down(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    lines = [hook_line(hook_daemon, "fail=open"), "account required pam_permit.so"]
    with pam_service("twofa-test", lines) as name:
        hook_daemon.stop()
        result = pamtester(name, enrolled.user.name, [])
    assert result.ok and result.prompts_stripped == []


def test_fail_open_in_single_prompt_mode_still_checks_the_password(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    set_password(enrolled.user.name, "correct horse 42")
    lines = [
        hook_line(hook_daemon, "single_prompt", "fail=open", control="requisite"),
        "auth required pam_unix.so use_first_pass",
        "account required pam_permit.so",
    ]
    with pam_service("twofa-test", lines) as name:
        hook_daemon.stop()
        alone = pamtester(name, enrolled.user.name, ["correct horse 42"])
        with_code = pamtester(name, enrolled.user.name, ["correct horse 42" + "123456"])
        wrong = pamtester(name, enrolled.user.name, ["wrong horse 42" + "123456"])
    assert alone.ok, alone
    assert alone.prompts_stripped == ["Password:"]
    assert with_code.ok, with_code  # a code typed out of habit is split off
    assert not wrong.ok  # the password is still checked by pam_unix


def _busy_daemon(path: str) -> socket.socket:
    """A listener that turns every connection away as twofad does when it is full."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    refusal = p.encode_response(p.error_response(p.BUSY, "twofad is busy; retry in a moment"))

    def refuse() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.sendall(refusal)

    threading.Thread(target=refuse, daemon=True).start()
    return listener


def test_the_callers_environment_cannot_choose_the_socket(tmp_path: Path, person: object) -> None:
    """su and sudo run PAM with the caller's environment: TWOFA_SOCKET must not reach it.

    The impostor is a real twofad of the caller's own, whose policy exempts everyone:
    had the hook asked it, the login would pass without a code."""
    policy = tmp_path / "exempt.yaml"
    policy.write_text("default: exempt\n")
    impostor = Daemon(tmp_path / "impostor", "--policy", str(policy))
    impostor.root.mkdir()
    impostor.start()
    lines = [f"auth required {PAM_PYTHON} {HOOK}", "account required pam_permit.so"]
    try:
        with pam_service("twofa-test", lines) as name:
            result = pamtester(
                name,
                person.name,  # type: ignore[attr-defined]
                ["123456"],
                env={"TWOFA_SOCKET": impostor.socket},
            )
    finally:
        impostor.stop()
    assert "event=check" not in impostor.log_text(), "the hook asked the caller's socket"
    if not os.path.exists(DEFAULT_SOCKET):
        assert not result.ok, result
        assert "Two-step verification is unavailable; login refused" in result.output


@pytest.mark.parametrize(("mode", "admitted"), [("fail=secure", False), ("fail=open", True)])
def test_a_daemon_too_busy_to_answer_is_unavailable(
    tmp_path: Path, person: object, mode: str, admitted: bool
) -> None:
    path = str(tmp_path / "busy.sock")
    listener = _busy_daemon(path)
    lines = [
        f"auth required {PAM_PYTHON} {HOOK} socket={path} {mode}",
        "account required pam_permit.so",
    ]
    try:
        with pam_service("twofa-test", lines) as name:
            result = pamtester(name, person.name, ["123456"])  # type: ignore[attr-defined]
    finally:
        listener.close()
    assert result.ok is admitted, result
    if not admitted:
        assert "Two-step verification is unavailable; login refused" in result.output
        assert "Authentication service cannot retrieve authentication info" in result.output


def test_a_custom_prompt_and_unknown_arguments(hook_daemon: Daemon, enrolled: Enrolled) -> None:
    lines = [
        hook_line(hook_daemon, "[prompt=Code from your phone:]", "frobnicate"),
        "account required pam_permit.so",
    ]
    with pam_service("twofa-test", lines) as name:
        result = pamtester(name, enrolled.user.name, [enrolled.codes.next()])
    assert result.ok and result.prompts_stripped == ["Code from your phone:"]


def test_required_without_setup_is_refused_when_enrollment_at_login_is_off(
    hook_daemon: Daemon, service: str, policy_path: object, person: object
) -> None:
    policy_path.write_text("default: required\nenrollment: {at_login: false}\n")  # type: ignore[attr-defined]
    enroll(hook_daemon, "root")  # so that the lock-out guard lets this policy in
    hook_daemon.request("reload")
    result = pamtester(service, person.name, [])  # type: ignore[attr-defined]
    assert not result.ok
    assert "Two-step verification is required for this account but is not set up" in result.output


def test_first_login_walks_through_enrollment(
    hook_daemon: Daemon, service: str, policy_path: object, person: object
) -> None:
    policy_path.write_text("default: required\n")  # type: ignore[attr-defined]
    hook_daemon.request("reload")
    shown: dict[str, str] = {}

    def code_from_screen(output: str) -> str:
        key = re.search(r"Key: ((?:[A-Z2-7]{4} ?){8})", output)
        assert key, output
        shown["secret"] = key.group(1).replace(" ", "")
        return oathtool(shown["secret"], __import__("time").time())

    result = pamtester(service, person.name, [code_from_screen, ""])  # type: ignore[attr-defined]
    assert result.ok, result
    assert "otpauth://totp/" in result.output and "█" in result.output
    assert result.prompts[0].strip() == "Enter the code from your app to confirm:"
    assert "Press Enter once they are stored:" in result.prompts[1]
    recovery = re.findall(r"^    ([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})$", result.output, re.M)
    assert len(recovery) == 8
    status = hook_daemon.request("status", user=person.name)  # type: ignore[attr-defined]
    assert status["enrollment"] == "active"
    # A later login asks for a code, and a recovery code shown at set-up works.
    later = pamtester(service, person.name, [recovery[3]])  # type: ignore[attr-defined]
    assert later.ok and later.prompts_stripped == ["Verification code:"]


def test_three_wrong_codes_at_setup_enable_nothing(
    hook_daemon: Daemon, service: str, policy_path: object, person: object
) -> None:
    policy_path.write_text("default: required\n")  # type: ignore[attr-defined]
    hook_daemon.request("reload")
    result = pamtester(service, person.name, ["000000", "111111", "222222"])  # type: ignore[attr-defined]
    assert not result.ok
    assert result.prompts_stripped == ["Enter the code from your app to confirm:"] * 3
    assert "Set-up failed: two-step verification was not enabled." in result.output
    assert hook_daemon.request("status", user=person.name)["enrollment"] == "pending"  # type: ignore[attr-defined]


def test_single_prompt_hands_the_password_to_pam_unix(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    set_password(enrolled.user.name, "correct horse 42")
    lines = [
        hook_line(hook_daemon, "single_prompt", control="requisite"),
        "auth required pam_unix.so use_first_pass",
        "account required pam_permit.so",
    ]
    with pam_service("twofa-test", lines) as name:
        good = pamtester(name, enrolled.user.name, ["correct horse 42" + enrolled.codes.next()])
        assert good.ok, good
        assert good.prompts_stripped == ["Password followed by verification code:"]
        wrong_password = pamtester(
            name, enrolled.user.name, ["wrong horse 42" + enrolled.codes.next()]
        )
        assert not wrong_password.ok
        wrong_code = pamtester(name, enrolled.user.name, ["correct horse 42" + "000000"])
        assert not wrong_code.ok and "Invalid verification code" in wrong_code.output


def test_without_single_prompt_the_hook_never_sets_the_password(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    set_password(enrolled.user.name, "s3cret")
    lines = [
        hook_line(hook_daemon, control="requisite"),
        "auth required pam_unix.so use_first_pass",
        "account required pam_permit.so",
    ]
    with pam_service("twofa-test", lines) as name:
        result = pamtester(name, enrolled.user.name, [enrolled.codes.next()])
    assert not result.ok  # pam_unix found no password handed on, and use_first_pass asks none


def test_a_code_the_daemon_reads_after_the_hook_gave_up_is_not_counted(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    """fail=open let the login in when twofad did not answer in time; when the stalled
    daemon reads the code later it neither counts it nor logs it as a rejection."""
    import signal
    import time

    assert hook_daemon.proc is not None
    pid = hook_daemon.proc.pid

    def stall_then_type(shown: str) -> str:
        os.kill(pid, signal.SIGSTOP)  # the daemon stalls between check and verify
        return "000000"

    lines = [hook_line(hook_daemon, "fail=open", "timeout=1"), "account required pam_permit.so"]
    try:
        with pam_service("twofa-test", lines) as name:
            result = pamtester(name, enrolled.user.name, [stall_then_type])
    finally:
        os.kill(pid, signal.SIGCONT)
    assert result.ok, result  # fail=open: the daemon did not answer within timeout=
    deadline = time.monotonic() + 10
    while "error=expired" not in hook_daemon.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = hook_daemon.log_text()
    assert f"event=verify user={enrolled.user.name}" in log
    assert "error=expired" in log
    assert "result=rejected" not in log
    assert hook_daemon.request("status", user=enrolled.user.name)["failures"] == 0
