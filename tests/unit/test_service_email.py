"""Codes by email, through the service with an injected clock: an address proven, a
login code's lifetime, its single use, the limits on sends, and names that get no mail.

The message is what the mailer would deliver; the code is read from its body as a
person reads it from the mailbox.
"""

from __future__ import annotations

import re

import pytest

from pam_twofa import protocol as p
from support.fakes import Clock
from support.service import code, enroll, fail, use_policy
from twofad.emailing import Mail
from twofad.service import Service, ServiceError
from twofad.service.email import Outgoing

ALLOWED = "email: {allowed: true}\n"


def mailed_code(mail: Mail | None) -> str:
    assert mail is not None
    found = re.search(r"\b(\d{4}) (\d{4})\b|\bconfirm (\d{8})\b", mail.body)
    assert found is not None, mail.body
    return found.group(3) or found.group(1) + found.group(2)


def with_address(service: Service, clock: Clock, user: str = "alice") -> str:
    """Enroll `user` and give them an address, as an administrator would."""
    enroll(service, clock, user)
    service.set_email(user, f"{user}@example.org", None, own=False, needs_proof=False)
    return f"{user}@example.org"


def send(service: Service, user: str = "alice") -> Outgoing:
    return service.send_email_code(user, service="sshd", rhost="192.0.2.7")


def verify(service: Service, typed: str, user: str = "alice") -> dict[str, object]:
    return service.verify_email_code(user, typed, service="sshd", rhost="192.0.2.7")


@pytest.fixture(autouse=True)
def email_allowed(service: Service) -> None:
    use_policy(service, ALLOWED)


# --- the address ---------------------------------------------------------------------


def test_a_person_proves_an_address_with_the_code_mailed_to_it(
    service: Service, clock: Clock
) -> None:
    secret, _ = enroll(service, clock)
    with pytest.raises(ServiceError) as refused:
        service.set_email("alice", "a@example.org", None, own=True, needs_proof=True)
    assert refused.value.code == p.UNAUTHORIZED  # a new way to get codes: prove it first
    out = service.set_email(
        "alice", "a@example.org", code(secret, clock), own=True, needs_proof=True
    )
    assert out.mail is not None and out.mail.to == "a@example.org"
    assert "alice" in out.mail.subject and out.reply["pending"] == "a@example.org"
    assert service.status("alice")["email"] is None  # not before it is confirmed
    with pytest.raises(ServiceError) as wrong:
        service.confirm_email("alice", "00000000")
    assert wrong.value.code == p.INVALID_CODE and service.status("alice")["failures"] == 1
    assert service.confirm_email("alice", mailed_code(out.mail))["email"] == "a@example.org"
    assert service.status("alice")["email"] == "a@example.org"
    with pytest.raises(ServiceError):  # used once
        service.confirm_email("alice", mailed_code(out.mail))


