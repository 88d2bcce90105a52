"""One account, one state, where the directory finds names without regard to case.

Requests go through Server.dispatch, as they would from the socket, to a service whose
directory is FoldingAccounts: `ALICE` and `Alice` are the account `alice`.
"""

from __future__ import annotations

import grp
import io
import pwd
from typing import Any

import pytest

from pam_twofa import protocol as p
from support.fakes import Accounts, Clock, FoldingAccounts
from support.service import code
from twofad import directory as directory_module
from twofad import names, totp
from twofad.access import Peer
from twofad.audit import Audit
from twofad.directory import SystemDirectory
from twofad.keys import Keys
from twofad.policy_file import parse
from twofad.server import Server
from twofad.service import Service
from twofad.store import Store

ROOT = Peer(1, 0, 0)
ALICE = Peer(2, 1000, 1000)
SPELLINGS = ("ALICE", "alice", "Alice")
POLICY = (
    "default: optional\n"
    "rules:\n"
    "  - name: alice\n"
    "    users: [alice]\n"
    "    action: required\n"
    "  - name: ops\n"
    "    groups: [ops]\n"
    "    action: required\n"
)


@pytest.fixture
def folding() -> FoldingAccounts:
    directory = FoldingAccounts()
    directory.add("root", 0, "root", "sudo")
    directory.add("alice", 1000, "alice")
    directory.add("carol", 1002, "carol", "ops")
    return directory


@pytest.fixture
def server(store: Store, keys: Keys, clock: Clock, folding: FoldingAccounts) -> Server:
    service = Service(store, keys, parse(POLICY, "policy.yaml"), clock, folding)
    return Server(service, Audit(stream=io.StringIO()))


def ask(server: Server, peer: Peer, op: str, **fields: Any) -> p.Response:
    return server.dispatch(peer, p.validate_request(op, fields))


def ok(server: Server, peer: Peer, op: str, **fields: Any) -> dict[str, Any]:
    reply = ask(server, peer, op, **fields)
    assert reply.ok, (reply.code, reply.message)
    return reply.data


def enroll(server: Server, clock: Clock, user: str) -> str:
    secret = ok(server, ROOT, "enroll.begin", user=user)["secret"]
    step = totp.time_step(clock.now, 30)
    ok(
        server,
        ROOT,
        "enroll.confirm",
        user=user,
        code=totp.code_at(secret, totp.TotpParams(), step),
    )
    clock.advance(30)
    return str(secret)


# --- the name itself ------------------------------------------------------------------


def test_a_request_names_the_account_however_it_was_typed(folding: FoldingAccounts) -> None:
    typed = p.validate_request("status", {"user": "ALICE"}, 7)
    resolved = names.resolve(typed, folding)
    assert (resolved.op, resolved.fields, resolved.id) == ("status", {"user": "alice"}, 7)


def test_a_name_nss_does_not_know_stays_as_typed(folding: FoldingAccounts) -> None:
    typed = p.validate_request("check", {"user": "NoSuchUser", "service": "sshd"})
    assert names.resolve(typed, folding) is typed


def test_a_request_about_no_one_is_left_alone(folding: FoldingAccounts) -> None:
    ping = p.validate_request("ping", {})
    assert names.resolve(ping, folding) is ping


def test_a_case_sensitive_directory_keeps_names_apart() -> None:
    exact = Accounts()
    exact.add("alice", 1000)
    assert exact.canonical("ALICE") == "ALICE" and exact.uid_of("ALICE") is None


def test_the_systems_directory_answers_with_the_accounts_own_name() -> None:
    directory = SystemDirectory()
    root = pwd.getpwuid(0).pw_name
    assert directory.canonical(root) == root
    assert directory.canonical("no-such-user-twofa") == "no-such-user-twofa"


