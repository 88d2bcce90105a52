"""A whole login driven by what a person types: pam_twofa.login.Login, no PAM stack.

The person answers each prompt from a list (text, the raw bytes PAM hands over, or a
failed conversation); the daemon is a script that answers the way twofad does.  The
script still puts every request through the real encoder (as the hook's client does
before sending) and the real decoder (as twofad does on receipt), and reads each code
the way twofad reads it, so a typed answer goes through every parser it would meet.
What it records lets the target check that no answer becomes a success the daemon did
not grant.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from pam_twofa import entry, login
from pam_twofa import protocol as p
from pam_twofa.client import RequestFailed, Unavailable
from twofad import recovery, totp

from . import typed, values

DECOY_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
ENROLL_DATA = {
    "user": "alice",
    "secret": DECOY_SECRET,
    "secret_grouped": totp.grouped(DECOY_SECRET),
    "uri": "otpauth://totp/host:alice?secret=" + DECOY_SECRET,
    "qr": "█▀▀▀▀▀█\n█ ███ █\n",
    "algorithm": "SHA1",
    "digits": 6,
    "period": 30,
}


class Failure(AssertionError):
    """An oracle saw something wrong (not an exception of the code under test)."""


def daemon_reading(code: str) -> None:
    """What twofad does with a code it has accepted off the wire, with its invariants."""
    typed_code = totp.normalize(code)
    if any(char.isspace() for char in typed_code):
        raise Failure(f"totp.normalize left whitespace in {typed_code!r}")
    for digits in (6, 7, 8):
        params = totp.TotpParams(digits=digits)
        shaped = totp.is_totp_shaped(typed_code, params)
        if shaped and not (
            typed_code.isascii() and typed_code.isdigit() and len(typed_code) == digits
        ):
            raise Failure(f"{typed_code!r} passed for a {digits}-digit code")
    # The decoy check for unknown users runs on any accepted code.
    totp.matching_steps(DECOY_SECRET, totp.TotpParams(), typed_code, 100, 102)
    canonical = recovery.normalize(code)
    if canonical is not None:
        scratch = len(canonical) == recovery.SCRATCH_LENGTH and canonical.isdigit()
        crockford = len(canonical) == recovery.LENGTH and set(canonical) <= set(recovery.ALPHABET)
        if not (scratch or crockford):
            raise Failure(f"recovery.normalize gave {canonical!r}")
        if recovery.normalize(canonical) != canonical:
            raise Failure(f"recovery.normalize is not stable on {canonical!r}")


class _Handle:
    """The parts of pam_python's handle that the hook's conversation touches."""

    PAM_PROMPT_ECHO_OFF = 1
    PAM_PROMPT_ECHO_ON = 2
    PAM_ERROR_MSG = 3
    PAM_TEXT_INFO = 4

    class exception(Exception):  # pam_python's spelling
        pass

    class Message:
        def __init__(self, style: int, text: str) -> None:
            self.msg_style = style
            self.msg = text

    class Response:
        def __init__(self, resp: bytes) -> None:
            self.resp = resp

    def __init__(self, answer: bytes) -> None:
        self.answer = answer

    def conversation(self, message: Any) -> Any:
        return self.Response(self.answer)


class Person:
    """Answers prompts from a list; then the conversation fails, as a hung-up client's."""

    def __init__(self, answers: list[str | bytes | None]) -> None:
        self.answers = list(answers)
        self.said: list[str] = []

    def ask(self, text: str, *, echo: bool = False) -> str | None:
        if not self.answers:
            return None
        answer = self.answers.pop(0)
        if isinstance(answer, bytes):  # through the hook's own decoding of PAM's bytes
            return entry._Conversation(_Handle(answer), None).ask(text, echo=echo)
        return answer

    def info(self, text: str) -> None:
        self.said.append(text)

    def error(self, text: str) -> None:
        self.said.append(text)

    def log(self, text: str, *, warning: bool = False) -> None:
        self.said.append(text)


@dataclass
class ScriptedDaemon:
    """Stands where login.Login's Client would; answers from `replies`, in order."""

    replies: dict[str, list[Any]]
    fail_open: bool
    sent: list[p.Request] = field(default_factory=list)
    granted: bool = False
    next_id: int = 1

    def __enter__(self) -> ScriptedDaemon:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def close(self) -> None:
        pass

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        try:
            line = p.encode_request(op, id=self.next_id, **fields)
        except p.ProtocolError as exc:
            raise RequestFailed(exc.code, exc.message) from None
        self.next_id += 1
        try:
            request = p.decode_request(line)
        except p.ProtocolError as exc:
            raise Failure(f"twofad would refuse what the hook sends: {exc.message}") from None
        for name in ("code", "code1", "code2"):
            if name in request.fields:
                daemon_reading(request.fields[name])
        self.sent.append(request)
        queue = self.replies.get(op) or [Unavailable("no answer scripted")]
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(reply, Unavailable):
            if self.fail_open:
                self.granted = True
            raise reply
        if isinstance(reply, RequestFailed):
            if reply.code == p.UNAVAILABLE and self.fail_open:
                self.granted = True  # the store out of reach: the outage fail= is for
            raise reply
        if (
            (op == "check" and reply.get("action") == p.SKIP)
            or (op == "verify" and reply.get("result") == p.ACCEPTED)
            or op == "enroll.confirm"
        ):
            self.granted = True
        return dict(reply)


