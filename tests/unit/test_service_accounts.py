"""One account's state and what is done to it: status, listing, explain, disable,
unlock, new recovery codes."""

from __future__ import annotations

import pytest

from pam_twofa import protocol as p
from support.fakes import Clock
from support.service import code, enroll, fail, use_policy
from twofad.policy_file import parse
from twofad.service import Service, ServiceError
from twofad.store import Conflict

# --- status, listing, explain -----------------------------------------------------


def test_status_reports_lock_and_counts(service: Service, clock: Clock) -> None:
    enroll(service, clock)
    fail(service, "alice", 5)
    clock.advance(10)
    status = service.status("alice")
    assert (status["state"], status["enrollment"]) == ("locked", "active")
    assert status["locked"] is True and status["retry_after"] == 20
    assert status["recovery_codes_left"] == 8
    [phone] = status["devices"]
    assert (phone["name"], phone["state"]) == ("phone", "active")
    assert (phone["algorithm"], phone["digits"], phone["period"]) == ("SHA1", 6, 30)
    assert "secret" not in phone  # a listing never shows a key
    assert [s["user"] for s in service.list_users()["users"]] == ["alice"]


def test_status_states_follow_the_policy(service: Service, clock: Clock) -> None:
    use_policy(service, "rules:\n  - {name: admins, groups: [sudo], action: required}\n")
    enroll(service, clock, "bob")
    listed = {s["user"]: (s["state"], s["rule"]) for s in service.list_users()["users"]}
    # alice is required (sudo) and not set up; bob enrolled; root neither required nor enrolled.
    assert listed == {"alice": ("incomplete", "admins"), "bob": ("enabled", "default")}
    for _ in range(5):
        service.verify("bob", "000000")
    assert service.status("bob")["state"] == "locked"
    assert service.status("root")["state"] == "disabled"


def test_explain_names_the_rule_and_its_line(service: Service, clock: Clock) -> None:
    use_policy(
        service,
        "default: optional\nrules:\n  - name: admins\n    groups: [sudo]\n    action: required\n",
    )
    explained = service.explain("alice", "sshd", "203.0.113.1")
    assert explained["action"] == "required" and explained["rule"] == "admins"
    assert explained["line"] == "policy.yaml:3" and explained["state"] == "incomplete"
    enroll(service, clock, "alice")
    assert service.explain("alice", "sshd")["state"] == "enabled"
    assert service.explain("bob", "sshd") | {"rhost": None} == {
        "user": "bob",
        "service": "sshd",
        "rhost": None,
        "action": "optional",
        "rule": "default",
        "line": None,
        "email_allowed": False,
        "state": "disabled",
        "known": True,
    }


# --- disable ----------------------------------------------------------------------


def test_disable_removes_secret_and_codes(service: Service, clock: Clock) -> None:
    _, codes = enroll(service, clock)
    service.disable("alice")
    assert service.status("alice")["enrollment"] == "none"
    assert service.check("alice")["action"] == p.SKIP
    assert service.verify("alice", codes[0])["result"] == p.NOT_ENROLLED


def test_disable_unknown_is_an_error(service: Service) -> None:
    with pytest.raises(ServiceError) as none:
        service.disable("bob")
    assert none.value.code == p.NOT_ENROLLED
    with pytest.raises(ServiceError) as unknown:
        service.disable("mallory")
    assert unknown.value.code == p.UNKNOWN_USER


def test_a_user_cannot_switch_off_what_the_policy_requires(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock, "bob")
    service.policy = parse("rules:\n  - {name: everyone-bob, users: [bob], action: required}\n")
    with pytest.raises(ServiceError) as refused:
        service.disable("bob", code(secret, clock), needs_proof=True)
    assert refused.value.code == p.UNAUTHORIZED and "everyone-bob" in refused.value.message
    service.disable("bob")  # an administrator may
    assert service.status("bob")["enrollment"] == "none"


@pytest.mark.parametrize(
    "rules",
    [
        "  - {name: sudo-only, users: [bob], services: [sudo], action: required}\n",
        "  - {name: sudo-only, services: [sudo, su], action: required}\n",
        "  - {name: sudo-only, from: [203.0.113.0/24], action: required}\n",
        "  - {name: lan, from: [10.0.0.0/8], action: exempt}\n"
        "  - {name: sudo-only, not_from: [local], users: [bob], action: required}\n",
    ],
)
def test_required_for_one_service_or_place_is_still_required(
    service: Service, clock: Clock, rules: str
) -> None:
    secret, _ = enroll(service, clock, "bob")
    service.policy = parse("rules:\n" + rules)
    with pytest.raises(ServiceError) as refused:
        service.disable("bob", code(secret, clock), needs_proof=True)
    assert refused.value.code == p.UNAUTHORIZED and "sudo-only" in refused.value.message
    assert service.status("bob")["enrollment"] == "active"  # nothing changed
    assert service.status("bob")["required"] is True


def test_a_rule_exempting_the_user_everywhere_ends_the_search(
    service: Service, clock: Clock
) -> None:
    secret, _ = enroll(service, clock, "bob")
    service.policy = parse(
        "default: required\n"
        "rules:\n"
        "  - {name: bob-free, users: [bob], action: exempt}\n"
        "  - {name: sudo, services: [sudo], action: required}\n"
    )
    service.disable("bob", code(secret, clock), needs_proof=True)
    assert service.status("bob")["enrollment"] == "none"


# --- unlock and new recovery codes ------------------------------------------------


def test_unlock_lifts_a_timed_lock(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    fail(service, "alice", 5)
    service.unlock("alice")
    assert service.verify("alice", code(secret, clock))["result"] == p.ACCEPTED


def test_regenerate_replaces_all_codes(service: Service, clock: Clock) -> None:
    _, old = enroll(service, clock)
    new = service.regenerate_recovery_codes("alice")["recovery_codes"]
    assert len(new) == 8 and not set(new) & set(old)
    assert service.verify("alice", old[0])["result"] == p.REJECTED
    assert service.verify("alice", new[0])["result"] == p.ACCEPTED


def test_regenerate_claims_the_row_so_a_racing_writer_starts_over(
    service: Service, clock: Clock
) -> None:
    enroll(service, clock)
    with service.store.transaction():
        before = service.store.get_user("alice")
    assert before is not None
    service.regenerate_recovery_codes("alice")
    with pytest.raises(Conflict), service.store.transaction():
        service.store.clear_lock(before)
