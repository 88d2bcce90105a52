from __future__ import annotations

import pytest

from pam_twofa import protocol as p
from support.fakes import Accounts
from twofad.access import ADMIN, ANYONE, ROOT, SELF, AccessDenied, Peer, authorize

ADMINS = frozenset({"sudo"})


def _role(accounts: Accounts, uid: int, op: str, **fields: str) -> str:
    return authorize(Peer(1, uid, uid), p.validate_request(op, fields), accounts, ADMINS)


def test_root_may_do_everything(accounts: Accounts) -> None:
    for op in p.OPERATIONS:
        fields = {
            "user": "bob",
            "code": "1",
            "code1": "1",
            "code2": "2",
            "text": "x",
            "secret": "A" * 32,
        }
        schema = p.OPERATIONS[op]
        assert _role(accounts, 0, op, **{k: v for k, v in fields.items() if k in schema}) == ROOT


def test_anyone_may_ping(accounts: Accounts) -> None:
    assert _role(accounts, 4242, "ping") == ANYONE


@pytest.mark.parametrize(
    "op",
    [
        "check",
        "enroll.begin",
        "enroll.confirm",
        "status",
        "disable",
        "recovery.regenerate",
        "secret.show",
        "policy.explain",
    ],
)
def test_a_user_acts_on_their_own_account(accounts: Accounts, op: str) -> None:
    fields = (
        {"user": "bob", "code": "1"} if op in ("enroll.confirm", "secret.show") else {"user": "bob"}
    )
    assert _role(accounts, 1001, op, **fields) == SELF


@pytest.mark.parametrize("op", ["status", "enroll.begin", "disable", "unlock"])
def test_a_user_may_not_touch_another_account(accounts: Accounts, op: str) -> None:
    with pytest.raises(AccessDenied):
        _role(accounts, 1001, op, user="alice")


def test_verify_is_for_root_alone(accounts: Accounts) -> None:
    for uid in (1000, 1001):  # an administrator and a user, on their own accounts too
        with pytest.raises(AccessDenied, match="root"):
            _role(accounts, uid, "verify", user="bob", code="123456")


def test_admin_group_members_manage_other_accounts(accounts: Accounts) -> None:
    assert _role(accounts, 1000, "status", user="bob") == ADMIN
    assert _role(accounts, 1000, "unlock", user="bob") == ADMIN
    assert _role(accounts, 1000, "list") == ADMIN
    with pytest.raises(AccessDenied, match="administrator"):
        _role(accounts, 1001, "list")


def test_unknown_uid_is_nobody(accounts: Accounts) -> None:
    with pytest.raises(AccessDenied):
        _role(accounts, 5555, "status", user="bob")