def _failure(rng: random.Random) -> RequestFailed | Unavailable:
    if rng.random() < 0.3:
        return Unavailable("twofad did not answer")
    code = rng.choice(sorted(p.ERROR_CODES - {p.BUSY}))
    return RequestFailed(code, values.text(rng, 20))


def _lock_fields(rng: random.Random) -> dict[str, Any]:
    hard = rng.random() < 0.3
    return {"retry_after": None if hard else rng.randint(1, 3600), "hard_locked": hard}


def script(rng: random.Random) -> dict[str, list[Any]]:
    """Replies of the shapes twofad sends, for each operation a login may ask."""
    action = rng.choice(sorted(p.CHECK_ACTIONS) + ["something new"])
    decision: dict[str, Any] = {"action": action, "user": "alice"}
    if action == p.PROMPT:
        decision["digits"] = (
            rng.choice((6, 6, 7, 8)) if rng.random() < 0.95 else rng.choice((5, 9, "6", True, None))
        )
    if action == p.LOCKED:
        decision.update(_lock_fields(rng))
    checks: list[Any] = [decision if rng.random() < 0.85 else _failure(rng)]

    verifies: list[Any] = []
    for _ in range(3):
        if rng.random() < 0.15:
            verifies.append(_failure(rng))
            continue
        result = rng.choice(sorted(p.VERIFY_RESULTS))
        reply: dict[str, Any] = {"user": "alice", "result": result}
        if result == p.ACCEPTED:
            reply["method"] = rng.choice(("totp", "recovery"))
            if reply["method"] == "recovery":
                reply["recovery_codes_left"] = rng.randint(0, 20)
        elif result == p.LOCKED or rng.random() < 0.2:
            reply.update(_lock_fields(rng))
        verifies.append(reply)

    confirms: list[Any] = []
    for _ in range(4):
        if rng.random() < 0.5:
            confirms.append(RequestFailed(p.INVALID_CODE, "that code does not match"))
        elif rng.random() < 0.2:
            confirms.append(_failure(rng))
        else:
            codes = [typed.recovery_code(rng) for _ in range(rng.randint(4, 20))]
            confirms.append({"user": "alice", "recovery_codes": codes})
    begins: list[Any] = [dict(ENROLL_DATA) if rng.random() < 0.9 else _failure(rng)]
    return {"check": checks, "verify": verifies, "enroll.confirm": confirms, "enroll.begin": begins}


@dataclass
class LoginCase:
    arguments: list[str]
    user: str
    service: str | None
    rhost: str | None
    answers: list[str | bytes | None]
    replies: dict[str, list[Any]]


def login_case(rng: random.Random) -> LoginCase:
    arguments = typed.pam_arguments(rng) if rng.random() < 0.3 else []
    if rng.random() < 0.4:
        arguments.append("single_prompt")
    if rng.random() < 0.3:
        arguments.append("fail=open")
    user = (
        rng.choice(("alice", "root", "jo.doe@corp")) if rng.random() < 0.8 else values.text(rng, 20)
    )
    service = (
        rng.choice(("sshd", "login", None, "su")) if rng.random() < 0.9 else values.text(rng, 10)
    )
    rhost = rng.choice(("203.0.113.7", None, "::1")) if rng.random() < 0.9 else values.text(rng, 10)
    answers = [typed.answer(rng) for _ in range(rng.randint(0, 5))]
    return LoginCase(arguments, user, service, rhost, answers, script(rng))


OUTCOMES = frozenset({login.SUCCESS, login.AUTH_ERR, login.AUTHINFO_UNAVAIL, login.CONV_ERR})


def run_login(case: LoginCase) -> None:
    """Run the login; raise Failure if its outcome is not what the daemon allowed."""
    options = login.Options.parse(list(case.arguments))
    person = Person(case.answers)
    daemon = ScriptedDaemon(
        {op: list(queue) for op, queue in case.replies.items()}, options.fail_open
    )
    attempt = login.Login(options, person, daemon, case.user, case.service, case.rhost)
    outcome = attempt.run()
    if outcome not in OUTCOMES:
        raise Failure(f"unknown outcome {outcome!r}")
    if outcome == login.SUCCESS and not daemon.granted:
        raise Failure("a login succeeded that the daemon never allowed")
    if not all(isinstance(text, str) for text in person.said):
        raise Failure("something other than text was shown")
    for request in daemon.sent:
        for name in ("code", "code1", "code2"):
            sent = request.fields.get(name)
            if sent is not None and not sent.strip():
                raise Failure(f"a blank code was sent: {sent!r}")
        if request.op == "verify" and options.single_prompt:
            code = request.fields["code"]
            if not (code.isascii() and code.isdigit() and len(code) in (6, 7, 8)):
                raise Failure(f"single prompt sent {code!r} as the code")
    if attempt.authtok is not None and outcome != login.SUCCESS:
        raise Failure("a password was handed on from a failed login")
