"""Whatever text it is given, the loader yields a Policy or a PolicyError, never a crash."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from twofad.policy import Policy
from twofad.policy_file import PolicyError, parse

KEYS = [
    "issuer",
    "totp",
    "algorithm",
    "digits",
    "period",
    "window",
    "default",
    "rules",
    "name",
    "users",
    "groups",
    "services",
    "from",
    "not_users",
    "not_services",
    "not_groups",
    "not_from",
    "action",
    "enrollment",
    "at_login",
    "recovery_codes",
    "count",
    "lockout",
    "after",
    "first",
    "max",
    "hard_after",
    "forgive_within",
    "admins",
    "gruops",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.sampled_from(
        [
            "required",
            "optional",
            "exempt",
            "SHA1",
            "30s",
            "1h",
            "10.0.0.0/8",
            "local",
            "root",
            "::1/128",
            "%h",
        ]
    ),
    st.text(max_size=20),
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children, max_size=6
        ),
    ),
    max_leaves=40,
)


def _outcome(text: str) -> None:
    try:
        assert isinstance(parse(text, "p.yaml"), Policy)
    except PolicyError as error:
        assert error.messages
        assert all(message.startswith("p.yaml:") for message in error.messages)


@settings(max_examples=300, deadline=None)
@given(DOCUMENTS)
def test_structured_documents(document: object) -> None:
    _outcome(yaml.safe_dump(document, allow_unicode=True))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    _outcome(text)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "rules:",
                "  - ",
                "action: ",
                "exempt",
                "from: [",
                "]",
                "{",
                "}",
                "&a ",
                "*a",
                "!!python/object:os.system",
                "\n",
                "users: ",
                "- root",
                ": ",
                "'",
                '"',
            ]
        ),
        max_size=40,
    )
)
def test_yaml_shaped_fragments(parts: list[str]) -> None:
    _outcome("".join(parts))