def test_group_members_are_named_as_their_accounts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A directory group may list `ALICE` for the account `alice` (the lock-out guard
    looks the administrators' rows up by these names)."""
    entry = pwd.struct_passwd(("alice", "x", 1000, 1000, "", "/home/alice", "/bin/sh"))
    found = {"alice": entry, "ALICE": entry}

    def getpwnam(name: str) -> pwd.struct_passwd:
        return found[name]

    monkeypatch.setattr(directory_module.pwd, "getpwnam", getpwnam)
    monkeypatch.setattr(directory_module.pwd, "getpwall", lambda: [entry])
    monkeypatch.setattr(
        directory_module.grp,
        "getgrnam",
        lambda name: grp.struct_group(("admins", "x", 4000, ["ALICE", "Gone"])),
    )
    assert SystemDirectory().members_of("admins") == {"alice", "Gone"}


# --- one state ----------------------------------------------------------------------


def test_every_spelling_must_give_the_code(server: Server, clock: Clock) -> None:
    enroll(server, clock, "alice")
    for spelling in SPELLINGS:
        checked = ok(server, ROOT, "check", user=spelling, service="sshd")
        assert (checked["user"], checked["action"]) == ("alice", p.PROMPT)


def test_failures_in_every_spelling_count_toward_one_lock_out(server: Server, clock: Clock) -> None:
    secret = enroll(server, clock, "alice")
    for attempt in range(5):
        user = SPELLINGS[attempt % len(SPELLINGS)]
        assert ok(server, ROOT, "verify", user=user, code="000000")["result"] == p.REJECTED
    for spelling in SPELLINGS:
        assert ok(server, ROOT, "check", user=spelling)["action"] == p.LOCKED
        assert ok(server, ROOT, "verify", user=spelling, code=code(secret, clock))["result"] == (
            p.LOCKED
        )
    status = ok(server, ROOT, "status", user="Alice")
    assert (status["user"], status["failures"], status["locked"]) == ("alice", 5, True)
    assert ok(server, ROOT, "unlock", user="ALICE") == {"user": "alice", "unlocked": True}
    assert ok(server, ROOT, "verify", user="alice", code=code(secret, clock))["result"] == (
        p.ACCEPTED
    )


def test_a_code_is_spent_for_every_spelling(server: Server, clock: Clock) -> None:
    secret = enroll(server, clock, "alice")
    typed = code(secret, clock)
    assert ok(server, ROOT, "verify", user="ALICE", code=typed)["result"] == p.ACCEPTED
    assert ok(server, ROOT, "verify", user="alice", code=typed)["result"] == p.REPLAYED


def test_no_second_enrollment_for_another_spelling(server: Server, clock: Clock) -> None:
    enroll(server, clock, "alice")
    again = ask(server, ROOT, "enroll.begin", user="ALICE")
    assert not again.ok and again.code == p.ALREADY_ENROLLED
    listed = [entry["user"] for entry in ok(server, ROOT, "list")["users"]]
    assert [name for name in listed if name.casefold() == "alice"] == ["alice"]


def test_an_enrollment_begun_in_capitals_is_the_accounts(server: Server, clock: Clock) -> None:
    begun = ok(server, ROOT, "enroll.begin", user="ALICE")
    assert begun["user"] == "alice" and ":alice?" in begun["uri"]
    assert ok(server, ROOT, "status", user="alice")["enrollment"] == "pending"


def test_policy_users_and_groups_apply_to_every_spelling(server: Server) -> None:
    for user, rule in (("ALICE", "alice"), ("CAROL", "ops"), ("Carol", "ops")):
        explained = ok(server, ROOT, "policy.explain", user=user, service="sshd")
        assert (explained["user"], explained["action"], explained["rule"]) == (
            user.lower(),
            "required",
            rule,
        )
        assert explained["known"] is True
        assert ok(server, ROOT, "check", user=user, service="sshd")["action"] == p.ENROLL


def test_the_callers_own_account_in_any_spelling(server: Server, clock: Clock) -> None:
    enroll(server, clock, "alice")
    status = ok(server, ALICE, "status", user="ALICE")
    assert (status["user"], status["enrollment"]) == ("alice", "active")
    # Acting on it as its owner, not as an administrator: the policy that requires it
    # still holds, and a code is still asked for.
    refused = ask(server, ALICE, "disable", user="Alice")
    assert not refused.ok and refused.code == p.UNAUTHORIZED
    assert "the policy requires two-step verification for alice" in refused.message
    renewal = ask(server, ALICE, "enroll.begin", user="ALICE", replace=True)
    assert not renewal.ok and renewal.code == p.UNAUTHORIZED
    assert ok(server, ROOT, "status", user="alice")["enrollment"] == "active"


def test_another_users_account_in_capitals_is_still_anothers(server: Server) -> None:
    refused = ask(server, ALICE, "status", user="CAROL")
    assert not refused.ok and refused.code == p.UNAUTHORIZED


def test_an_unknown_name_is_prompted_and_named_as_typed(server: Server) -> None:
    checked = ok(server, ROOT, "check", user="NoSuchUser", service="sshd")
    assert (checked["user"], checked["action"]) == ("NoSuchUser", p.PROMPT)
    verified = ok(server, ROOT, "verify", user="NoSuchUser", code="123456")
    assert (verified["user"], verified["result"]) == ("NoSuchUser", p.REJECTED)


# --- the lookups, kept a few seconds --------------------------------------------------


def test_a_names_account_is_looked_up_once_in_a_while_and_the_names_kept_are_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from twofad import directory as module

    asked: list[str] = []
    real = pwd.getpwnam

    def counting(name: str) -> pwd.struct_passwd:
        asked.append(name)
        return real(name)

    now = [100.0]
    monkeypatch.setattr(module.pwd, "getpwnam", counting)
    recent = module._RecentAccounts(clock=lambda: now[0])
    for _ in range(50):
        assert recent.lookup("root") is not None and recent.lookup("no-such-user-x") is None
    assert asked == ["root", "no-such-user-x"]  # a burst: one lookup a name
    now[0] += module.NAME_TTL + 0.1
    recent.lookup("root")
    assert asked[-1] == "root"  # then asked again: a change shows within NAME_TTL
    for i in range(module.NAMES_KEPT + 100):
        recent.lookup(f"invented{i}")
    assert len(recent._kept) == module.NAMES_KEPT
