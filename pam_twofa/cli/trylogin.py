"""`twofactl try-login`: run a service's real PAM authentication from the terminal.

An administrator who has just switched two-step verification on proves, from the
session that did it, that a new login still works. libpam is driven through ctypes,
loaded with PyDLL: the interpreter lock stays held while libpam runs, so when our own
hook runs inside (pam_python embeds Python and finds it already running here) it
executes in this interpreter safely instead of racing it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import getpass
import sys
from dataclasses import dataclass
from typing import Any

PAM_PROMPT_ECHO_OFF = 1
PAM_PROMPT_ECHO_ON = 2
PAM_ERROR_MSG = 3
PAM_TEXT_INFO = 4
PAM_SUCCESS = 0
PAM_CONV_ERR = 19
PAM_BUF_ERR = 5
PAM_TTY = 3
PAM_RHOST = 4


class _Message(ctypes.Structure):
    _fields_ = (("msg_style", ctypes.c_int), ("msg", ctypes.c_char_p))


class _Response(ctypes.Structure):
    _fields_ = (("resp", ctypes.c_void_p), ("resp_retcode", ctypes.c_int))


_CONVERSE = ctypes.CFUNCTYPE(
    ctypes.c_int,
    ctypes.c_int,
    ctypes.POINTER(ctypes.POINTER(_Message)),
    ctypes.POINTER(ctypes.POINTER(_Response)),
    ctypes.c_void_p,
)


class _Conv(ctypes.Structure):
    _fields_ = (("conv", _CONVERSE), ("appdata_ptr", ctypes.c_void_p))


@dataclass(frozen=True)
class Outcome:
    authenticated: bool
    account_ok: bool
    message: str  # libpam's words for the result, e.g. "Authentication failure"

    @property
    def ok(self) -> bool:
        return self.authenticated and self.account_ok


class Terminal:
    """The person at this terminal: prompts on the tty, messages on stdout/stderr.

    With `info_to_stderr`, stdout stays free for a machine-readable result.
    """

    def __init__(self, *, info_to_stderr: bool = False) -> None:
        self._info = sys.stderr if info_to_stderr else sys.stdout

    def ask(self, text: str, *, echo: bool) -> str | None:
        try:
            return input(text) if echo else getpass.getpass(text)
        except EOFError:
            return None

    def say(self, text: str, *, error: bool) -> None:
        print(text, file=sys.stderr if error else self._info, flush=True)


def _libraries() -> tuple[ctypes.PyDLL, ctypes.CDLL]:
    pam_name = ctypes.util.find_library("pam") or "libpam.so.0"
    libpam = ctypes.PyDLL(pam_name)  # PyDLL: libpam runs with the interpreter lock held
    libpam.pam_strerror.restype = ctypes.c_char_p
    libc = ctypes.CDLL(None)
    libc.calloc.restype = ctypes.c_void_p
    libc.calloc.argtypes = (ctypes.c_size_t, ctypes.c_size_t)
    libc.strdup.restype = ctypes.c_void_p
    libc.strdup.argtypes = (ctypes.c_char_p,)
    return libpam, libc


def authenticate(service: str, user: str, terminal: Terminal, rhost: str | None = None) -> Outcome:
    """pam_authenticate then pam_acct_mgmt for `user`, as `service` would run them."""
    libpam, libc = _libraries()

    # The pointers libpam passes, as ctypes gives them: typed loosely, as ctypes is.
    def converse(count: int, messages: Any, responses: Any, appdata: Any) -> int:
        try:
            return answer_all(count, messages, responses)
        except BaseException:
            return PAM_CONV_ERR

    def answer_all(count: int, messages: Any, responses: Any) -> int:
        replies = libc.calloc(count, ctypes.sizeof(_Response))
        if not replies:
            return PAM_BUF_ERR
        array = ctypes.cast(replies, ctypes.POINTER(_Response))
        for index in range(count):
            message = messages[index].contents
            text = (message.msg or b"").decode("utf-8", "replace")
            if message.msg_style in (PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON):
                answer = terminal.ask(text, echo=message.msg_style == PAM_PROMPT_ECHO_ON)
                if answer is None:
                    return PAM_CONV_ERR  # libpam frees nothing on error; a small leak at worst
                array[index].resp = libc.strdup(answer.encode())
            else:
                terminal.say(text, error=message.msg_style == PAM_ERROR_MSG)
        responses[0] = array
        return PAM_SUCCESS

    callback = _CONVERSE(converse)  # kept referenced until pam_end
    conversation = _Conv(callback, None)
    handle = ctypes.c_void_p()
    started = libpam.pam_start(
        service.encode(), user.encode(), ctypes.byref(conversation), ctypes.byref(handle)
    )
    if started != PAM_SUCCESS:
        return Outcome(False, False, f"pam_start failed ({started})")
    result = PAM_SUCCESS
    try:
        if rhost:
            libpam.pam_set_item(handle, PAM_RHOST, rhost.encode())
        libpam.pam_set_item(handle, PAM_TTY, b"try-login")
        result = libpam.pam_authenticate(handle, 0)
        authenticated = result == PAM_SUCCESS
        account_ok = False
        if authenticated:
            result = libpam.pam_acct_mgmt(handle, 0)
            account_ok = result == PAM_SUCCESS
        message = (libpam.pam_strerror(handle, result) or b"").decode()
        return Outcome(authenticated, account_ok, message)
    finally:
        libpam.pam_end(handle, result)
