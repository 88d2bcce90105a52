"""The access table: for every operation and every kind of caller, the exact outcome.

The outcomes expected are written out below, not read from twofad.access.RULES: a test
derived from the table would agree with any table, a wrong one too.
"""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from pam_twofa import protocol as p
from support.fakes import Accounts
from twofad import access
from twofad.access import (
    ACCOUNT,
    ADMIN,
    ANYONE,
    NEVER,
    ON_OWN,
    ROOT,
    SELF,
    AccessDenied,
    AccessTableError,
    Grant,
    Peer,
    Rule,
    authorize,
)
from twofad.audit import Audit
from twofad.server import Server
from twofad.service import Service

ADMINS = frozenset({"sudo"})

# Who asks (uid) about which account (where the operation names one).  alice (1000) is
# in sudo, bob (1001) and carol (1002) are not, and no account has uid 5555.
CALLERS = {
    "root": (0, "bob"),
    "admin on another": (1000, "bob"),
    "admin on own account": (1000, "alice"),
    "the account itself": (1001, "bob"),
    "another user": (1002, "bob"),
    "unknown uid": (5555, "bob"),
}

# Outcomes: a role, and whether a current code must prove the request; or a refusal,
# with a word its message must hold.
R, Rc = Grant(ROOT, False), Grant(ROOT, True)
A, Ac = Grant(ADMIN, False), Grant(ADMIN, True)
S, Sc = Grant(SELF, False), Grant(SELF, True)
E = Grant(ANYONE, False)
NO_ROOT = "reserved to root"
NO_ADMIN = "needs an administrator"
NO_OWN = "only on your own account"

# fmt: off
EXPECTED: dict[str, tuple[Grant | str, ...]] = {
    #                       root  admin on  admin on  the account  another   unknown
    #                             another   own       itself       user      uid
    "ping":                 (R,   E,        E,        E,           E,        E),
    "check":                (R,   A,        S,        S,           NO_OWN,   NO_OWN),
    "verify":               (R,   NO_ROOT,  NO_ROOT,  NO_ROOT,     NO_ROOT,  NO_ROOT),
    "enroll.begin":         (R,   A,        Sc,       Sc,          NO_OWN,   NO_OWN),
    "secret.show":          (Rc,  Ac,       Sc,       Sc,          NO_OWN,   NO_OWN),
    "enroll.confirm":       (R,   A,        S,        S,           NO_OWN,   NO_OWN),
    "status":               (R,   A,        S,        S,           NO_OWN,   NO_OWN),
    "list":                 (R,   A,        A,        NO_ADMIN,    NO_ADMIN, NO_ADMIN),
    "disable":              (R,   A,        Sc,       Sc,          NO_OWN,   NO_OWN),
    "unlock":               (R,   A,        A,        NO_ADMIN,    NO_ADMIN, NO_ADMIN),
    "recovery.regenerate":  (R,   A,        Sc,       Sc,          NO_OWN,   NO_OWN),
    "resync":               (R,   A,        S,        S,           NO_OWN,   NO_OWN),
    "reload":               (R,   A,        A,        NO_ADMIN,    NO_ADMIN, NO_ADMIN),
    "policy.check":         (R,   A,        A,        NO_ADMIN,    NO_ADMIN, NO_ADMIN),
    "policy.explain":       (R,   A,        S,        S,           NO_OWN,   NO_OWN),
    "import":               (R,   A,        A,        NO_ADMIN,    NO_ADMIN, NO_ADMIN),
    "diagnose":             (R,   A,        A,        NO_ADMIN,    NO_ADMIN, NO_ADMIN),
    "keys.reseal":          (R,   A,        A,        NO_ADMIN,    NO_ADMIN, NO_ADMIN),
    "device.list":          (R,   A,        S,        S,           NO_OWN,   NO_OWN),
    "device.add":           (R,   A,        Sc,       Sc,          NO_OWN,   NO_OWN),
    "device.rename":        (R,   A,        S,        S,           NO_OWN,   NO_OWN),
    "device.remove":        (R,   A,        Sc,       Sc,          NO_OWN,   NO_OWN),
    "email.set":            (R,   A,        Sc,       Sc,          NO_OWN,   NO_OWN),
    "email.confirm":        (R,   A,        S,        S,           NO_OWN,   NO_OWN),
    "email.remove":         (R,   A,        S,        S,           NO_OWN,   NO_OWN),
    "email.send":           (R,   NO_ROOT,  NO_ROOT,  NO_ROOT,     NO_ROOT,  NO_ROOT),
    "email.test":           (R,   A,        A,        NO_ADMIN,    NO_ADMIN, NO_ADMIN),
}
# fmt: on

