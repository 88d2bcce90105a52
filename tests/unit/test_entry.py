"""pam_twofa.entry: pam_python's handle to login.Login and back, with a stand-in handle.

The handle copies what pam_python offers (tests/support/pam.py lists it, as verified
against the real module); the real PAM stack is driven by tests/integration/test_hook_*.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pam_twofa import client, entry


class PamError(Exception):
    """pamh.exception: what pam_python raises when a PAM call fails."""


class PamMessage:
    def __init__(self, style: int, text: str) -> None:
        self.msg_style, self.msg = style, text


class Response:
    def __init__(self, resp: object) -> None:
        self.resp, self.resp_retcode = resp, 0


class Handle:
    """A pam_python handle whose conversation answers from a list (PamError: fails)."""

    PAM_SUCCESS, PAM_SERVICE_ERR, PAM_AUTH_ERR, PAM_AUTHINFO_UNAVAIL = 0, 3, 7, 9
    PAM_USER_UNKNOWN, PAM_CONV_ERR = 10, 19
    PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_ERROR_MSG, PAM_TEXT_INFO = 1, 2, 3, 4
    exception = PamError
    Message = PamMessage

    def __init__(self, answers: Iterable[object] = (), user: object = "alice") -> None:
        self.answers = list(answers)
        self.user = user
        self.service, self.rhost, self.authtok = "sshd", "", None
        self.said: list[tuple[int, str]] = []

    def get_user(self, prompt: object) -> object:
        if isinstance(self.user, Exception):
            raise self.user
        return self.user

    def conversation(self, message: PamMessage) -> Response:
        self.said.append((message.msg_style, message.msg))
        if message.msg_style in (self.PAM_ERROR_MSG, self.PAM_TEXT_INFO):
            return Response(None)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return Response(answer)


class Syslog:
    """Records what entry hands to the syslog module."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import syslog

        self.opened: list[tuple[str, int, int]] = []
        self.lines: list[tuple[int, str]] = []
        monkeypatch.setattr(syslog, "openlog", lambda *a: self.opened.append(a))
        monkeypatch.setattr(syslog, "syslog", lambda *a: self.lines.append(a))
        monkeypatch.setattr(syslog, "closelog", lambda: None)


class Recorded(client.Client):
    """The real Client, remembering how entry built it and that it was closed."""

    made: ClassVar[list[Recorded]] = []

    def __init__(self, path: str | None = None, timeout: float = client.DEFAULT_TIMEOUT) -> None:
        super().__init__(path, timeout)
        self.args = (path, timeout)
        self.closed = False
        Recorded.made.append(self)

    def __exit__(self, *exc_info: object) -> None:
        super().__exit__(*exc_info)
        self.closed = True


def hook_argv(*arguments: str) -> list[str]:
    return ["/usr/lib/python3/dist-packages/pam_twofa/hook.py", *arguments]


def test_the_client_is_built_from_the_arguments_and_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Syslog(monkeypatch)
    Recorded.made = []
    monkeypatch.setattr(client, "Client", Recorded)
    socket = str(tmp_path / "absent.sock")
    pamh = Handle()
    rc = entry.authenticate(pamh, hook_argv(f"socket={socket}", "timeout=2.5"))
    assert rc == Handle.PAM_AUTHINFO_UNAVAIL
    [made] = Recorded.made
    assert (made.args, made.closed) == ((socket, 2.5), True)


def test_daemon_down_is_logged_to_authpriv_and_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import syslog

    log = Syslog(monkeypatch)
    socket = str(tmp_path / "absent.sock")
    pamh = Handle()
    assert entry.authenticate(pamh, hook_argv(f"socket={socket}")) == Handle.PAM_AUTHINFO_UNAVAIL
    assert pamh.said == [
        (Handle.PAM_ERROR_MSG, "Two-step verification is unavailable; login refused")
    ]
    assert log.opened == [("pam_twofa", syslog.LOG_PID, syslog.LOG_AUTHPRIV)]
    assert log.lines == [
        (
            syslog.LOG_WARNING,
            f"twofad unavailable (cannot reach twofad at {socket}: No such file or directory); "
            "login of alice refused (service=sshd rhost=-)",
        )
    ]


def test_fail_open_in_single_prompt_hands_the_password_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Syslog(monkeypatch)
    socket = str(tmp_path / "absent.sock")
    pamh = Handle([b"hunter2\xff314159"])
    argv = hook_argv(f"socket={socket}", "fail=open", "single_prompt")
    assert entry.authenticate(pamh, argv) == Handle.PAM_SUCCESS
    assert pamh.said == [(Handle.PAM_PROMPT_ECHO_OFF, "Password: ")]
    assert pamh.authtok == "hunter2\ufffd"  # bytes from the conversation, decoded


@pytest.mark.parametrize("answer", [PamError("conversation failed"), None, 123456])
def test_no_answer_from_the_conversation_is_conv_err(
    answer: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Syslog(monkeypatch)
    pamh = Handle([answer])
    argv = hook_argv(f"socket={tmp_path / 'absent.sock'}", "fail=open", "single_prompt")
    assert entry.authenticate(pamh, argv) == Handle.PAM_CONV_ERR
    assert pamh.authtok is None


@pytest.mark.parametrize("user", [PamError("no user"), None, ""])
def test_no_user_is_user_unknown(user: object, monkeypatch: pytest.MonkeyPatch) -> None:
    log = Syslog(monkeypatch)
    assert entry.authenticate(Handle(user=user), hook_argv()) == Handle.PAM_USER_UNKNOWN
    assert log.lines == []


def test_an_internal_error_is_logged_and_service_err(monkeypatch: pytest.MonkeyPatch) -> None:
    import syslog

    log = Syslog(monkeypatch)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("broken")

    monkeypatch.setattr(client, "Client", broken)
    assert entry.authenticate(Handle(), hook_argv()) == Handle.PAM_SERVICE_ERR
    [(priority, text)] = log.lines
    assert priority == syslog.LOG_WARNING
    assert text.startswith("internal error: Traceback") and "RuntimeError: broken" in text


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        ("success", Handle.PAM_SUCCESS),
        ("auth_err", Handle.PAM_AUTH_ERR),
        ("authinfo_unavail", Handle.PAM_AUTHINFO_UNAVAIL),
        ("conv_err", Handle.PAM_CONV_ERR),
        ("anything else", Handle.PAM_SERVICE_ERR),
    ],
)
def test_outcomes_map_to_pam_codes(outcome: str, code: int) -> None:
    from pam_twofa import login

    assert entry._outcome_code(Handle(), login, outcome) == code
