"""YAML that PyYAML itself mishandles: each is a PolicyError, placed, and quick.

Found by `make fuzz`: these escaped parse() as ValueError, KeyError, IndexError,
AttributeError or RecursionError, which the daemon answers as an internal error (and
which stop it at start), and deep flow nesting took over a second, during which twofad
answers nobody.
"""

from __future__ import annotations

import pytest

from pam_twofa import protocol as p
from twofad.policy_file import PolicyError, parse

MAX_DEPTH = 32  # yaml_walk.MAX_DEPTH


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as failure:
        parse(text, "policy.yaml")
    return failure.value.messages


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("default: 2020-13-45\n", "policy.yaml:1:10: default: unreadable value: '2020-13-45'"),
        ("lockout: {after: 2020-02-30}\n", "lockout.after: unreadable value: '2020-02-30'"),
        ("issuer: 0000-01-01\n", "issuer: unreadable value: '0000-01-01' is not a valid timestamp"),
        ("default: !!timestamp x\n", "default: unreadable value: 'x' is not a valid timestamp"),
        ("default: !!int abc\n", "default: unreadable value: 'abc' is not a valid int"),
        ("default: !!int 0x\n", "default: unreadable value: '0x' is not a valid int"),
        ("default: !!int\n", "default: unreadable value: '' is not a valid int"),
        ("default: !!bool maybe\n", "default: unreadable value: 'maybe' is not a valid bool"),
        ("issuer: !!float x\n", "issuer: unreadable value: 'x' is not a valid float"),
        ("recovery_codes: {count: " + "9" * 5000 + "}\n", "is not a valid int"),
    ],
)
def test_a_scalar_pyyaml_cannot_convert_is_an_unreadable_value(text: str, expected: str) -> None:
    [message] = problems(text)
    assert expected in message
    assert len(message) < 200


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Refused at the 33rd bracket, not after scanning all 5,000 (over a second).
        ("rules: " + "[" * 5000 + "]" * 5000 + "\n", "1:40: not valid YAML: more than 32 nested ["),
        ("rules: [" + "{groups: [" * 3000 + "\n", "1:168: not valid YAML: more than 32 nested ["),
        # Block nesting and flow mappings: at the 33rd level, not in RecursionError.
        (
            "admins: " + "{a: " * 5000 + "x" + "}" * 5000 + "\n",
            "1:130: not valid YAML: nested more",
        ),
        ("rules:\n  " + "- " * 5000 + "x\n", "2:65: not valid YAML: nested more than 32 deep"),
        ("? " * 5000 + "x\n", "1:65: not valid YAML: nested more than 32 deep"),
    ],
)
def test_deep_nesting_is_refused_at_the_first_level_too_deep(text: str, expected: str) -> None:
    [message] = problems(text)
    assert message.startswith("policy.yaml:" + expected)


def test_nesting_within_the_bound_still_reads() -> None:
    depth = MAX_DEPTH - 2  # the top mapping and the rules list are two of the levels
    [message] = problems("rules: " + "[" * depth + "]" * depth + "\n")
    assert message.startswith("policy.yaml:1:9: rules[0]: expected a mapping of name")


@pytest.mark.parametrize(
    "text",
    [
        "issuer: !" + "%01" * 16_000 + " x\n",  # each %01 is quoted back as \x01
        "issuer: !e" + "x" * 48_000 + " x\n",
        "issuer: *" + "a" * 48_000 + "\n",
    ],
)
def test_what_pyyaml_quotes_of_a_huge_tag_or_alias_is_cut_to_fit_a_reply(text: str) -> None:
    [message] = problems(text)
    assert len(message) < 300
    # twofad sends the problems of `policy check` and `reload` as one reply.
    p.encode_response(p.error_response(p.INVALID_POLICY, message))