# A value for each field an operation may require, so every request is a valid one.
SAMPLE = {
    "code": "123456",
    "code1": "123456",
    "code2": "654321",
    "text": "{}",
    "secret": "A" * 32,
    "device": "tablet",
    "new_name": "old tablet",
    "address": "alice@example.org",
}


@pytest.fixture
def people(accounts: Accounts) -> Accounts:
    accounts.add("carol", 1002, "carol")
    return accounts


def _request(op: str, user: str) -> p.Request:
    schema = p.OPERATIONS[op]
    fields = {name: value for name, value in SAMPLE.items() if schema.get(name, (0, False))[1]}
    for name in p.NEEDS_ONE_OF.get(op, ())[:1]:  # one of these is needed: the first
        fields[name] = SAMPLE[name]
    if "user" in schema:
        fields["user"] = user
    return p.validate_request(op, fields)


CASES = [
    pytest.param(op, caller, outcome, id=f"{op}, {caller}")
    for op, outcomes in EXPECTED.items()
    for caller, outcome in zip(CALLERS, outcomes, strict=True)
]


@pytest.mark.parametrize(("op", "caller", "expected"), CASES)
def test_each_operation_and_caller(
    people: Accounts, op: str, caller: str, expected: object
) -> None:
    uid, user = CALLERS[caller]
    request = _request(op, user)
    if isinstance(expected, Grant):
        assert authorize(Peer(1, uid, uid), request, people, ADMINS) == expected
    else:
        with pytest.raises(AccessDenied) as refused:
            authorize(Peer(1, uid, uid), request, people, ADMINS)
        assert refused.value.code == p.UNAUTHORIZED
        assert str(expected) in refused.value.message


def test_every_operation_has_a_row_and_an_expected_outcome() -> None:
    assert set(access.RULES) == set(p.OPERATIONS)
    assert set(EXPECTED) == set(p.OPERATIONS)


# --- a table that misses an operation stops the daemon at start-up ---------------------


def test_a_server_will_not_start_with_an_operation_without_a_row(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(access.RULES, "disable")
    with pytest.raises(AccessTableError, match="disable: no row"):
        Server(service, Audit(stream=io.StringIO()))


def test_a_new_operation_without_a_row_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(p.OPERATIONS, "frobnicate", {"user": (p.validate_user, True)})
    with pytest.raises(AccessTableError, match="frobnicate: no row"):
        access.check_table()


def test_the_daemon_module_will_not_import_without_a_row_even_under_python_O() -> None:
    """A real exception, not an assert: -O, which drops asserts, does not drop it."""
    program = (
        "from pam_twofa import protocol\n"
        "protocol.OPERATIONS['frobnicate'] = {}\n"
        "import twofad.access\n"
    )
    done = subprocess.run(
        [sys.executable, "-O", "-c", program], capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "AccessTableError: access table: frobnicate: no row" in done.stderr


@pytest.mark.parametrize(
    ("op", "rule", "problem"),
    [
        ("status", Rule(frozenset({SELF, ADMIN}), NEVER), "must include root"),
        ("unlock", Rule(frozenset({ROOT, ADMIN}), ON_OWN), "the account may not call it"),
        ("status", Rule(ACCOUNT, ON_OWN), "cannot carry one"),
        ("status", Rule(ACCOUNT, "sometimes"), "unknown proof"),
    ],
)
def test_an_unsound_row_is_refused(
    monkeypatch: pytest.MonkeyPatch, op: str, rule: Rule, problem: str
) -> None:
    monkeypatch.setitem(access.RULES, op, rule)
    with pytest.raises(AccessTableError, match=problem):
        access.check_table()