def test_an_address_code_expires(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    out = service.set_email(
        "alice", "a@example.org", code(secret, clock), own=True, needs_proof=True
    )
    clock.advance(601)
    with pytest.raises(ServiceError) as late:
        service.confirm_email("alice", mailed_code(out.mail))
    assert late.value.code == p.EXPIRED and service.status("alice")["email"] is None


def test_an_administrator_sets_and_removes_an_address_directly(
    service: Service, clock: Clock
) -> None:
    with_address(service, clock)
    assert service.status("alice")["email"] == "alice@example.org"
    assert service.remove_email("alice")["removed"] == "alice@example.org"
    assert service.status("alice")["email"] is None


def test_undoing_a_failed_address_mail_changes_nothing(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    before = service.status("alice")
    out = service.set_email(
        "alice", "a@example.org", code(secret, clock), own=True, needs_proof=True
    )
    assert out.undo is not None
    out.undo()
    after = service.status("alice")
    assert after["email_pending"] is None and after["email"] is None
    with pytest.raises(ServiceError) as nothing:
        service.confirm_email("alice", mailed_code(out.mail))
    assert nothing.value.code == p.NOT_ENROLLED  # no address waits for its code
    assert service.status("alice")["failures"] == before["failures"]


# --- a code at the prompt ------------------------------------------------------------


def test_a_mailed_code_logs_in_once(service: Service, clock: Clock) -> None:
    with_address(service, clock)
    out = send(service)
    assert out.reply["result"] == p.SENT and out.mail is not None
    assert out.mail.to == "alice@example.org"
    assert "192.0.2.7" in out.mail.body and "sshd" in out.mail.body  # from where, how
    typed = mailed_code(out.mail)
    assert verify(service, typed) == {"result": p.ACCEPTED, "method": "email"}
    assert verify(service, typed)["result"] == p.REJECTED  # once


def test_a_mailed_code_expires_after_its_lifetime(service: Service, clock: Clock) -> None:
    with_address(service, clock)
    typed = mailed_code(send(service).mail)
    clock.advance(600)
    assert verify(service, typed)["result"] == p.REJECTED
    assert service.status("alice")["failures"] == 1


def test_a_new_code_replaces_the_old_one(service: Service, clock: Clock) -> None:
    with_address(service, clock)
    first = mailed_code(send(service).mail)
    second = mailed_code(send(service).mail)
    assert verify(service, first)["result"] == p.REJECTED
    assert verify(service, second)["result"] == p.ACCEPTED


def test_a_wrong_mailed_code_counts_toward_the_lock(service: Service, clock: Clock) -> None:
    with_address(service, clock)
    send(service)
    for _ in range(5):
        verify(service, "12345678")
    status = service.status("alice")
    assert status["failures"] == 5 and status["locked"]
    with pytest.raises(ServiceError) as locked:
        send(service)  # a locked account gets no mail
    assert locked.value.code == p.LOCKED


def test_sends_are_limited_per_hour_and_per_day(service: Service, clock: Clock) -> None:
    use_policy(service, "email: {allowed: true, per_hour: 2, per_day: 3}\n")
    with_address(service, clock)
    send(service)
    send(service)
    with pytest.raises(ServiceError) as hourly:
        send(service)
    assert hourly.value.code == p.RATE_LIMITED
    clock.advance(3601)
    send(service)
    with pytest.raises(ServiceError) as daily:
        send(service)
    assert daily.value.code == p.RATE_LIMITED and "minutes" in daily.value.message
    clock.advance(86400)
    assert send(service).mail is not None


def test_a_failed_delivery_undone_does_not_count_and_leaves_no_code(
    service: Service, clock: Clock
) -> None:
    use_policy(service, "email: {allowed: true, per_hour: 1, per_day: 1}\n")
    with_address(service, clock)
    failed = send(service)
    assert failed.undo is not None
    failed.undo()
    assert verify(service, mailed_code(failed.mail))["result"] == p.REJECTED
    assert send(service).mail is not None  # the failed one was not counted


# --- names that get no mail ----------------------------------------------------------


def test_names_without_an_address_are_answered_alike_and_sent_nothing(
    service: Service, clock: Clock
) -> None:
    with_address(service, clock)
    enroll(service, clock, "bob")  # an account, but no address
    real = send(service, "alice")
    for name in ("bob", "nobody"):
        pretended = send(service, name)
        assert pretended.mail is None and pretended.undo is None
        assert pretended.reply.keys() == real.reply.keys()
        assert pretended.reply["result"] == real.reply["result"]


def test_the_limit_holds_for_names_that_get_no_mail(service: Service, clock: Clock) -> None:
    use_policy(service, "email: {allowed: true, per_hour: 2, per_day: 5}\n")
    for name in ("nobody", "bob"):
        if name == "bob":
            enroll(service, clock, "bob")
        send(service, name)
        send(service, name)
        with pytest.raises(ServiceError) as limited:
            send(service, name)
        assert limited.value.code == p.RATE_LIMITED


def test_a_code_typed_for_a_name_with_no_address_is_a_failure(
    service: Service, clock: Clock
) -> None:
    enroll(service, clock, "bob")
    send(service, "bob")
    assert verify(service, "12345678", "bob")["result"] == p.REJECTED
    assert service.status("bob")["failures"] == 1
    assert verify(service, "12345678", "nobody")["result"] == p.REJECTED


# --- the policy decides --------------------------------------------------------------


def test_nothing_is_sent_where_the_policy_does_not_allow_it(service: Service, clock: Clock) -> None:
    with_address(service, clock)
    use_policy(service, "")  # off by default
    with pytest.raises(ServiceError) as off:
        send(service)
    assert off.value.code == p.EMAIL_NOT_ALLOWED
    assert service.check("alice", "sshd", "192.0.2.7")["email"] is False


def test_a_rule_can_keep_administrators_from_codes_by_email(service: Service, clock: Clock) -> None:
    use_policy(
        service,
        "email: {allowed: true}\n"
        "rules:\n  - {name: admins, groups: [sudo], action: required, email: false}\n",
    )
    with_address(service, clock, "alice")  # in sudo
    with_address(service, clock, "bob")
    assert service.check("alice", "sshd", None)["email"] is False
    assert service.explain("alice", "sshd", None)["email_allowed"] is False
    with pytest.raises(ServiceError) as refused:
        send(service, "alice")
    assert refused.value.code == p.EMAIL_NOT_ALLOWED
    assert service.check("bob", "sshd", None)["email"] is True
    assert send(service, "bob").mail is not None


def test_a_mailed_code_is_refused_once_the_policy_no_longer_allows_it(
    service: Service, clock: Clock
) -> None:
    with_address(service, clock)
    typed = mailed_code(send(service).mail)
    use_policy(service, "")
    with pytest.raises(ServiceError) as off:
        verify(service, typed)
    assert off.value.code == p.EMAIL_NOT_ALLOWED


def test_a_totp_code_still_works_beside_email(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    service.set_email("alice", "alice@example.org", None, own=False, needs_proof=False)
    send(service)
    assert service.verify("alice", code(secret, clock))["result"] == p.ACCEPTED
    fail(service, "alice", 1)
