"""pam_twofa.login: every path of a login, with a scripted person and a scripted twofad.

The person answers from a list and everything they are shown is recorded, in order; the
daemon answers each operation from its own list, or raises what client.Client raises.
Requests still go through the real encoder, as Client sends them, so a name or a code
the protocol refuses fails the way it fails at a real login.  Every scenario is run a
second time with `debug`, which must change nothing the person sees; both runs are
checked for the two promises that hold on every path: no blank code is ever sent, and
no code, password or recovery code is ever written to the log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from pam_twofa import display, login
from pam_twofa import protocol as p
from pam_twofa.client import RequestFailed, Unavailable

USER, SERVICE, RHOST = "alice", "sshd", "203.0.113.7"
CODE = "314159"
PASSWORD = "correct horse"
DOWN = Unavailable("cannot reach twofad at /run/twofad/twofad.sock: No such file or directory")
SLOW = Unavailable("twofad did not answer within 6 s")
SECURE_LOG = f"login of {USER} refused (service={SERVICE} rhost={RHOST})"
OPEN_LOG = f"fail=open lets {USER} in without a code (service={SERVICE} rhost={RHOST})"

PROMPT = "Verification code: "
SINGLE = "Password followed by verification code: "
PASSWORD_PROMPT = "Password: "
CONFIRM = "Enter the code from your app to confirm: "
MISMATCH = "That code does not match; wait for the next one and try again."
SETUP_FAILED = "Set-up failed: two-step verification was not enabled."
STORED = "Press Enter once they are stored: "
WAIT_42 = "Too many failed attempts; try again in 42 seconds"
ASK_ADMIN = "Too many failed attempts; ask an administrator to unlock your account"
NOT_SET_UP = (
    "Two-step verification is required for this account but is not set up. "
    "Ask an administrator to set it up for you (twofactl enroll)."
)
SET_UP_ELSEWHERE = (
    "Two-step verification must be set up first, from a client that can show more than "
    "one prompt, or by an administrator."
)

ASK_CODE = {"action": p.PROMPT, "digits": 6}
ACCEPTED = {"user": USER, "result": p.ACCEPTED, "method": "totp"}
REJECTED = {"user": USER, "result": p.REJECTED}
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
ENROLL_DATA = {
    "user": USER,
    "secret": SECRET,
    "secret_grouped": "JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP",
    "uri": f"otpauth://totp/host:{USER}?secret={SECRET}&issuer=host",
    "qr": "█▀▀▀▀▀█\n█ ███ █\n",
    "algorithm": "SHA1",
    "digits": 6,
    "period": 30,
}
RECOVERY_CODES = ["K7QM-2XPD-9WRT", "3HVN-8CJF-6YBA"]
CONFIRMED = {"user": USER, "recovery_codes": RECOVERY_CODES}
SETUP_SCREEN = "\n".join(
    [
        "Two-step verification: set up an authenticator app for this account.",
        "Scan the QR code with Google Authenticator, Microsoft Authenticator, Aegis or "
        "FreeOTP, or type in the key.",
        "█▀▀▀▀▀█\n█ ███ █",
        "Key: JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP",
        "     (SHA1, 6 digits, every 30 s)",
        f"URI: {ENROLL_DATA['uri']}",
    ]
)
CODES_SCREEN = "\n".join(
    [
        "Recovery codes, each usable once when your phone is not at hand:",
        "    K7QM-2XPD-9WRT",
        "    3HVN-8CJF-6YBA",
        "Store them somewhere safe now (a password manager, or on paper): "
        "they will not be shown again.",
        STORED,
    ]
)


class Person:
    """The conversation: answers prompts from a script and records all it is shown."""

    def __init__(self, answers: Iterable[str | None]) -> None:
        self.answers = list(answers)
        self.shown: list[tuple[str, str]] = []  # ("ask" | "ask-echo" | "info" | "error", text)
        self.logged: list[tuple[str, str]] = []  # ("warning" | "info", text)

    def ask(self, text: str, *, echo: bool = False) -> str | None:
        self.shown.append(("ask-echo" if echo else "ask", text))
        assert self.answers, f"asked {text!r} with no answer left in the script"
        return self.answers.pop(0)

    def info(self, text: str) -> None:
        self.shown.append(("info", text))

    def error(self, text: str) -> None:
        self.shown.append(("error", text))

    def log(self, text: str, *, warning: bool = False) -> None:
        self.logged.append(("warning" if warning else "info", text))


class Twofad:
    """Stands where client.Client would: each operation answers from its own list."""

    def __init__(self, replies: Mapping[str, Sequence[dict[str, Any] | Exception]]) -> None:
        self.replies = {op: list(queue) for op, queue in replies.items()}
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        try:  # what Client does before it sends
            p.encode_request(op, id=len(self.sent) + 1, **fields)
        except p.ProtocolError as exc:
            raise RequestFailed(exc.code, exc.message) from None
        self.sent.append((op, fields))
        queue = self.replies.get(op)
        assert queue, f"unexpected request {op} {fields}"
        reply = queue.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def ops(self) -> list[str]:
        return [op for op, _ in self.sent]

    def codes(self) -> list[str]:
        return [fields["code"] for _, fields in self.sent if "code" in fields]


@dataclass
class Run:
    outcome: str
    shown: list[tuple[str, str]]
    logged: list[tuple[str, str]]
    daemon: Twofad
    authtok: str | None
    debug_logged: list[str] = field(default_factory=list)  # debug's own lines


def attempt(
    replies: Mapping[str, Sequence[dict[str, Any] | Exception]],
    answers: Iterable[str | None] = (),
    arguments: Sequence[str] = (),
    *,
    user: str = USER,
    service: str | None = SERVICE,
    rhost: str | None = RHOST,
) -> Run:
    """One login, run plainly and again with `debug`; checks what holds on every path."""
    answers = list(answers)
    runs = []
    for extra in ([], ["debug"]):
        person = Person(answers)
        daemon = Twofad(replies)
        options = login.Options.parse([*arguments, *extra])
        one = login.Login(options, person, daemon, user, service, rhost)
        outcome = one.run()
        assert outcome in (login.SUCCESS, login.AUTH_ERR, login.AUTHINFO_UNAVAIL, login.CONV_ERR)
        assert one.authtok is None or outcome == login.SUCCESS
        assert all(code.strip() for code in daemon.codes()), "a blank code was sent"
        secrets = {a for a in answers if a and a.strip()} | set(daemon.codes())
        secrets |= {*RECOVERY_CODES, SECRET} | ({one.authtok} if one.authtok else set())
        for _, line in person.logged:
            assert not [s for s in secrets if s in line], f"logged a secret: {line!r}"
        runs.append(Run(outcome, person.shown, person.logged, daemon, one.authtok))
    plain, debug = runs
    assert (debug.outcome, debug.shown, debug.authtok) == (
        plain.outcome,
        plain.shown,
        plain.authtok,
    )
    assert debug.daemon.sent == plain.daemon.sent
    assert [e for e in debug.logged if e[0] == "warning"] == plain.logged
    plain.debug_logged = [text for kind, text in debug.logged if kind == "info"]
    return plain


def warnings(run: Run) -> list[str]:
    return [text for kind, text in run.logged if kind == "warning"]


# --- the daemon decides there is nothing to ask ------------------------------------


def test_skip_lets_the_login_through_without_a_word() -> None:
    run = attempt({"check": [{"action": p.SKIP}]})
    assert run.outcome == login.SUCCESS
    assert (run.shown, run.logged, run.authtok) == ([], [], None)
    assert run.daemon.sent == [("check", {"user": USER, "service": SERVICE, "rhost": RHOST})]


def test_refuse_says_to_ask_an_administrator() -> None:
    run = attempt({"check": [{"action": p.REFUSE}]})
    assert run.outcome == login.AUTH_ERR
    assert run.shown == [("error", NOT_SET_UP)]
    assert run.daemon.ops() == ["check"]


def test_an_action_the_hook_does_not_know_is_refused_like_refuse() -> None:
    run = attempt({"check": [{"action": "teleport"}]})
    assert (run.outcome, run.shown) == (login.AUTH_ERR, [("error", NOT_SET_UP)])


# --- a code at the prompt ----------------------------------------------------------


def test_a_right_code_logs_in_and_is_sent_as_typed() -> None:
    run = attempt({"check": [ASK_CODE], "verify": [ACCEPTED]}, [" 314 159 "])
    assert run.outcome == login.SUCCESS
    assert run.shown == [("ask", PROMPT)]
    assert run.daemon.sent[1] == (
        "verify",
        {"user": USER, "code": " 314 159 ", "service": SERVICE, "rhost": RHOST},
    )
    assert run.authtok is None  # only single_prompt hands a password on
    assert run.debug_logged == [f"check {USER}: prompt", f"verify {USER}: accepted"]


@pytest.mark.parametrize("result", [p.REJECTED, p.REPLAYED, "something new"])
def test_a_code_not_accepted_is_invalid(result: str) -> None:
    run = attempt({"check": [ASK_CODE], "verify": [{"result": result}]}, [CODE])
    assert run.outcome == login.AUTH_ERR
    assert run.shown == [("ask", PROMPT), ("error", "Invalid verification code")]
    assert run.logged == []


def test_the_prompt_is_the_one_the_pam_file_names() -> None:
    run = attempt(
        {"check": [ASK_CODE], "verify": [ACCEPTED]}, [CODE], ["prompt=One-time password:"]
    )
    assert run.shown == [("ask", "One-time password: ")]


@pytest.mark.parametrize("typed", ["", "   ", "\t"])
def test_an_empty_answer_is_invalid_and_never_sent(typed: str) -> None:
    run = attempt({"check": [ASK_CODE]}, [typed])
    assert run.outcome == login.AUTH_ERR
    assert run.shown == [("ask", PROMPT), ("error", "Invalid verification code")]
    assert run.daemon.ops() == ["check"]


def test_a_code_the_protocol_refuses_is_just_a_wrong_code() -> None:
    run = attempt({"check": [ASK_CODE]}, ["3141\x0759"])
    assert run.outcome == login.AUTH_ERR
    assert run.shown == [("ask", PROMPT), ("error", "Invalid verification code")]
    assert run.daemon.ops() == ["check"]  # the encoder refused it: nothing reached twofad


def test_a_conversation_error_at_the_prompt_is_conv_err() -> None:
    run = attempt({"check": [ASK_CODE]}, [None])
    assert run.outcome == login.CONV_ERR
    assert run.shown == [("ask", PROMPT)]
    assert run.daemon.ops() == ["check"]


# --- recovery codes ----------------------------------------------------------------


def recovery(left: object) -> dict[str, Any]:
    return {"result": p.ACCEPTED, "method": "recovery", "recovery_codes_left": left}


def test_a_recovery_code_says_how_many_are_left() -> None:
    run = attempt({"check": [ASK_CODE], "verify": [recovery(3)]}, ["K7QM-2XPD-9WRT"])
    assert run.outcome == login.SUCCESS
    assert run.shown == [("ask", PROMPT), ("info", "Recovery code accepted; 3 left.")]


def test_the_last_recovery_code_says_to_make_new_ones() -> None:
    run = attempt({"check": [ASK_CODE], "verify": [recovery(0)]}, ["K7QM-2XPD-9WRT"])
    assert run.outcome == login.SUCCESS
    assert run.shown[1] == (
        "info",
        "Recovery code accepted. That was your last one: "
        "make new ones with `twofa recovery-codes`.",
    )


@pytest.mark.parametrize(
    "reply",
    [ACCEPTED, recovery(None), recovery("3"), {"result": p.ACCEPTED, "recovery_codes_left": 3}],
)
def test_no_count_without_a_recovery_code_and_a_number(reply: dict[str, Any]) -> None:
    run = attempt({"check": [ASK_CODE], "verify": [reply]}, [CODE])
    assert (run.outcome, run.shown) == (login.SUCCESS, [("ask", PROMPT)])


# --- lock-outs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ({"retry_after": 42, "hard_locked": False}, WAIT_42),
        ({"retry_after": None, "hard_locked": True}, ASK_ADMIN),
        ({"retry_after": 42, "hard_locked": True}, ASK_ADMIN),
        ({}, ASK_ADMIN),
        ({"retry_after": "42"}, ASK_ADMIN),
    ],
)
def test_a_lock_at_check_is_said_before_any_prompt(reply: dict[str, Any], message: str) -> None:
    run = attempt({"check": [{"action": p.LOCKED, **reply}]})
    assert run.outcome == login.AUTH_ERR
    assert run.shown == [("error", message)]
    assert run.daemon.ops() == ["check"]


def test_a_lock_at_verify_is_said_after_the_code() -> None:
    locked = {"result": p.LOCKED, "retry_after": 42, "hard_locked": False}
    run = attempt({"check": [ASK_CODE], "verify": [locked]}, [CODE])
    assert run.outcome == login.AUTH_ERR
    assert run.shown == [("ask", PROMPT), ("error", WAIT_42)]


def test_a_hard_lock_at_verify_says_to_ask_an_administrator() -> None:
    locked = {"result": p.LOCKED, "retry_after": None, "hard_locked": True}
    run = attempt({"check": [ASK_CODE], "verify": [locked]}, [CODE])
    assert run.shown == [("ask", PROMPT), ("error", ASK_ADMIN)]


# --- unknown users -----------------------------------------------------------------


def test_an_unknown_user_is_prompted_and_refused_like_a_known_one() -> None:
    known = attempt({"check": [ASK_CODE], "verify": [REJECTED]}, [CODE])
    unknown = attempt(
        {
            "check": [RequestFailed(p.BAD_REQUEST, "user is not valid")],
            "verify": [RequestFailed(p.BAD_REQUEST, "user is not valid")],
        },
        [CODE],
    )
    assert unknown.outcome == known.outcome == login.AUTH_ERR
    assert unknown.shown == known.shown == [("ask", PROMPT), ("error", "Invalid verification code")]
    assert unknown.logged == known.logged == []


def test_a_name_the_protocol_refuses_is_prompted_for_and_never_sent() -> None:
    run = attempt({}, [CODE], user="-rf")
    assert run.outcome == login.AUTH_ERR
    assert run.shown == [("ask", PROMPT), ("error", "Invalid verification code")]
    assert run.daemon.sent == []


def test_an_unknown_user_is_asked_for_password_and_code_in_single_prompt() -> None:
    run = attempt({}, [PASSWORD + CODE], ["single_prompt"], user="-rf")
    assert run.outcome == login.AUTH_ERR
    assert run.shown == [("ask", SINGLE), ("error", "Invalid verification code")]


# --- twofad refusing what it should not --------------------------------------------


@pytest.mark.parametrize("arguments", [[], ["fail=open"]])
def test_a_refused_check_refuses_the_login_whatever_fail_says(arguments: list[str]) -> None:
    refusal = RequestFailed(p.UNAUTHORIZED, "only root may ask")
    run = attempt({"check": [refusal]}, [], arguments)
    assert run.outcome == login.AUTH_ERR
    assert run.shown == [("error", login.UNAVAILABLE)]
    assert warnings(run) == [
        f"twofad refused a request for {USER}: only root may ask (unauthorized)"
    ]


@pytest.mark.parametrize("arguments", [[], ["fail=open"]])
def test_a_refused_verify_refuses_the_login(arguments: list[str]) -> None:
    refusal = RequestFailed(p.INTERNAL, "database is locked")
    run = attempt({"check": [ASK_CODE], "verify": [refusal]}, [CODE], arguments)
    assert run.outcome == login.AUTH_ERR
    assert run.shown == [("ask", PROMPT), ("error", login.UNAVAILABLE)]
    assert warnings(run) == [f"twofad refused a request for {USER}: database is locked (internal)"]


# --- twofad unreachable: fail=secure and fail=open ---------------------------------


@pytest.mark.parametrize("arguments", [[], ["fail=secure"]])
def test_daemon_down_at_check_refuses_by_default(arguments: list[str]) -> None:
    run = attempt({"check": [DOWN]}, [], arguments)
    assert run.outcome == login.AUTHINFO_UNAVAIL
    assert run.shown == [("error", "Two-step verification is unavailable; login refused")]
    assert warnings(run) == [f"twofad unavailable ({DOWN}); {SECURE_LOG}"]


def test_daemon_down_at_verify_refuses_after_the_prompt() -> None:
    run = attempt({"check": [ASK_CODE], "verify": [SLOW]}, [CODE])
    assert run.outcome == login.AUTHINFO_UNAVAIL
    assert run.shown == [("ask", PROMPT), ("error", login.UNAVAILABLE)]
    assert warnings(run) == [
        "twofad unavailable (twofad did not answer within 6 s); "
        f"login of {USER} refused (service={SERVICE} rhost={RHOST})"
    ]


def test_the_log_line_says_when_there_is_no_service_or_remote_host() -> None:
    run = attempt({"check": [DOWN]}, service=None, rhost=None)
    assert warnings(run) == [
        f"twofad unavailable ({DOWN}); login of {USER} refused (service=- rhost=-)"
    ]


def test_daemon_down_at_check_with_fail_open_lets_in_and_logs_it() -> None:
    run = attempt({"check": [DOWN]}, [], ["fail=open"])
    assert run.outcome == login.SUCCESS
    assert (run.shown, run.authtok) == ([], None)
    assert warnings(run) == [f"twofad unavailable ({DOWN}); {OPEN_LOG}"]


def test_daemon_down_at_verify_with_fail_open_lets_in_and_logs_it() -> None:
    run = attempt({"check": [ASK_CODE], "verify": [SLOW]}, [CODE], ["fail=open"])
    assert run.outcome == login.SUCCESS
    assert run.shown == [("ask", PROMPT)]
    assert warnings(run) == [f"twofad unavailable ({SLOW}); {OPEN_LOG}"]


NO_STORE = RequestFailed(p.UNAVAILABLE, "the state database did not answer in time")


@pytest.mark.parametrize("stage", ["check", "verify"])
def test_the_store_out_of_reach_is_the_fail_choice_at_each_stage(stage: str) -> None:
    replies: dict[str, list[Any]] = {"check": [ASK_CODE], "verify": [NO_STORE]}
    if stage == "check":
        replies = {"check": [NO_STORE]}
    secure = attempt(replies, [CODE])
    assert secure.outcome == login.AUTHINFO_UNAVAIL
    assert ("error", login.UNAVAILABLE) in secure.shown
    assert "refused" in warnings(secure)[0] and NO_STORE.message in warnings(secure)[0]
    opened = attempt(replies, [CODE], ["fail=open"])
    assert opened.outcome == login.SUCCESS
    assert warnings(opened) == [f"twofad unavailable ({NO_STORE.message}); {OPEN_LOG}"]


def test_daemon_down_during_set_up() -> None:
    secure = attempt({"check": [{"action": p.ENROLL}], "enroll.begin": [DOWN]})
    assert (secure.outcome, secure.shown) == (
        login.AUTHINFO_UNAVAIL,
        [("error", login.UNAVAILABLE)],
    )
    opened = attempt({"check": [{"action": p.ENROLL}], "enroll.begin": [DOWN]}, [], ["fail=open"])
    assert (opened.outcome, opened.shown) == (login.SUCCESS, [])


# --- set-up at the first login -----------------------------------------------------


def enrolling(*confirm: dict[str, Any] | Exception) -> dict[str, list[Any]]:
    return {
        "check": [{"action": p.ENROLL}],
        "enroll.begin": [ENROLL_DATA],
        "enroll.confirm": [*confirm],
    }


def test_set_up_shows_the_key_then_the_recovery_codes_with_a_prompt() -> None:
    run = attempt(enrolling(CONFIRMED), [CODE, ""])
    assert run.outcome == login.SUCCESS
    assert run.shown == [("info", SETUP_SCREEN), ("ask", CONFIRM), ("ask-echo", CODES_SCREEN)]
    assert run.daemon.sent[1:] == [
        ("enroll.begin", {"user": USER}),
        ("enroll.confirm", {"user": USER, "code": CODE}),
    ]
    assert SETUP_SCREEN.startswith("\n".join(display.enrollment_intro()))
    assert run.debug_logged == [f"check {USER}: enroll", f"enrolled {USER}"]


def test_set_up_forgives_a_wrong_code_and_an_empty_answer() -> None:
    wrong = RequestFailed(p.INVALID_CODE, "that code does not match")
    run = attempt(enrolling(wrong, CONFIRMED), ["271828", "  ", CODE, ""])
    assert run.outcome == login.SUCCESS
    assert run.shown == [
        ("info", SETUP_SCREEN),
        ("ask", CONFIRM),
        ("error", MISMATCH),
        ("ask", CONFIRM),
        ("error", MISMATCH),
        ("ask", CONFIRM),
        ("ask-echo", CODES_SCREEN),
    ]
    assert run.daemon.codes() == ["271828", CODE]  # the empty answer was never sent


def test_set_up_gives_up_after_three_tries() -> None:
    wrong = RequestFailed(p.INVALID_CODE, "that code does not match")
    unusable = RequestFailed(p.BAD_REQUEST, "code contains control characters")
    run = attempt(enrolling(wrong, unusable), ["271828", "", "161803"])
    assert run.outcome == login.AUTH_ERR
    assert run.shown == [
        ("info", SETUP_SCREEN),
        ("ask", CONFIRM),
        ("error", MISMATCH),
        ("ask", CONFIRM),
        ("error", MISMATCH),
        ("ask", CONFIRM),
        ("error", SETUP_FAILED),
    ]
    assert run.daemon.codes() == ["271828", "161803"]
    assert login.ENROLL_TRIES == 3


def test_set_up_refused_by_twofad_refuses_the_login() -> None:
    run = attempt(
        {"check": [{"action": p.ENROLL}], "enroll.begin": [RequestFailed(p.ALREADY_ENROLLED, "x")]}
    )
    assert (run.outcome, run.shown) == (login.AUTH_ERR, [("error", login.UNAVAILABLE)])
    assert warnings(run) == [f"twofad refused a request for {USER}: x (already_enrolled)"]


def test_a_confirmation_refused_unexpectedly_refuses_the_login() -> None:
    run = attempt(enrolling(RequestFailed(p.LOCKED, "too many tries")), [CODE])
    assert run.outcome == login.AUTH_ERR
    assert run.shown == [("info", SETUP_SCREEN), ("ask", CONFIRM), ("error", login.UNAVAILABLE)]
    assert warnings(run) == [f"twofad refused a request for {USER}: too many tries (locked)"]


def test_a_conversation_error_during_set_up_is_conv_err() -> None:
    run = attempt(enrolling(), [None])
    assert (run.outcome, run.shown) == (login.CONV_ERR, [("info", SETUP_SCREEN), ("ask", CONFIRM)])
    assert run.daemon.ops() == ["check", "enroll.begin"]


def test_set_up_is_done_even_if_the_codes_prompt_is_not_answered() -> None:
    run = attempt(enrolling(CONFIRMED), [CODE, None])
    assert run.outcome == login.SUCCESS
    assert run.shown[-1] == ("ask-echo", CODES_SCREEN)


# --- one prompt for password and code ----------------------------------------------


def test_single_prompt_splits_password_and_code() -> None:
    run = attempt({"check": [ASK_CODE], "verify": [ACCEPTED]}, [PASSWORD + CODE], ["single_prompt"])
    assert run.outcome == login.SUCCESS
    assert run.shown == [("ask", SINGLE)]
    assert run.daemon.codes() == [CODE]
    assert run.authtok == PASSWORD


@pytest.mark.parametrize(
    ("digits", "code"),
    [(8, "31415926"), (7, "1415926"), (6, "415926"), (9, "415926"), ("8", "415926")],
)
def test_single_prompt_takes_as_many_digits_as_the_daemon_says(digits: object, code: str) -> None:
    decision = {"action": p.PROMPT, "digits": digits}
    typed = PASSWORD + "31415926"
    run = attempt({"check": [decision], "verify": [ACCEPTED]}, [typed], ["single_prompt"])
    assert run.daemon.codes() == [code]  # out of range or not a number: the usual 6
    assert run.authtok == typed[: -len(code)]


@pytest.mark.parametrize("typed", [CODE, PASSWORD, PASSWORD + "31415x", PASSWORD + "３１４１５９"])
def test_single_prompt_without_a_code_at_the_end_is_invalid(typed: str) -> None:
    run = attempt({"check": [ASK_CODE]}, [typed], ["single_prompt"])
    assert run.outcome == login.AUTH_ERR
    assert run.shown == [("ask", SINGLE), ("error", "Invalid verification code")]
    assert (run.daemon.ops(), run.authtok) == (["check"], None)


def test_single_prompt_hands_on_no_password_when_the_code_is_wrong() -> None:
    run = attempt({"check": [ASK_CODE], "verify": [REJECTED]}, [PASSWORD + CODE], ["single_prompt"])
    assert (run.outcome, run.authtok) == (login.AUTH_ERR, None)
    assert run.shown == [("ask", SINGLE), ("error", "Invalid verification code")]


def test_single_prompt_skip_asks_only_for_the_password() -> None:
    run = attempt({"check": [{"action": p.SKIP}]}, [PASSWORD + CODE], ["single_prompt"])
    assert run.outcome == login.SUCCESS
    assert run.shown == [("ask", PASSWORD_PROMPT)]
    assert run.authtok == PASSWORD + CODE  # nothing is split off when no code is asked for


def test_single_prompt_conversation_errors_are_conv_err() -> None:
    skip = attempt({"check": [{"action": p.SKIP}]}, [None], ["single_prompt"])
    prompt = attempt({"check": [ASK_CODE]}, [None], ["single_prompt"])
    assert (
        (skip.outcome, skip.authtok) == (prompt.outcome, prompt.authtok) == (login.CONV_ERR, None)
    )


def test_single_prompt_lock_and_set_up_are_said_without_a_prompt() -> None:
    locked = attempt({"check": [{"action": p.LOCKED, "retry_after": 42}]}, [], ["single_prompt"])
    assert (locked.outcome, locked.shown) == (login.AUTH_ERR, [("error", WAIT_42)])
    for action in (p.ENROLL, p.REFUSE):
        run = attempt({"check": [{"action": action}]}, [], ["single_prompt"])
        assert (run.outcome, run.shown) == (login.AUTH_ERR, [("error", SET_UP_ELSEWHERE)])
        assert run.daemon.ops() == ["check"]


def test_single_prompt_fail_secure_refuses_without_asking() -> None:
    run = attempt({"check": [DOWN]}, [], ["single_prompt"])
    assert (run.outcome, run.shown) == (login.AUTHINFO_UNAVAIL, [("error", login.UNAVAILABLE)])


@pytest.mark.parametrize(
    ("typed", "password"),
    [
        (PASSWORD, PASSWORD),
        (PASSWORD + CODE, PASSWORD),  # a code typed after the password out of habit
        (CODE, CODE),  # nothing but six digits: that is the password
    ],
)
def test_single_prompt_fail_open_at_check_asks_for_the_password_only(
    typed: str, password: str
) -> None:
    run = attempt({"check": [DOWN]}, [typed], ["single_prompt", "fail=open"])
    assert run.outcome == login.SUCCESS
    assert run.shown == [("ask", PASSWORD_PROMPT)]
    assert run.authtok == password
    assert warnings(run) == [f"twofad unavailable ({DOWN}); {OPEN_LOG}"]


def test_single_prompt_fail_open_at_verify_keeps_the_password_typed() -> None:
    decision = {"action": p.PROMPT, "digits": 8}
    run = attempt(
        {"check": [decision], "verify": [SLOW]},
        [PASSWORD + "31415926"],
        ["single_prompt", "fail=open"],
    )
    assert run.outcome == login.SUCCESS
    assert run.shown == [("ask", SINGLE)]  # not asked again
    assert run.authtok == PASSWORD


def test_single_prompt_fail_open_password_prompt_unanswered_is_conv_err() -> None:
    run = attempt({"check": [DOWN]}, [None], ["single_prompt", "fail=open"])
    assert (run.outcome, run.authtok) == (login.CONV_ERR, None)


# --- the PAM file's arguments ------------------------------------------------------


def test_unknown_arguments_are_logged_and_ignored() -> None:
    arguments = ["frobnicate", "fail=maybe", "timeout=0", "timeout=301", "socket=", "prompt="]
    run = attempt({"check": [{"action": p.SKIP}]}, [], arguments)
    assert run.outcome == login.SUCCESS
    assert warnings(run) == [f"ignoring unknown argument {a!r}" for a in arguments]


def test_arguments_are_read() -> None:
    options = login.Options.parse(
        ["socket=/run/x.sock", "fail=open", "timeout=2.5", "prompt=Code:", "debug", "single_prompt"]
    )
    assert (options.socket, options.fail_open, options.timeout) == ("/run/x.sock", True, 2.5)
    assert (options.prompt, options.debug, options.single_prompt) == ("Code: ", True, True)
    assert options.unknown == []
    default = login.Options.parse([])
    assert (default.socket, default.fail_open, default.timeout) == (None, False, 5.0)
    assert (default.prompt, default.debug, default.single_prompt) == (PROMPT, False, False)


# --- a code by email -----------------------------------------------------------------

ASK_EMAIL = {"action": p.PROMPT, "digits": 6, "email": True}
EMAIL_PROMPT = f"{login.EMAIL_HINT}\n{PROMPT}"
SENT = {"user": USER, "result": p.SENT, "expires_in": 600}
MAILED = "27182818"


def test_where_email_is_allowed_the_prompt_says_so_and_a_code_still_works() -> None:
    run = attempt({"check": [ASK_EMAIL], "verify": [ACCEPTED]}, [CODE])
    assert run.outcome == login.SUCCESS
    assert run.shown == [("ask", EMAIL_PROMPT)]


def test_where_it_is_not_the_word_email_is_just_a_wrong_code() -> None:
    run = attempt({"check": [ASK_CODE], "verify": [REJECTED]}, ["email"])
    assert run.outcome == login.AUTH_ERR
    assert run.daemon.ops() == ["check", "verify"]  # never email.send


@pytest.mark.parametrize("typed", ["email", " Email ", "EMAIL"])
def test_email_sends_a_code_and_asks_for_it_in_the_same_login(typed: str) -> None:
    accepted = {"user": USER, "result": p.ACCEPTED, "method": "email"}
    run = attempt(
        {"check": [ASK_EMAIL], "email.send": [SENT], "verify": [accepted]}, [typed, MAILED]
    )
    assert run.outcome == login.SUCCESS
    assert run.shown == [
        ("ask", EMAIL_PROMPT),
        ("ask", f"{login.EMAIL_SENT}\n{login.EMAIL_PROMPT}"),
    ]
    assert run.daemon.sent[1] == ("email.send", {"user": USER, "service": SERVICE, "rhost": RHOST})
    assert run.daemon.sent[2] == (
        "verify",
        {"user": USER, "code": MAILED, "service": SERVICE, "rhost": RHOST, "channel": "email"},
    )


def test_a_wrong_emailed_code_is_invalid() -> None:
    run = attempt(
        {"check": [ASK_EMAIL], "email.send": [SENT], "verify": [REJECTED]}, ["email", MAILED]
    )
    assert run.outcome == login.AUTH_ERR
    assert run.shown[-1] == ("error", "Invalid verification code")


@pytest.mark.parametrize(
    ("refusal", "said"),
    [
        (
            RequestFailed(
                p.RATE_LIMITED,
                "too many codes were sent by email; the next can be sent in 12 minutes",
            ),
            "Too many codes were sent by email; the next can be sent in 12 minutes.",
        ),
        (
            RequestFailed(p.NOT_SENT, "the message could not be sent"),
            "The code could not be sent by email. Try again later, or use a recovery code.",
        ),
        (
            RequestFailed(p.LOCKED, "too many failed attempts; try again in 42 seconds"),
            "Too many failed attempts; try again in 42 seconds.",
        ),
        (
            RequestFailed(p.EMAIL_NOT_ALLOWED, "not allowed"),
            "Codes by email are not available for this login.",
        ),
    ],
)
def test_when_no_code_is_mailed_the_person_is_told_why(refusal: RequestFailed, said: str) -> None:
    run = attempt({"check": [ASK_EMAIL], "email.send": [refusal]}, ["email"])
    assert run.outcome == login.AUTH_ERR
    assert run.shown == [("ask", EMAIL_PROMPT), ("error", said)]
    assert run.daemon.ops() == ["check", "email.send"]


def test_the_daemon_gone_while_mailing_is_its_fail_choice() -> None:
    run = attempt({"check": [ASK_EMAIL], "email.send": [DOWN]}, ["email"])
    assert run.outcome == login.AUTHINFO_UNAVAIL


# --- a login form that shows messages only with a prompt (Cockpit) --------------------


def test_in_cockpits_form_a_wrong_code_is_said_with_one_more_prompt() -> None:
    run = attempt({"check": [ASK_CODE], "verify": [REJECTED]}, [CODE, ""], service="cockpit")
    assert run.outcome == login.AUTH_ERR
    assert run.shown == [
        ("ask", PROMPT),
        ("error", "Invalid verification code"),
        ("ask-echo", login.CONTINUE),
    ]


def test_in_the_form_a_recovery_codes_count_is_said_before_the_session() -> None:
    accepted = {"user": USER, "result": p.ACCEPTED, "method": "recovery", "recovery_codes_left": 3}
    run = attempt({"check": [ASK_CODE], "verify": [accepted]}, ["k7qm-2xpd-9wrt", ""], ["web_form"])
    assert run.outcome == login.SUCCESS
    assert run.shown[-2:] == [
        ("info", "Recovery code accepted; 3 left."),
        ("ask-echo", login.CONTINUE),
    ]


def test_in_the_form_nothing_held_asks_nothing_more() -> None:
    run = attempt({"check": [ASK_CODE], "verify": [ACCEPTED]}, [CODE], service="cockpit")
    assert run.outcome == login.SUCCESS and run.shown == [("ask", PROMPT)]


def test_set_up_in_the_form_shows_the_key_and_link_but_no_qr_code() -> None:
    run = attempt(
        {
            "check": [{"action": p.ENROLL}],
            "enroll.begin": [ENROLL_DATA],
            "enroll.confirm": [CONFIRMED],
        },
        [CODE, ""],
        service="cockpit",
    )
    assert run.outcome == login.SUCCESS
    kind, screen = run.shown[0]
    assert kind == "info" and "█" not in screen
    assert ENROLL_DATA["secret_grouped"] in screen and ENROLL_DATA["uri"] in screen
    assert run.shown[2][0] == "info" and all(c in run.shown[2][1] for c in RECOVERY_CODES)
    assert run.shown[3] == ("ask-echo", "Press Enter once they are stored: ")
