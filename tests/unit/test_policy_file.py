"""YAML to Policy: the shipped default, and every kind of error with its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from twofad.policy import LOCAL, REQUIRED, Policy
from twofad.policy_file import MAX_POLICY_BYTES, PolicyError, load, parse

ROOT = Path(__file__).resolve().parents[2]


def errors(text: str) -> list[str]:
    with pytest.raises(PolicyError) as failure:
        parse(text, "policy.yaml")
    return failure.value.messages


def test_the_shipped_default_is_the_built_in_policy() -> None:
    shipped = load(str(ROOT / "config" / "policy.yaml"))
    assert shipped.equivalent(Policy())
    assert shipped.source.endswith("config/policy.yaml")


def test_a_two_line_file_is_a_whole_policy() -> None:
    policy = parse("# strict\ndefault: required\n")
    assert policy.default == REQUIRED
    assert policy.totp == Policy().totp and policy.lockout == Policy().lockout


def test_an_empty_file_is_the_default() -> None:
    assert parse("").equivalent(Policy())
    assert parse("# nothing but comments\n").equivalent(Policy())


def test_the_issue_example_parses_fully() -> None:
    policy = parse(
        """
issuer: "%h"
totp: {algorithm: SHA1, digits: 6, period: 30s, window: 1}
default: optional
rules:
  - name: console-break-glass
    users: [root]
    services: [login]
    action: exempt
  - name: trusted-lan
    from: [192.168.1.0/24, "fd00::/8"]
    action: exempt
  - name: admins
    groups: [sudo]
    action: required
enrollment: {at_login: true}
recovery_codes: {count: 8}
lockout: {after: 5, first: 30s, max: 1h, hard_after: 100}
admins: {groups: [sudo]}
""",
        "policy.yaml",
    )
    assert [r.name for r in policy.rules] == ["console-break-glass", "trusted-lan", "admins"]
    assert [r.line for r in policy.rules] == [6, 10, 13]
    assert policy.rules[0].users == ("root",) and policy.rules[0].services == ("login",)
    assert [str(n) for n in policy.rules[1].from_ or ()] == ["192.168.1.0/24", "fd00::/8"]
    assert policy.lockout.first == 30 and policy.lockout.maximum == 3600


def test_every_setting_is_read() -> None:
    policy = parse(
        """
issuer: backup-01
totp: {algorithm: SHA256, digits: 8, period: 1m, window: 3}
default: exempt
enrollment: {at_login: false}
recovery_codes: {count: 12}
lockout: {after: 3, first: 1m, max: 2h, hard_after: 50, forgive_within: 2m}
admins: {groups: [wheel, adm]}
"""
    )
    assert (policy.issuer, policy.default, policy.window) == ("backup-01", "exempt", 3)
    assert (policy.totp.algorithm, policy.totp.digits, policy.totp.period) == ("SHA256", 8, 60)
    assert policy.enrollment_at_login is False and policy.recovery_codes == 12
    assert (policy.lockout.after, policy.lockout.first, policy.lockout.maximum) == (3, 60, 7200)
    assert policy.lockout.hard_after == 50 and policy.lockout.forgive_within == 120
    assert policy.admin_groups == frozenset({"wheel", "adm"})


def test_the_issues_example_error_has_its_place() -> None:
    text = "rules:\n" + "  - action: exempt\n" * 2 + "  - from: [10.0.0.0/33]\n    action: exempt\n"
    assert errors(text) == [
        "policy.yaml:4:12: rules[2].from[0]: '10.0.0.0/33' is not an IP network (or 'local')"
    ]


def test_all_errors_are_reported_at_once_in_file_order() -> None:
    found = errors(
        """default: requird
rules:
  - name: a
    gruops: [x]
    action: exempt
