"""PAM entry points, for Debian's pam_python.so.

    auth required pam_python.so /usr/lib/python3/dist-packages/pam_twofa/hook.py [args]

pam_python runs this file inside sshd, login or su, as root, in the system's python3.
It therefore imports only the standard library and its own package (found next to this
file, since pam_python loads it by path), lets no exception escape, and leaves every
decision to twofad: see login.py for the flow.

Only pam_sm_authenticate imports the package. pam_python starts a Python of its own in
every process that calls into this file, and sshd calls pam_setcred from its monitor, a
process other than the one that authenticated: that call should cost the interpreter
start and nothing more (the shipped PAM files go further and skip it; see config/pam.d).
"""

import os
import sys

_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _PACKAGE_PARENT not in sys.path:
    sys.path.insert(0, _PACKAGE_PARENT)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

    from pam_twofa import login as _login


class _Conversation:
    """The PAM conversation, as login.Login talks to it: str in, str out, never raising."""

    def __init__(self, pamh: object, options: "_login.Options") -> None:
        self.pamh = pamh
        self.options = options

    def ask(self, text: str, *, echo: bool = False) -> "str | None":
        pamh = self.pamh
        style = pamh.PAM_PROMPT_ECHO_ON if echo else pamh.PAM_PROMPT_ECHO_OFF
        try:
            response = pamh.conversation(pamh.Message(style, str(text)))
        except pamh.exception:
            return None
        answer = getattr(response, "resp", None)
        if isinstance(answer, bytes):
            answer = answer.decode("utf-8", "replace")
        return answer if isinstance(answer, str) else None

    def info(self, text: str) -> None:
        self._say(self.pamh.PAM_TEXT_INFO, text)

    def error(self, text: str) -> None:
        self._say(self.pamh.PAM_ERROR_MSG, text)

    def _say(self, style: int, text: str) -> None:
        try:  # noqa: SIM105  (contextlib would cost every login an import)
            self.pamh.conversation(self.pamh.Message(style, str(text)))
        except self.pamh.exception:
            pass

    def log(self, text: str, *, warning: bool = False) -> None:
        import syslog  # only when there is something to say: most logins say nothing

        syslog.openlog("pam_twofa", syslog.LOG_PID, syslog.LOG_AUTHPRIV)
        syslog.syslog(syslog.LOG_WARNING if warning else syslog.LOG_INFO, text)
        syslog.closelog()  # the process's own later messages keep their own name


def _outcome_code(pamh: object, _login: "ModuleType", outcome: str) -> int:
    return {
        _login.SUCCESS: pamh.PAM_SUCCESS,
        _login.AUTH_ERR: pamh.PAM_AUTH_ERR,
        _login.AUTHINFO_UNAVAIL: pamh.PAM_AUTHINFO_UNAVAIL,
        _login.CONV_ERR: pamh.PAM_CONV_ERR,
    }.get(outcome, pamh.PAM_SERVICE_ERR)


def pam_sm_authenticate(pamh, flags, argv):  # type: ignore[no-untyped-def]
    try:
        from pam_twofa import login as _login

        options = _login.Options.parse(list(argv[1:]))
        talk = _Conversation(pamh, options)
        try:
            user = pamh.get_user(None)
        except pamh.exception:
            return pamh.PAM_USER_UNKNOWN
        if not user:
            return pamh.PAM_USER_UNKNOWN
        attempt = _login.Login(options, talk, str(user), pamh.service, pamh.rhost or None)
        outcome = attempt.run()
        if outcome == _login.SUCCESS and attempt.authtok is not None:
            pamh.authtok = attempt.authtok
        return _outcome_code(pamh, _login, outcome)
    except BaseException:
        try:
            import traceback

            detail = traceback.format_exc(limit=6)
            _Conversation(pamh, None).log(f"internal error: {detail}", warning=True)
        except BaseException:  # noqa: S110
            pass
        return pamh.PAM_SERVICE_ERR


def pam_sm_setcred(pamh, flags, argv):  # type: ignore[no-untyped-def]
    return pamh.PAM_SUCCESS  # no credentials of our own to set


def pam_sm_acct_mgmt(pamh, flags, argv):  # type: ignore[no-untyped-def]
    return pamh.PAM_IGNORE


def pam_sm_open_session(pamh, flags, argv):  # type: ignore[no-untyped-def]
    return pamh.PAM_IGNORE


def pam_sm_close_session(pamh, flags, argv):  # type: ignore[no-untyped-def]
    return pamh.PAM_IGNORE


def pam_sm_chauthtok(pamh, flags, argv):  # type: ignore[no-untyped-def]
    return pamh.PAM_IGNORE
