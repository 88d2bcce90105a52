"""What happens at a login, between asking twofad and talking to the person.

The PAM hook (entry.py) adapts pam_python's handle to the small Conversation interface
below, opens the Client, and maps the outcome back to a PAM code; everything in between
lives here, so the flow can be read top to bottom.  It does no I/O of its own: the
person and the daemon are both handed in, which lets a test drive every path with a
scripted conversation and a scripted daemon (tests/unit/test_login.py).  The daemon
decides; this only asks it, relays its answers, and chooses the words.
"""

from . import protocol as p
from . import vocabulary as v
from .client import RequestFailed, Unavailable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol

    class Conversation(Protocol):
        def ask(self, text: str, *, echo: bool = False) -> "str | None": ...

        def info(self, text: str) -> None: ...

        def error(self, text: str) -> None: ...

        def log(self, text: str, *, warning: bool = False) -> None: ...

    class Daemon(Protocol):
        """What Login needs of client.Client: one request at a time.

        It raises client.Unavailable when twofad cannot be reached or does not answer
        in time, and client.RequestFailed(code, message) when it answers with an error.
        """

        def request(self, op: str, **fields: "Any") -> "dict[str, Any]": ...


# Outcomes, mapped to PAM return codes by the hook.
SUCCESS = "success"
AUTH_ERR = "auth_err"
AUTHINFO_UNAVAIL = "authinfo_unavail"
CONV_ERR = "conv_err"

INVALID = "Invalid verification code"
# The same words for every name, with an account or not, with an address or not.
EMAIL_HINT = "No phone at hand? Type email to get a code by email."
EMAIL_SENT = "If this account has an email address set up, a code was sent to it."
EMAIL_PROMPT = "Code from the email: "
UNAVAILABLE = "Two-step verification is unavailable; login refused"
ENROLL_TRIES = 3


WEB_CONSOLE = "cockpit"  # the PAM service of Cockpit's login form
CONTINUE = "Press Enter to continue: "


class HeldMessages:
    """A conversation for a login form that shows messages only with the next prompt.

    Cockpit's form puts PAM's informational and error messages above the next prompt,
    and drops those that come after the last one: "Invalid verification code" or
    "Recovery code accepted; 2 left" would never be read, only "Authentication
    failed".  So what is said after the last question is followed by one more prompt,
    whose answer is not used, for the form to show it with.
    """

    def __init__(self, talk: "Conversation") -> None:
        self._talk = talk
        self._unshown = False

    def ask(self, text: str, *, echo: bool = False) -> "str | None":
        self._unshown = False
        return self._talk.ask(text, echo=echo)

    def info(self, text: str) -> None:
        self._unshown = True
        self._talk.info(text)

    def error(self, text: str) -> None:
        self._unshown = True
        self._talk.error(text)

    def log(self, text: str, *, warning: bool = False) -> None:
        self._talk.log(text, warning=warning)

    def show_what_is_held(self) -> None:
        if self._unshown:
            self.ask(CONTINUE, echo=True)


class Options:
    """The hook's arguments from the PAM file: socket=, fail=, timeout=, prompt=, ..."""

    def __init__(self) -> None:
        self.socket: str | None = None
        self.fail_open = False
        self.timeout = 5.0
        self.prompt = "Verification code: "
        self.debug = False
        self.single_prompt = False
        self.web_form = False  # messages only with a prompt, no QR code (see HeldMessages)
        self.unknown: list[str] = []

    @classmethod
    def parse(cls, arguments: "list[str]") -> "Options":
        options = cls()
        for argument in arguments:
            name, _, value = argument.partition("=")
            if name == "socket" and value:
                options.socket = value
            elif name == "fail" and value in ("secure", "open"):
                options.fail_open = value == "open"
            elif name == "timeout" and _positive(value):
                options.timeout = float(value)
            elif name == "prompt" and value:
                options.prompt = value if value.endswith(" ") else value + " "
            elif argument == "debug":
                options.debug = True
            elif argument == "single_prompt":
                options.single_prompt = True
            elif argument == "web_form":
                options.web_form = True
            else:
                options.unknown.append(argument)
        return options


def _positive(value: str) -> bool:
    try:
        return 0 < float(value) <= 300
    except ValueError:
        return False