totp: {digits: 9, period: 30}
lockout: {first: 2h, max: 1h}
"""
    )
    assert found == [
        "policy.yaml:1:10: default: 'requird' is not one of required, optional, exempt",
        "policy.yaml:4:5: rules[0]: unknown key 'gruops'; expected one of name, users, groups, "
        "services, from, not_users, not_services, not_groups, not_from, action, email",
        "policy.yaml:6:16: totp.digits: expected a whole number from 6 to 8, not 9",
        "policy.yaml:6:27: totp.period: 30 is not a duration; write it with a unit: 30s, 15m, 1h",
        "policy.yaml:7:10: lockout: max (1h) must not be below first (2h)",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("defualt: required\n", "policy.yaml:1:1: unknown key 'defualt'"),
        (
            "totp:\n  algorithm: MD5\n",
            "policy.yaml:2:14: totp.algorithm: 'MD5' is not one of SHA1, SHA256, SHA512",
        ),
        (
            "totp: {digits: 5}\n",
            "policy.yaml:1:16: totp.digits: expected a whole number from 6 to 8, not 5",
        ),
        (
            "totp: {period: 10s}\n",
            "policy.yaml:1:16: totp.period: '10s' is out of range (15s to 2m)",
        ),
        ("totp: {period: 3m}\n", "policy.yaml:1:16: totp.period: '3m' is out of range (15s to 2m)"),
        (
            "totp: {window: 11}\n",
            "policy.yaml:1:16: totp.window: expected a whole number from 0 to 10, not 11",
        ),
        ("totp: {window: true}\n", "totp.window: expected a whole number from 0 to 10, not True"),
        (
            "recovery_codes: {count: 3}\n",
            "recovery_codes.count: expected a whole number from 4 to 20, not 3",
        ),
        (
            "recovery_codes: {count: 21}\n",
            "recovery_codes.count: expected a whole number from 4 to 20",
        ),
        ("lockout: {first: 30}\n", "lockout.first: 30 is not a duration; write it with a unit"),
        ("lockout: {first: 30 s}\n", "lockout.first: '30 s' is not a duration"),
        (
            "lockout: {after: 10, hard_after: 5}\n",
            "lockout: hard_after (5) must not be below after (10)",
        ),
        (
            "lockout: {forgive_within: 10}\n",
            "policy.yaml:1:27: lockout.forgive_within: 10 is not a duration; write it with a unit",
        ),
        (
            "lockout:\n  forgive_within: 25h\n",
            "policy.yaml:2:19: lockout.forgive_within: '25h' is out of range (0s to 24h)",
        ),
        (
            "enrollment: {at_login: maybe}\n",
            "enrollment.at_login: expected true or false, not 'maybe'",
        ),
        ("rules:\n  - users: [root]\n", "policy.yaml:2:5: rules[0]: a rule needs an action"),
        ("rules:\n  - action: deny\n", "policy.yaml:2:13: rules[0].action: 'deny' is not one of"),
        (
            "rules:\n  - {users: ['-x'], action: exempt}\n",
            "rules[0].users[0]: '-x' is not a valid user name",
        ),
        (
            "rules:\n  - {services: [a/b], action: exempt}\n",
            "rules[0].services[0]: 'a/b' is not a valid PAM service",
        ),
        (
            "rules:\n  - {from: [10.0.0.1/8], action: exempt}\n",
            "'10.0.0.1/8' has host bits set; did you mean 10.0.0.0/8?",
        ),
        (
            "rules:\n  - {from: [example.com], action: exempt}\n",
            "'example.com' is not an IP network",
        ),
        ("rules:\n  - {users: {a: 1}, action: exempt}\n", "rules[0].users: expected a list"),
        ("rules: {a: 1}\n", "policy.yaml:1:8: rules: expected a list"),
        ("- a\n- b\n", "policy.yaml:1:1: expected a mapping of issuer"),
        ("issuer: 'a:b'\n", "issuer: expected up to 64 printable characters without ':'"),
        ("default: required\ndefault: exempt\n", "policy.yaml:2:1: 'default' is given twice"),
        (
            "rules:\n  - {name: x, action: exempt}\n  - {name: x, action: exempt}\n",
            "two rules are named 'x'",
        ),
        ("rules: [\n", "policy.yaml:2:1: not valid YAML"),
        ("a: b: c\n", "policy.yaml:1:5: not valid YAML"),
        ("admins: {groups: [' ']}\n", "admins.groups[0]: ' ' is not a valid group name"),
        (
            "rules:\n  - {groups: [], action: required}\n",
            "policy.yaml:2:14: rules[0].groups: an empty list matches nothing",
        ),
        (
            "rules:\n  - {not_from: [], action: exempt}\n",
            "policy.yaml:2:16: rules[0].not_from: an empty list matches nothing",
        ),
        ("rules:\n  - {name: '', action: exempt}\n", "rules[0].name: expected text"),
        (
            f"rules:\n  - {{name: {'n' * 65}, action: exempt}}\n",
            "rules[0].name: expected 1 to 64 printable characters",
        ),
    ],
)
def test_each_kind_of_error(text: str, expected: str) -> None:
    found = errors(text)
    assert any(expected in message for message in found), found


def test_a_single_value_stands_for_a_list_of_one() -> None:
    policy = parse("rules:\n  - {users: root, from: local, action: exempt}\n")
    assert policy.rules[0].users == ("root",) and policy.rules[0].from_ == (LOCAL,)


def test_durations_combine_units() -> None:
    assert parse("lockout: {max: 1h30m}\n").lockout.maximum == 5400


def test_oversized_files_are_refused() -> None:
    assert "larger than" in errors("#" * (MAX_POLICY_BYTES + 1))[0]


def test_alias_bombs_are_bounded() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 8):
        bomb += f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]\n"
    bomb += "rules:\n  - {users: *h, action: exempt}\n"
    found = errors(bomb)
    assert any("more than" in message or "unknown key" in message for message in found)


def test_invalid_utf8_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_bytes(b"default: optional\nissuer: \xff\n")
    with pytest.raises(PolicyError) as failure:
        load(str(path))
    assert failure.value.messages == [f"{path}:2:1: not valid UTF-8"]


@pytest.mark.parametrize("rhost", ["10.1.2.3", "::ffff:10.1.2.3"])
def test_an_ipv4_mapped_network_matches_as_ipv4(rhost: str) -> None:
    policy = parse(
        "default: exempt\nrules:\n  - {name: lan, from: ['::ffff:10.0.0.0/104'], action: required}\n"
    )
    assert policy.decide("alice", frozenset, "sshd", rhost).action == REQUIRED
    assert policy.decide("alice", frozenset, "sshd", "192.0.2.1").rule == "default"


def test_directory_group_names_may_have_spaces() -> None:
    policy = parse(
        "rules:\n  - {groups: [domain admins], action: required}\nadmins: {groups: [it ops]}\n"
    )
    assert policy.rules[0].groups == ("domain admins",)
    assert policy.admin_groups == frozenset({"it ops"})
    assert errors("rules:\n  - {groups: ['a:b', ' lead'], action: required}\n") == [
        "policy.yaml:2:15: rules[0].groups[0]: 'a:b' is not a valid group name",
        "policy.yaml:2:22: rules[0].groups[1]: ' lead' is not a valid group name",
    ]


def test_a_forbidden_character_is_placed_where_it_is() -> None:
    assert errors("default: required\nissuer: 'a\x07b'\n") == [
        "policy.yaml:2:11: not valid YAML: the character U+0007 is not allowed"
    ]


def test_a_flood_of_errors_is_cut_to_what_a_reply_can_carry() -> None:
    text = "rules:\n" + "".join(
        f"  - {{users: ['bad user {i}'], action: exempt}}\n" for i in range(200)
    )
    messages = errors(text)
    assert len(messages) == 51
    assert messages[0].startswith("policy.yaml:2:14: rules[0].users[0]")
    assert messages[-1] == "policy.yaml: ... and 150 more"


def test_a_huge_wrong_value_is_quoted_short() -> None:
    [message] = errors(f"default: {'x' * 40_000}\n")
    assert len(message) < 200 and "...'" in message


def test_forgiveness_can_be_switched_off_and_defaults_to_ten_minutes() -> None:
    assert parse("lockout: {forgive_within: 0s}\n").lockout.forgive_within == 0
    assert parse("lockout: {after: 3}\n").lockout.forgive_within == 600


# --- codes by email ------------------------------------------------------------------


def test_codes_by_email_are_off_unless_allowed() -> None:
    assert not Policy().email.allowed
    assert not parse("default: required\n").decide("alice", frozenset).email
    policy = parse("email: {allowed: true, per_hour: 2, per_day: 4, valid_for: 5m}\n")
    assert (policy.email.per_hour, policy.email.per_day, policy.email.valid_for) == (2, 4, 300.0)
    assert policy.decide("alice", frozenset).email


def test_a_rule_allows_or_forbids_email_for_the_logins_it_decides() -> None:
    policy = parse(
        "email: {allowed: true}\n"
        "rules:\n"
        "  - {name: admins, groups: [sudo], action: required, email: false}\n"
        "  - {name: lan, from: [192.0.2.0/24], action: required, email: true}\n"
        "  - {name: guests, users: [guest], action: exempt}\n"
    )
    assert not policy.decide("alice", lambda: frozenset({"sudo"})).email
    assert policy.decide("bob", frozenset, "sshd", "192.0.2.9").email
    assert policy.decide("carol", frozenset).email  # the default: allowed
    assert not policy.decide("guest", frozenset).email  # no prompt, no email
    only_rule = parse(
        "rules:\n  - {name: lan, from: [192.0.2.0/24], action: required, email: true}\n"
    )
    assert only_rule.decide("bob", frozenset, "sshd", "192.0.2.9").email
    assert not only_rule.decide("bob", frozenset, "sshd", "198.51.100.1").email


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("email: {per_hour: 4, per_day: 3}\n", "per_day (3) must not be below per_hour (4)"),
        ("email: {valid_for: 2h}\n", "email.valid_for"),
        ("email: {per_hour: 0}\n", "email.per_hour"),
        ("email: {allowd: true}\n", "unknown key 'allowd'"),
        ("email: yes\n", "email"),
        ("rules:\n  - {name: r, action: required, email: maybe}\n", "rules[0].email"),
    ],
)
def test_every_email_setting_is_checked(text: str, says: str) -> None:
    assert any(says in message for message in errors(text)), errors(text)


def test_email_settings_count_in_equivalence() -> None:
    assert not parse("email: {allowed: true}\n").equivalent(Policy())
