"""Names with no account are answered as accounts are: prompted, rejected, locked out."""

from __future__ import annotations

from pam_twofa import protocol as p
from support.fakes import Clock
from support.service import enroll, use_policy
from twofad.service import Service
from twofad.service.decoys import UNKNOWN_LOCKS_KEPT


def test_unknown_user_is_rejected_not_revealed(service: Service) -> None:
    assert service.check("mallory")["action"] == p.PROMPT
    assert service.verify("mallory", "123456") == {"result": p.REJECTED}


def test_unknown_users_are_prompted_unless_exempt(service: Service) -> None:
    use_policy(service, "default: required\nrules:\n  - {from: [10.0.0.0/8], action: exempt}\n")
    assert service.check("mallory", "sshd", "203.0.113.1")["action"] == p.PROMPT
    assert service.check("mallory", "sshd", "10.1.1.1")["action"] == p.SKIP
    use_policy(service, "default: optional\n")
    assert service.check("mallory", "sshd")["action"] == p.PROMPT


def test_an_unknown_name_locks_out_like_an_account(service: Service, clock: Clock) -> None:
    """Lock-out replies must not tell a name with no account from a real one."""
    enroll(service, clock)
    for _ in range(4):
        assert service.verify("alice", "000000")["result"] == p.REJECTED
        assert service.verify("mallory", "000000")["result"] == p.REJECTED
    real = service.verify("alice", "000000")
    fake = service.verify("mallory", "000000")
    assert real == fake
    assert fake["retry_after"] == 30 and fake["hard_locked"] is False
    assert service.check("alice") == service.check("mallory")
    assert service.check("mallory")["action"] == p.LOCKED
    assert service.verify("mallory", "123456") == service.verify("alice", "123456")
    clock.advance(31)
    assert service.check("mallory")["action"] == p.PROMPT
    assert service.verify("mallory", "000000")["retry_after"] == 60


def test_unknown_names_remembered_are_bounded(service: Service) -> None:
    for index in range(UNKNOWN_LOCKS_KEPT + 50):
        service.verify(f"nobody{index}", "000000")
    assert len(service.context.decoys.locks) == UNKNOWN_LOCKS_KEPT
    assert "nobody0" not in service.context.decoys.locks
