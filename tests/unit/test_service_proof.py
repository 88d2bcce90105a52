"""A person acting on their own account proves it with a current code first."""

from __future__ import annotations

import pytest

from pam_twofa import protocol as p
from support.fakes import Clock
from support.service import code, enroll, fail
from twofad.service import Service, ServiceError


def test_regenerate_for_oneself_needs_a_current_code(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    with pytest.raises(ServiceError) as refused:
        service.regenerate_recovery_codes("alice", needs_proof=True)
    assert refused.value.code == p.UNAUTHORIZED
    with pytest.raises(ServiceError) as wrong:
        service.regenerate_recovery_codes("alice", "000000", needs_proof=True)
    assert wrong.value.code == p.INVALID_CODE
    assert service.status("alice")["failures"] == 1  # a wrong proof counts as a failure
    assert service.regenerate_recovery_codes("alice", code(secret, clock), needs_proof=True)


def test_self_disable_needs_a_code_once_active(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    with pytest.raises(ServiceError):
        service.disable("alice", needs_proof=True)
    assert service.status("alice")["enrollment"] == "active"
    service.disable("alice", code(secret, clock), needs_proof=True)
    assert service.status("alice")["enrollment"] == "none"


def test_self_disable_of_a_pending_setup_needs_no_code(service: Service) -> None:
    service.enroll_begin("alice")
    service.disable("alice", needs_proof=True)
    assert service.status("alice")["enrollment"] == "none"


def test_a_user_renewing_their_own_key_needs_a_code(service: Service, clock: Clock) -> None:
    old, _ = enroll(service, clock, "bob")
    with pytest.raises(ServiceError) as refused:
        service.enroll_begin("bob", replace=True, needs_proof=True)
    assert refused.value.code == p.UNAUTHORIZED
    assert service.enroll_begin("bob", replace=True, code=code(old, clock), needs_proof=True)


def test_show_secret_needs_a_current_code_and_gives_the_same_key(
    service: Service, clock: Clock
) -> None:
    secret, _ = enroll(service, clock, "bob")
    with pytest.raises(ServiceError) as wrong:
        service.show_secret("bob", "000000")
    assert wrong.value.code == p.INVALID_CODE
    shown = service.show_secret("bob", code(secret, clock))
    assert shown["secret"] == secret and f"secret={secret}" in shown["uri"] and "█" in shown["qr"]


def test_a_proof_while_locked_out_is_refused_and_changes_nothing(
    service: Service, clock: Clock
) -> None:
    secret, codes = enroll(service, clock)
    fail(service, "alice", 5)
    with pytest.raises(ServiceError) as refused:
        service.regenerate_recovery_codes("alice", code(secret, clock), needs_proof=True)
    assert refused.value.code == p.LOCKED
    assert service.status("alice")["failures"] == 5  # not checked, so not counted
    clock.advance(30)
    assert service.verify("alice", codes[0])["result"] == p.ACCEPTED  # the old codes stay


def test_a_proof_for_a_name_with_no_account_fails_and_locks_like_one(
    service: Service, clock: Clock
) -> None:
    enroll(service, clock)
    for _ in range(5):
        for user in ("alice", "mallory"):
            with pytest.raises(ServiceError) as refused:
                service.show_secret(user, "000000")
            assert refused.value.code == p.INVALID_CODE
    assert service.verify("mallory", "000000") == service.verify("alice", "000000")
    assert service.check("mallory")["action"] == p.LOCKED