class Login:
    """One authentication: a user, the PAM service and remote host, a person and twofad.

    The caller owns the client (opens and closes it); Login only sends it requests.
    """

    def __init__(
        self,
        options: "Options",
        conversation: "Conversation",
        client: "Daemon",
        user: str,
        service: "str | None",
        rhost: "str | None",
    ) -> None:
        self.options = options
        # Cockpit's login form: see HeldMessages. Its PAM service is "cockpit", so the
        # hook reached through common-auth knows it without an argument.
        self.in_form = options.web_form or service == WEB_CONSOLE
        self.talk = HeldMessages(conversation) if self.in_form else conversation
        self.user = user
        self.service = service
        self.rhost = rhost
        self.authtok: str | None = None  # set only in single-prompt mode
        self._typed: str | None = None  # the single-prompt answer, once asked
        self._digits = 6
        self._client = client

    def run(self) -> str:
        for argument in self.options.unknown:
            self.talk.log(f"ignoring unknown argument {argument!r}", warning=True)
        try:
            outcome = self._run()
        except Unavailable as exc:
            outcome = self._unavailable(str(exc))
        if isinstance(self.talk, HeldMessages):
            self.talk.show_what_is_held()
        return outcome

    def _run(self) -> str:
        try:
            where = {"service": self.service, "rhost": self.rhost}
            decision = self._client.request("check", user=self.user, **where)
        except RequestFailed as exc:
            if exc.code != p.BAD_REQUEST:
                return self._daemon_refused(exc)
            # A name the protocol refuses cannot have an account: treat it as unknown.
            decision = {"action": p.PROMPT, "digits": 6}
        action = decision.get("action")
        self._debug(f"check {self.user}: {action}")
        if self.options.single_prompt:
            return self._single_prompt(action, decision)
        if action == p.SKIP:
            return SUCCESS
        if action == p.PROMPT:
            by_email = decision.get("email") is True
            prompt = f"{EMAIL_HINT}\n{self.options.prompt}" if by_email else self.options.prompt
            typed = self.talk.ask(prompt)
            if by_email and typed is not None and typed.strip().casefold() == v.EMAIL_WORD:
                return self._by_email()
            return self._verify(typed)
        if action == p.LOCKED:
            self.talk.error(_lock_message(decision))
            return AUTH_ERR
        if action == p.ENROLL:
            return self._enroll()
        self.talk.error(
            "Two-step verification is required for this account but is not set up. "
            "Ask an administrator to set it up for you (twofactl enroll)."
        )
        return AUTH_ERR

    # --- a code at the prompt ------------------------------------------------------

    def _verify(self, typed: "str | None", **channel: str) -> str:
        if typed is None:
            return CONV_ERR
        if not typed.strip():
            self.talk.error(INVALID)
            return AUTH_ERR
        try:
            where = {"service": self.service, "rhost": self.rhost}
            reply = self._client.request("verify", user=self.user, code=typed, **where, **channel)
        except RequestFailed as exc:
            if exc.code != p.BAD_REQUEST:
                return self._daemon_refused(exc)
            reply = {"result": p.REJECTED}  # unusable characters: just a wrong code
        result = reply.get("result")
        self._debug(f"verify {self.user}: {result}")
        if result == p.ACCEPTED:
            left = reply.get("recovery_codes_left")
            if reply.get("method") == "recovery" and isinstance(left, int):
                self.talk.info(_recovery_left_message(left))
            return SUCCESS
        if result == p.LOCKED:
            self.talk.error(_lock_message(reply))
        else:
            self.talk.error(INVALID)
        return AUTH_ERR

    def _by_email(self) -> str:
        """A code mailed to the account's address, then asked for in the same login.

        Every name is told the same (nothing is sent where there is no address); a
        lock, the limit on sends and a failed delivery are said as they are.
        """
        try:
            where = {"service": self.service, "rhost": self.rhost}
            self._client.request("email.send", user=self.user, **where)
        except RequestFailed as exc:
            said = _EMAIL_REFUSALS.get(exc.code)
            if said is None:
                return self._daemon_refused(exc)
            self.talk.error(said if said else exc.message[:1].upper() + exc.message[1:] + ".")
            return AUTH_ERR
        return self._verify(self.talk.ask(f"{EMAIL_SENT}\n{EMAIL_PROMPT}"), channel="email")

    def _single_prompt(self, action: object, decision: "dict[str, Any]") -> str:
        """Password and code typed as one answer, for clients that ask only once.

        The last `digits` characters are the code; the rest is handed on as
        PAM_AUTHTOK to the password module that follows (use_first_pass).
        """
        if action == p.SKIP:
            answer = self.talk.ask("Password: ")
            if answer is None:
                return CONV_ERR
            self.authtok = answer
            return SUCCESS
        if action == p.LOCKED:
            self.talk.error(_lock_message(decision))
            return AUTH_ERR
        if action != p.PROMPT:
            self.talk.error(
                "Two-step verification must be set up first, from a client that can show "
                "more than one prompt, or by an administrator."
            )
            return AUTH_ERR
        answer = self.talk.ask("Password followed by verification code: ")
        if answer is None:
            return CONV_ERR
        digits = decision.get("digits")
        self._digits = digits if isinstance(digits, int) and 6 <= digits <= 8 else 6
        self._typed = answer
        password, code = _split_code(answer, self._digits)
        if code is None:
            self.talk.error(INVALID)
            return AUTH_ERR
        outcome = self._verify(code)
        if outcome == SUCCESS:
            self.authtok = password
        return outcome

    def _password_only(self) -> str:
        """fail=open in single-prompt mode: no code can be checked, the password still is.

        The person may have typed a code after the password out of habit; it is split
        off as usual, so both ``password`` and ``password123456`` reach pam_unix as the
        password.
        """
        answer = self._typed
        if answer is None:
            answer = self.talk.ask("Password: ")
            if answer is None:
                return CONV_ERR
        password, code = _split_code(answer, self._digits)
        self.authtok = password if code is not None else answer
        return SUCCESS

    # --- set-up at the first login -------------------------------------------------

    def _enroll(self) -> str:
        from . import display  # only first logins show a set-up screen

        try:
            data = self._client.request("enroll.begin", user=self.user)
        except RequestFailed as exc:
            return self._daemon_refused(exc)
        if self.in_form:  # no QR code, and one paragraph: a form joins the lines
            self.talk.info(display.enrollment_in_a_form(data))
        else:
            screen = [*display.enrollment_intro(), *display.enrollment_details(data)]
            self.talk.info("\n".join(screen))
        for attempt in range(1, ENROLL_TRIES + 1):
            typed = self.talk.ask("Enter the code from your app to confirm: ")
            if typed is None:
                return CONV_ERR
            try:
                if typed.strip():
                    confirmed = self._client.request("enroll.confirm", user=self.user, code=typed)
                    break
            except RequestFailed as exc:
                if exc.code not in (p.INVALID_CODE, p.BAD_REQUEST):
                    return self._daemon_refused(exc)
            if attempt < ENROLL_TRIES:
                self.talk.error("That code does not match; wait for the next one and try again.")
        else:
            self.talk.error("Set-up failed: two-step verification was not enabled.")
            return AUTH_ERR
        self._debug(f"enrolled {self.user}")
        # Shown with a prompt, so that clients which hold back messages until the next
        # prompt (OpenSSH does) still show the codes before the session starts.
        codes = confirmed["recovery_codes"]
        if self.in_form:
            self.talk.info(display.recovery_codes_in_a_form(codes))
            self.talk.ask("Press Enter once they are stored: ", echo=True)
        else:
            lines = display.recovery_codes(codes)
            self.talk.ask("\n".join([*lines, "Press Enter once they are stored: "]), echo=True)
        return SUCCESS

    # --- when the daemon cannot help -----------------------------------------------

    def _unavailable(self, reason: str) -> str:
        where = f"service={self.service or '-'} rhost={self.rhost or '-'}"
        if self.options.fail_open:
            self.talk.log(
                f"twofad unavailable ({reason}); fail=open lets {self.user} in without a code "
                f"({where})",
                warning=True,
            )
            return self._password_only() if self.options.single_prompt else SUCCESS
        self.talk.log(
            f"twofad unavailable ({reason}); login of {self.user} refused ({where})", warning=True
        )
        self.talk.error(UNAVAILABLE)
        return AUTHINFO_UNAVAIL

    def _daemon_refused(self, exc: "RequestFailed") -> str:
        """An answer we did not expect: refuse, whatever fail= says (the daemon is up).

        Except `unavailable`: the daemon is up but its state database is out of reach,
        which is the outage fail= was chosen for.
        """
        if exc.code == p.UNAVAILABLE:
            return self._unavailable(exc.message)
        self.talk.log(f"twofad refused a request for {self.user}: {exc}", warning=True)
        self.talk.error(UNAVAILABLE)
        return AUTH_ERR

    def _debug(self, text: str) -> None:
        if self.options.debug:
            self.talk.log(text)


# What the person is told when no code could be mailed ("": the daemon's own words).
_EMAIL_REFUSALS = {
    p.LOCKED: "",
    p.RATE_LIMITED: "",
    p.NOT_SENT: "The code could not be sent by email. Try again later, or use a recovery code.",
    p.EMAIL_NOT_ALLOWED: "Codes by email are not available for this login.",
}


def _split_code(answer: str, digits: int) -> "tuple[str, str | None]":
    """Password and code from one answer: the code is the last `digits` ASCII digits."""
    password, code = answer[:-digits], answer[-digits:]
    if len(answer) <= digits or not (code.isascii() and code.isdigit()):
        return answer, None
    return password, code


def _lock_message(reply: "dict[str, Any]") -> str:
    seconds = reply.get("retry_after")
    if reply.get("hard_locked") or not isinstance(seconds, int):
        return "Too many failed attempts; ask an administrator to unlock your account"
    return f"Too many failed attempts; try again in {seconds} seconds"


def _recovery_left_message(left: int) -> str:
    if left == 0:
        return (
            "Recovery code accepted. That was your last one: "
            "make new ones with `twofa recovery-codes`."
        )
    return f"Recovery code accepted; {left} left."
