"""check, status, explain and policy replacement, as the policy drives them."""

from __future__ import annotations

import pytest

from pam_twofa import protocol as p
from support.fakes import Accounts, Clock
from twofad import totp
from twofad.policy_file import parse
from twofad.service import Service, ServiceError


def enroll(service: Service, clock: Clock, user: str) -> str:
    secret = service.enroll_begin(user)["secret"]
    step = totp.time_step(clock.now, 30)
    service.enroll_confirm(user, totp.code_at(secret, totp.TotpParams(), step))
    clock.advance(30)
    return secret


def use(service: Service, text: str) -> None:
    service.policy = parse(text, "policy.yaml")


def test_optional_prompts_only_the_enrolled(service: Service, clock: Clock) -> None:
    enroll(service, clock, "alice")
    assert service.check("alice", "sshd", "203.0.113.1") == {"action": p.PROMPT, "digits": 6}
    assert service.check("bob", "sshd", "203.0.113.1") == {"action": p.SKIP}


def test_required_and_not_set_up_enrolls_at_login_or_refuses(service: Service) -> None:
    use(service, "default: required\n")
    assert service.check("bob", "sshd")["action"] == p.ENROLL
    use(service, "default: required\nenrollment: {at_login: false}\n")
    assert service.check("bob", "sshd")["action"] == p.REFUSE
    service.enroll_begin("bob")  # a pending set-up is still not set up
    assert service.check("bob", "sshd")["action"] == p.REFUSE


def test_exempt_skips_even_the_enrolled(service: Service, clock: Clock) -> None:
    enroll(service, clock, "alice")
    use(service, "rules:\n  - {from: [192.168.1.0/24], action: exempt}\n")
    assert service.check("alice", "sshd", "192.168.1.7") == {"action": p.SKIP}
    assert service.check("alice", "sshd", "192.168.2.7") == {"action": p.PROMPT, "digits": 6}


def test_a_locked_user_is_told_so_before_the_prompt(service: Service, clock: Clock) -> None:
    enroll(service, clock, "alice")
    for _ in range(5):
        service.verify("alice", "000000")
    assert service.check("alice", "sshd") == {
        "action": p.LOCKED,
        "result": p.LOCKED,
        "retry_after": 30,
        "hard_locked": False,
    }


def test_unknown_users_are_prompted_unless_exempt(service: Service) -> None:
    use(service, "default: required\nrules:\n  - {from: [10.0.0.0/8], action: exempt}\n")
    assert service.check("mallory", "sshd", "203.0.113.1")["action"] == p.PROMPT
    assert service.check("mallory", "sshd", "10.1.1.1")["action"] == p.SKIP
    use(service, "default: optional\n")
    assert service.check("mallory", "sshd")["action"] == p.PROMPT


def test_explain_names_the_rule_and_its_line(service: Service, clock: Clock) -> None:
    use(
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
        "state": "disabled",
        "known": True,
    }


def test_status_states_follow_the_policy(service: Service, clock: Clock) -> None:
    use(service, "rules:\n  - {name: admins, groups: [sudo], action: required}\n")
    enroll(service, clock, "bob")
    listed = {s["user"]: (s["state"], s["rule"]) for s in service.list_users()["users"]}
    # alice is required (sudo) and not set up; bob enrolled; root neither required nor enrolled.
    assert listed == {"alice": ("incomplete", "admins"), "bob": ("enabled", "default")}
    for _ in range(5):
        service.verify("bob", "000000")
    assert service.status("bob")["state"] == "locked"
    assert service.status("root")["state"] == "disabled"


def test_a_policy_that_shuts_every_admin_out_is_refused(service: Service, clock: Clock) -> None:
    strict = parse("default: required\nenrollment: {at_login: false}\n", "strict.yaml")
    in_force = service.policy
    with pytest.raises(ServiceError) as refused:
        service.replace_policy(strict)
    assert refused.value.code == p.WOULD_LOCK_OUT
    assert "alice, root" in refused.value.message and "--force" in refused.value.message
    assert service.policy is in_force  # the old one stays
    service.replace_policy(strict, force=True)
    assert service.policy is strict


def test_the_guard_passes_when_one_admin_can_get_in(service: Service, clock: Clock) -> None:
    strict = "default: required\nenrollment: {at_login: false}\n"
    enroll(service, clock, "alice")
    service.replace_policy(parse(strict))  # alice has an app
    service.disable("alice")
    console = strict + "rules:\n  - {users: [root], services: [login], action: exempt}\n"
    service.replace_policy(parse(console))  # root can still use the console
    with_enrollment = "default: required\nenrollment: {at_login: true}\n"
    service.replace_policy(parse(with_enrollment))  # admins are walked through set-up


STRICT = "default: required\nenrollment: {at_login: false}\n"


def test_an_exemption_no_ssh_address_can_meet_is_no_way_in(service: Service) -> None:
    """A host name would match every not_from; sshd gives PAM an address, never none."""
    nowhere = STRICT + (
        "rules:\n  - {services: [sshd], not_from: [0.0.0.0/0, '::/0'], action: exempt}\n"
    )
    with pytest.raises(ServiceError) as refused:
        service.replace_policy(parse(nowhere))
    assert refused.value.code == p.WOULD_LOCK_OUT


@pytest.mark.parametrize(
    "rule",
    [
        "{from: [192.168.1.0/24], action: exempt}",  # an administrator at the LAN gets in
        "{from: ['fd00::/8'], services: [sshd], action: exempt}",
        "{not_from: [10.0.0.0/8], action: exempt}",  # from anywhere but 10/8
        "{users: [root], services: [login], action: exempt}",
    ],
)
def test_an_exemption_for_some_place_is_a_way_in(service: Service, rule: str) -> None:
    service.replace_policy(parse(STRICT + f"rules:\n  - {rule}\n"))


def test_impact_lists_who_becomes_required(
    service: Service, clock: Clock, accounts: Accounts
) -> None:
    enroll(service, clock, "bob")
    report = service.policy_impact(parse("default: required\n", "new.yaml"))
    assert report["source"] == "new.yaml"
    assert {r["user"]: r["state"] for r in report["required"]} == {
        "alice": "incomplete",
        "bob": "enabled",
        "root": "incomplete",
    }
    assert report["incomplete"] == ["alice", "root"]
    assert report["lockout_risk"] is None
