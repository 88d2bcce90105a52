"""One error base: every refusal carries a stable code and a message, and says whose fault.

The server answers any TwofaError with its code, so each kind of refusal raised in the
daemon, and each error a client reads back, must be one; and a code is either the
peer's (asking again unchanged gets the same answer) or ours (the daemon could not
answer, so the hook's fail= choice applies).
"""

from __future__ import annotations

import pytest

from pam_twofa import errors
from pam_twofa import protocol as p
from pam_twofa.client import RequestFailed
from twofad.access import AccessDenied
from twofad.policy_file import PolicyError, parse
from twofad.service import ServiceError
from twofad.store import StoreError


def test_every_code_has_a_fault_and_only_the_daemons_own_failures_are_ours() -> None:
    # every code the module names has a fault: a new code without one fails here
    named = {
        value
        for name, value in vars(errors).items()
        if name.isupper() and isinstance(value, str) and value not in (errors.PEER, errors.OURS)
    }
    assert named == set(errors.FAULT_OF)
    ours = {code for code, fault in errors.FAULT_OF.items() if fault == errors.OURS}
    assert ours == {errors.INTERNAL, errors.BUSY, errors.UNAVAILABLE, errors.NOT_SENT}
    assert set(errors.FAULT_OF.values()) == {errors.PEER, errors.OURS}


def test_a_code_this_side_does_not_know_is_taken_as_ours() -> None:
    # A newer daemon's new code must make the hook fall back on fail=, not pass.
    assert errors.TwofaError("from_the_future", "?").ours


@pytest.mark.parametrize(
    ("error", "code", "fault"),
    [
        (p.BadRequest("user must be a string"), p.BAD_REQUEST, errors.PEER),
        (AccessDenied("only root may ask"), p.UNAUTHORIZED, errors.PEER),
        (ServiceError(p.LOCKED, "too many failed attempts"), p.LOCKED, errors.PEER),
        (StoreError("the database is newer than this twofad"), p.INTERNAL, errors.OURS),
        (RequestFailed(p.BUSY, "too many connections"), p.BUSY, errors.OURS),
        (RequestFailed(p.INVALID_CODE, "wrong"), p.INVALID_CODE, errors.PEER),
    ],
)
def test_each_kind_of_refusal_is_a_twofa_error_with_its_code(
    error: errors.TwofaError, code: str, fault: str
) -> None:
    assert isinstance(error, errors.TwofaError)
    assert (error.code, error.fault) == (code, fault)
    assert error.message and str(error).startswith(error.message)


def test_a_policy_error_is_invalid_policy_with_every_problem_in_its_message() -> None:
    with pytest.raises(PolicyError) as caught:
        parse("rules:\n  - name: x\n    gruops: [a]\n    action: required\n", "p.yaml")
    assert caught.value.code == p.INVALID_POLICY and not caught.value.ours
    assert caught.value.message == "\n".join(caught.value.messages)
    assert "p.yaml:3" in caught.value.message


def test_a_malformed_message_and_a_bad_field_are_both_protocol_errors() -> None:
    with pytest.raises(p.ProtocolError) as framing:
        p.decode_request(b"[]")
    with pytest.raises(p.ProtocolError) as field:
        p.validate_user("-rf")
    assert framing.value.code == field.value.code == p.BAD_REQUEST
