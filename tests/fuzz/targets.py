"""The offline targets: what each one generates, what it feeds it to, what must hold.

A target's `check` returns quietly when the code under test did the right thing: a
result that satisfies the oracle, or the one exception that means "bad input"
(ProtocolError for the wire, PolicyError for a policy file).  It raises flow.Failure
when an oracle is broken; any other exception escaping is a crash of the code under
test.  The runner times every call.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pam_twofa import login
from pam_twofa import protocol as p
from twofad import recovery, totp
from twofad.policy import Policy
from twofad.policy_file import MAX_SHOWN, PolicyError, parse

from . import flow, messages, policies, typed, values
from .flow import Failure


@dataclass(frozen=True)
class Target:
    name: str
    group: str  # decoder, policy or typed: each group gets the requested count
    share: float  # of its group's count
    generate: Callable[[random.Random], Any]
    check: Callable[[Any], None]


# --- the protocol decoder ------------------------------------------------------------


def check_request(line: bytes) -> None:
    try:
        request = p.decode_request(line)
    except p.ProtocolError as exc:
        if exc.code != p.BAD_REQUEST or not isinstance(exc.message, str) or not exc.message:
            raise Failure(f"refused with {exc.code!r}: {exc.message!r}") from None
        return
    schema = p.OPERATIONS.get(request.op)
    if schema is None or not set(request.fields) <= set(schema):
        raise Failure(f"accepted {request!r}")
    if request.id is not None and (type(request.id) is not int or not 0 <= request.id < 2**53):
        raise Failure(f"accepted the id {request.id!r}")
    # What was accepted must survive being sent again, unchanged.  (A policy text may
    # carry a lone surrogate from a \u escape: twofad reads it, and refuses it as YAML,
    # but no client can send one, since it cannot be written as UTF-8.)
    try:
        line = p.encode_request(request.op, id=request.id, **request.fields)
    except UnicodeEncodeError:
        if request.op == "policy.check":
            return
        raise
    again = p.decode_request(line)
    if (again.op, again.fields, again.id) != (request.op, request.fields, request.id):
        raise Failure(f"{request!r} changed on the way round: {again!r}")


def check_reply(line: bytes) -> None:
    try:
        response = p.decode_response(line)
    except p.ProtocolError as exc:
        if exc.code != p.INTERNAL or not exc.message:
            raise Failure(f"a bad reply raised {exc.code!r}") from None
        return
    if response.ok:
        if not isinstance(response.data, dict) or response.code is not None:
            raise Failure(f"ok reply without data: {response!r}")
    elif not (isinstance(response.code, str) and isinstance(response.message, str)):
        raise Failure(f"error reply without code and message: {response!r}")
    if response.id is not None and (type(response.id) is not int or response.id < 0):
        raise Failure(f"reply id {response.id!r}")


def _expected_lines(limit: int, chunks: list[bytes]) -> tuple[list[bytes], bool]:
    """What the buffer must yield, and whether it must refuse: worked out from scratch.

    After each chunk, every whole line received so far is due, unless a whole line or
    the unfinished rest is over the limit: then the lines before the first overlong
    one are due and the buffer refuses.
    """
    received = b""
    for chunk in chunks:
        received += chunk
        *whole, rest = received.split(b"\n")
        for index, line in enumerate(whole):
            if len(line) > limit:
                return whole[:index], True
        if len(rest) > limit:
            return whole, True
    return received.split(b"\n")[:-1], False


def check_stream(case: tuple[int, list[bytes]]) -> None:
    limit, chunks = case
    buffer = p.LineBuffer(limit)
    got: list[bytes] = []
    refused = False
    try:
        for chunk in chunks:
            got.extend(buffer.feed(chunk))
    except p.ProtocolError as exc:
        if exc.code != p.BAD_REQUEST:
            raise Failure(f"refused with {exc.code!r}") from None
        refused = True
    want, must_refuse = _expected_lines(limit, chunks)
    if refused != must_refuse:
        raise Failure("refused a stream within the limit" if refused else "let an overlong line by")
    if got != want:
        raise Failure(f"yielded {len(got)} lines, expected {len(want)}")
    if not refused and buffer.pending != len(b"".join(chunks).rsplit(b"\n", 1)[-1]):
        raise Failure(f"pending {buffer.pending} bytes")


# --- the policy parser ---------------------------------------------------------------


def policy_case(rng: random.Random) -> tuple[str, str]:
    source = "policy.yaml"
    if rng.random() < 0.1:  # a name as `policy check` may send it: printable, bounded
        source = "".join(c for c in values.text(rng, 255) if c.isprintable()) or "x"
    return policies.policy_text(rng), source


def check_policy(case: tuple[str, str]) -> None:
    text, source = case
    try:
        policy = parse(text, source)
    except PolicyError as exc:
        _check_problems(exc)
        return
    if not isinstance(policy, Policy):
        raise Failure(f"parse returned {type(policy).__name__}")
    # A valid policy must decide, for anyone, anywhere.
    for user, rhost in (("root", None), ("alice", "203.0.113.7"), ("bob", "::ffff:10.0.0.1")):
        decision = policy.decide(user, lambda: frozenset({"sudo", "staff"}), "sshd", rhost)
        if decision.action not in policies.ACTIONS:
            raise Failure(f"decided {decision.action!r}")


def _check_problems(exc: PolicyError) -> None:
    messages_ = exc.messages
    if not exc.problems or not all(isinstance(m, str) and m for m in messages_):
        raise Failure("a PolicyError without problems")
    if len(messages_) > MAX_SHOWN + 1:
        raise Failure(f"{len(messages_)} messages, more than {MAX_SHOWN} and a summary")
    for problem in exc.problems:
        if problem.line < 1 or problem.column < 1:
            raise Failure(f"a problem at line {problem.line}, column {problem.column}")
    # twofad sends these messages as one reply (policy check, reload): they must fit.
    reply = p.error_response(p.INVALID_POLICY, "\n".join(messages_), id=2**53 - 1)
    try:
        p.encode_response(reply)
    except p.ProtocolError:
        size = len("\n".join(messages_).encode("utf-8", "surrogatepass"))
        raise Failure(f"the problems ({size} bytes) do not fit in one reply") from None


# --- what a person types -------------------------------------------------------------


def typed_case(rng: random.Random) -> str:
    return typed.code(rng) if rng.random() < 0.7 else typed.password_and_code(rng)


def check_typed(answer: str) -> None:
    for digits in (6, 7, 8):
        password, code = login._split_code(answer, digits)
        if code is None:
            if password != answer:
                raise Failure("no code, yet the password changed")
        elif not (
            password + code == answer
            and len(code) == digits
            and code.isascii()
            and code.isdigit()
            and password
        ):
            raise Failure(f"split {answer!r} into {password!r} and {code!r}")
    # The daemon's readings of any text; the checks that compare codes run only on
    # what the protocol lets through to them.
    totp.normalize(answer)
    recovery.normalize(answer)
    try:
        p.validate_code(answer)
    except p.ProtocolError:
        return
    flow.daemon_reading(answer)


def check_arguments(arguments: list[str]) -> None:
    options = login.Options.parse(arguments)
    if not (isinstance(options.timeout, float) and math.isfinite(options.timeout)):
        raise Failure(f"timeout {options.timeout!r}")
    if not 0 < options.timeout <= 300:
        raise Failure(f"timeout {options.timeout!r} out of range")
    if not options.prompt.endswith(" "):
        raise Failure(f"prompt {options.prompt!r}")
    if options.socket is not None and not options.socket:
        raise Failure("an empty socket path")
    if any(argument not in arguments for argument in options.unknown):
        raise Failure("an unknown argument that was never given")


TARGETS = (
    Target("decoder: decode_request", "decoder", 0.5, messages.request_line, check_request),
    Target("decoder: decode_response", "decoder", 0.25, messages.reply_line, check_reply),
    Target("decoder: LineBuffer.feed", "decoder", 0.25, messages.stream, check_stream),
    Target("policy: parse", "policy", 1.0, policy_case, check_policy),
    Target("typed: a login (login.Login)", "typed", 0.4, flow.login_case, flow.run_login),
    Target("typed: codes and answers", "typed", 0.4, typed_case, check_typed),
    Target("typed: Options.parse", "typed", 0.2, typed.pam_arguments, check_arguments),
)
GROUPS = ("decoder", "policy", "typed")


def by_name(name: str) -> Target:
    for target in TARGETS:
        if target.name == name:
            return target
    raise KeyError(name)
