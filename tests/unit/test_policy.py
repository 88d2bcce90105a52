"""Deciding: first match wins; users, groups, services, networks and their negations."""

from __future__ import annotations

import pytest

from twofad.policy import EXEMPT, OPTIONAL, REQUIRED, Origin, Policy
from twofad.policy_file import parse

POLICY = parse(
    """
default: optional
rules:
  - name: console-break-glass
    users: [root]
    services: [login]
    action: exempt
  - name: trusted-lan
    from: [192.168.1.0/24, "fd00::/8"]
    not_users: [intern]
    action: exempt
  - name: local-su
    from: [local]
    services: [su, sudo]
    action: exempt
  - name: admins
    groups: [sudo, wheel]
    action: required
  - name: contractors-anywhere
    not_groups: [staff]
    not_from: [10.0.0.0/8]
    action: required
""",
    "policy.yaml",
)
GROUPS = {
    "root": {"root"},
    "alice": {"sudo", "staff"},
    "bob": {"staff"},
    "carol": set(),
    "intern": {"staff"},
}


def decide(
    user: str, service: str | None, rhost: str | None, policy: Policy = POLICY
) -> tuple[str, str]:
    decision = policy.decide(user, lambda: frozenset(GROUPS.get(user, ())), service, rhost)
    return decision.action, decision.rule


@pytest.mark.parametrize(
    ("user", "service", "rhost", "expected"),
    [
        ("root", "login", None, (EXEMPT, "console-break-glass")),
        ("root", "sshd", "203.0.113.9", (REQUIRED, "contractors-anywhere")),
        ("alice", "sshd", "192.168.1.20", (EXEMPT, "trusted-lan")),
        ("alice", "sshd", "::ffff:192.168.1.20", (EXEMPT, "trusted-lan")),
        ("alice", "sshd", "fd00::1234", (EXEMPT, "trusted-lan")),
        ("alice", "sshd", "fe80::1%eth0", (REQUIRED, "admins")),
        ("intern", "sshd", "192.168.1.20", (OPTIONAL, "default")),
        ("alice", "sshd", "192.168.2.1", (REQUIRED, "admins")),
        ("alice", "sudo", None, (EXEMPT, "local-su")),
        ("alice", "sudo", "192.168.2.1", (REQUIRED, "admins")),
        ("bob", "sshd", "203.0.113.9", (OPTIONAL, "default")),
        ("carol", "sshd", "10.1.2.3", (OPTIONAL, "default")),
        ("carol", "sshd", "203.0.113.9", (REQUIRED, "contractors-anywhere")),
        ("carol", "sshd", "attacker.example", (REQUIRED, "contractors-anywhere")),
        ("carol", "login", None, (REQUIRED, "contractors-anywhere")),
    ],
)
def test_first_matching_rule_decides(
    user: str, service: str, rhost: str | None, expected: tuple[str, str]
) -> None:
    assert decide(user, service, rhost) == expected


def test_a_host_name_never_counts_as_a_trusted_network() -> None:
    assert decide("alice", "sshd", "lan-host.example") == (REQUIRED, "admins")


def test_no_rule_means_the_default() -> None:
    assert decide("bob", "sshd", None, Policy(default=REQUIRED)) == (REQUIRED, "default")


def test_rule_order_matters() -> None:
    first = parse(
        "rules:\n  - {users: [bob], action: exempt}\n  - {users: [bob], action: required}\n"
    )
    second = parse(
        "rules:\n  - {users: [bob], action: required}\n  - {users: [bob], action: exempt}\n"
    )
    assert decide("bob", "sshd", None, first)[0] == EXEMPT
    assert decide("bob", "sshd", None, second)[0] == REQUIRED


def test_groups_are_looked_up_once_and_only_when_needed() -> None:
    calls = []

    def lookup() -> frozenset[str]:
        calls.append(1)
        return frozenset({"staff"})

    POLICY.decide("root", lookup, "login", None)
    assert calls == []  # the first rule decided on the user name alone
    POLICY.decide("bob", lookup, "sshd", "203.0.113.9")
    assert calls == [1]


def test_the_rule_says_where_it_is_written() -> None:
    decision = POLICY.decide("alice", lambda: frozenset({"sudo"}), "sshd", "8.8.8.8")
    assert decision.where("policy.yaml") == "policy.yaml:16"
    assert POLICY.decide("bob", frozenset, "sshd", "10.0.0.1").where("x") is None


def test_origin_parsing() -> None:
    assert Origin.parse(None).local
    assert str(Origin.parse("::ffff:10.1.1.1").address) == "10.1.1.1"
    assert Origin.parse("host.example").address is None and not Origin.parse("host.example").local


def test_issuer_expands_the_host_name() -> None:
    import socket

    assert Policy(issuer="%h backup").issuer_name == f"{socket.gethostname()} backup"


@pytest.mark.parametrize(
    ("text", "user", "groups", "rule"),
    [
        ("default: required\n", "bob", set(), "default"),
        ("default: optional\n", "bob", set(), None),
        (
            "rules:\n  - {name: s, groups: [sudo], services: [sudo], action: required}\n",
            "bob",
            {"sudo"},
            "s",
        ),
        (
            "rules:\n  - {name: s, groups: [sudo], services: [sudo], action: required}\n",
            "bob",
            {"users"},
            None,
        ),
        (
            "rules:\n  - {name: s, not_groups: [ops], from: [192.0.2.0/24], action: required}\n",
            "bob",
            {"ops"},
            None,
        ),
        (
            "default: required\nrules:\n  - {name: e, users: [bob], action: exempt}\n",
            "bob",
            set(),
            None,
        ),
        (
            "default: required\nrules:\n  - {name: e, users: [bob], services: [login], action: exempt}\n",
            "bob",
            set(),
            "default",
        ),
    ],
)
def test_required_somewhere_looks_past_services_and_places(
    text: str, user: str, groups: set[str], rule: str | None
) -> None:
    found = parse(text).required_somewhere(user, lambda: frozenset(groups))
    assert (found.rule if found else None) == rule
