"""Putting a policy in force (never one that shuts every administrator out), and its impact."""

from __future__ import annotations

import pytest

from pam_twofa import protocol as p
from support.fakes import Accounts, Clock
from support.service import enroll
from twofad.policy_file import parse
from twofad.service import Service, ServiceError

STRICT = "default: required\nenrollment: {at_login: false}\n"


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


def test_every_operation_sees_the_policy_put_in_force(service: Service, clock: Clock) -> None:
    """A reload replaces the context's policy; nothing keeps a copy of the old one."""
    assert service.check("bob", "sshd")["action"] == p.SKIP
    required = parse("default: required\n")
    service.replace_policy(required)
    assert service.context.policy is required
    assert service.check("bob", "sshd")["action"] == p.ENROLL
    assert service.status("bob")["required"] is True
    assert service.enroll_begin("bob")["digits"] == required.totp.digits
