"""What the PAM hook does at a login, byte-compiled with the package.

pam_python compiles hook.py from its source at every login, which costs about a
millisecond for each hundred lines; this module comes from its .pyc. It imports only
the standard library and this package, lets no exception escape, and leaves every
decision to twofad. It builds what login.Login talks to, the PAM conversation and the
connection to twofad, and closes that connection when the login is over: see login.py
for the flow, which does no I/O of its own.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any

    from . import login as _login


class _Conversation:
    """The PAM conversation, as login.Login talks to it: str in, str out, never raising."""

    def __init__(self, pamh: "Any", options: "_login.Options | None") -> None:
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


def _outcome_code(pamh: "Any", _login: "ModuleType", outcome: str) -> int:
    return {
        _login.SUCCESS: pamh.PAM_SUCCESS,
        _login.AUTH_ERR: pamh.PAM_AUTH_ERR,
        _login.AUTHINFO_UNAVAIL: pamh.PAM_AUTHINFO_UNAVAIL,
        _login.CONV_ERR: pamh.PAM_CONV_ERR,
    }.get(outcome, pamh.PAM_SERVICE_ERR)


def authenticate(pamh: "Any", argv: "list[str]") -> int:
    """pam_sm_authenticate's work: ask twofad, talk to the person, say what PAM returns."""
    try:
        from . import login as _login
        from .client import Client

        options = _login.Options.parse(list(argv[1:]))
        talk = _Conversation(pamh, options)
        try:
            user = pamh.get_user(None)
        except pamh.exception:
            return pamh.PAM_USER_UNKNOWN
        if not user:
            return pamh.PAM_USER_UNKNOWN
        with Client(options.socket, options.timeout) as client:
            attempt = _login.Login(
                options, talk, client, str(user), pamh.service, pamh.rhost or None
            )
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
