"""Properties of the wire protocol, checked with hypothesis: no input makes it misbehave."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pam_twofa import protocol as p
from pam_twofa.vocabulary import MAX_DEVICE_NAME

# --- arbitrary input ---------------------------------------------------------------------


@contextmanager
def _json_module_unloaded() -> Iterator[None]:
    """Run as twofad and the PAM hook do: without the `json` package ever imported.

    The C scanner of `_json` looks `json.decoder` up in sys.modules to raise its
    JSONDecodeError; the test process has imported json, the daemon has not.
    """
    saved = sys.modules.pop("json.decoder", None)
    try:
        yield
    finally:
        if saved is not None:
            sys.modules["json.decoder"] = saved


def _decode_outcome(line: bytes, *, as_in_the_daemon: bool = False) -> p.Request | None:
    """decode_request's answer: a Request, or None after a bad_request ProtocolError.

    Any other exception escapes and fails the property.
    """
    try:
        if as_in_the_daemon:
            with _json_module_unloaded():
                request = p.decode_request(line)
        else:
            request = p.decode_request(line)
    except p.ProtocolError as exc:
        assert exc.code == p.BAD_REQUEST
        assert isinstance(exc.message, str) and exc.message
        return None
    assert isinstance(request, p.Request)
    assert request.op in p.OPERATIONS
    assert set(request.fields) <= set(p.OPERATIONS[request.op])
    return request


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=p.MAX_MESSAGE_BYTES + 64))
@example(b"")
@example(b"\xff\xfe")
@example(b"\xed\xa0\x80")  # a UTF-16 surrogate, encoded as if it were UTF-8
@example(b"[" * 60_000)
@example(b"{" * 30_000)
@example(b'{"v":1,"op":"ping","id":' + b"9" * 5000 + b"}")
@example(b'{"v":1,"op":"ping","id":1e999}')
@example(b'{"v":1,"op":{"a":1}}')
@example(b'{"v":1,"op":["ping"]}')
@example(b'{"v":1,"op":"status","user":"\\ud800"}')
@example(b'{"v":1,"op":"verify","user":"root","code":"\\u0000"}')
@example(b" " * (p.MAX_MESSAGE_BYTES + 1))
def test_arbitrary_bytes_decode_or_raise_bad_request(line: bytes) -> None:
    _decode_outcome(line)


JSON_SYNTAX_ERRORS = [
    b'{"v":1,"op":"ping"',  # unfinished object
    b'{"v":1 "op":"ping"}',  # missing comma
    b'{v:1,"op":"ping"}',  # unquoted key
    b'{"v":1,"op":"ping",}',  # trailing comma
    b'{"v":1,"op":"pi',  # unterminated string
    b'{"v":1,"op":"\\q"}',  # invalid escape
    b'"',
]


@settings(max_examples=300)
@given(st.binary(max_size=256) | st.sampled_from(JSON_SYNTAX_ERRORS))
def test_arbitrary_bytes_decode_or_raise_bad_request_as_in_the_daemon(line: bytes) -> None:
    _decode_outcome(line, as_in_the_daemon=True)


def test_json_syntax_errors_are_bad_requests_in_a_fresh_interpreter() -> None:
    """The daemon's situation exactly: a Python that imported pam_twofa and not json."""
    program = (
        "import sys\n"
        "from pam_twofa import protocol as p\n"
        "assert 'json.decoder' not in sys.modules\n"
        "for line in eval(sys.argv[1]):\n"
        "    try:\n"
        "        p.decode_request(line)\n"
        "        print('accepted', line)\n"
        "    except p.ProtocolError as exc:\n"
        "        print(exc.code, line)\n"
        "    except Exception as exc:\n"
        "        print(type(exc).__name__, line)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program, repr(JSON_SYNTAX_ERRORS)],
        capture_output=True,
        text=True,
        check=True,
    )
    outcomes = [line.split(" ", 1)[0] for line in result.stdout.splitlines()]
    assert len(outcomes) == len(JSON_SYNTAX_ERRORS), result.stdout + result.stderr
    assert outcomes == [p.BAD_REQUEST] * len(JSON_SYNTAX_ERRORS), result.stdout


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
FIELD_NAMES = st.sampled_from(
    ["v", "op", "id", "user", "code", "code1", "code2", "service", "rhost", "extra"]
)
OP_VALUES = st.sampled_from(sorted(p.OPERATIONS)) | JSON_VALUES


@settings(max_examples=250)
@given(
    st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=7),
    OP_VALUES,
    st.sampled_from([1, 1, 1, 2, 0, "1", None]),
)
def test_json_objects_of_any_shape_decode_or_raise_bad_request(
    fields: dict[str, Any], op: Any, version: Any
) -> None:
    """Almost-valid requests, which random bytes rarely reach: wrong types, missing fields."""
    message = {**fields, "op": op, "v": version}
    _decode_outcome(json.dumps(message).encode())


@settings(max_examples=200)
@given(st.sampled_from(["NaN", "Infinity", "-Infinity"]), st.sampled_from(["id", "user", "x"]))
def test_non_json_constants_are_bad_requests(constant: str, name: str) -> None:
    line = f'{{"v":1,"op":"ping","{name}":{constant}}}'.encode()
    assert _decode_outcome(line) is None


@pytest.mark.parametrize(
    "line",
    [
        b'{"v":1,"op":"ping","op":"list"}',
        b'{"v":1,"v":1,"op":"ping"}',
        b'{"v":1,"op":"status","user":"root","user":"daemon"}',
    ],
)
def test_duplicate_keys_are_bad_requests(line: bytes) -> None:
    assert _decode_outcome(line) is None


@pytest.mark.parametrize("version", [b"true", b"1.0", b"false", b"[1]", b'"1"'])
def test_version_must_be_the_integer_one(version: bytes) -> None:
    assert _decode_outcome(b'{"v":' + version + b',"op":"ping"}') is None


# --- round trips ---------------------------------------------------------------------------

USERS = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,40}\$?", fullmatch=True)
PRINTABLE = st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))
CODES = st.text(PRINTABLE, min_size=1, max_size=p.MAX_CODE_LEN).filter(str.isprintable)
SERVICES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.+@-]{0,63}", fullmatch=True)
RHOSTS = st.from_regex(r"[A-Za-z0-9.:\[\]%-]{1,255}", fullmatch=True)

# A strategy of valid values for each validator the protocol's operations use.
VALID_VALUES: dict[Any, st.SearchStrategy[Any]] = {
    p.validate_user: USERS,
    p.validate_code: CODES,
    p.validate_service: SERVICES,
    p.validate_rhost: RHOSTS,
    p.validate_flag: st.booleans(),
    p.validate_secret: st.text(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=16, max_size=128
    ).filter(lambda key: len(key) % 8 not in (1, 3, 6)),
    p.validate_algorithm: st.sampled_from(["SHA1", "SHA256", "SHA512"]),
    p.validate_digits: st.integers(6, 8),
    p.validate_period: st.integers(15, 120),
    p.validate_code_list: st.lists(CODES, max_size=20),
    p.validate_limit: st.integers(1, p.MAX_PAGE),
    p.validate_window: st.integers(0, p.MAX_WINDOW),
    p.validate_time_step: st.integers(0, 2**40),
    p.validate_policy_text: st.text(max_size=2000),
    p.validate_label: st.text(PRINTABLE, min_size=1, max_size=255).filter(str.isprintable),
    p.validate_expires: st.floats(0, 2.0**52, allow_nan=False, allow_infinity=False),
    # NFC already, so the name decodes as it was encoded
    p.validate_device_name: st.text(PRINTABLE, min_size=1, max_size=MAX_DEVICE_NAME)
    .map(lambda name: unicodedata.normalize("NFC", name))
    .filter(lambda name: 0 < len(name) <= MAX_DEVICE_NAME)
    .filter(lambda name: name.isprintable() and name == name.strip()),
    p.validate_email_address: st.from_regex(
        r"[a-z0-9][a-z0-9._+-]{0,20}[a-z0-9]@[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?\.[a-z]{2,6}",
        fullmatch=True,
    ).filter(lambda address: ".." not in address and ".@" not in address),
    p.validate_channel: st.just("email"),
    p.validate_dropin: st.fixed_dictionaries(
        {
            "name": st.from_regex(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,58}\.yaml", fullmatch=True),
            "text": st.text(max_size=2000),
        }
    ),
}


def test_every_field_of_every_operation_has_a_strategy() -> None:
    validators = {v for schema in p.OPERATIONS.values() for v, _required in schema.values()}
    missing = sorted(v.__name__ for v in validators - set(VALID_VALUES))
    assert not missing, f"add strategies for {missing} to VALID_VALUES"


@st.composite
def valid_requests(draw: st.DrawFn) -> tuple[str, int | None, dict[str, Any]]:
    op = draw(st.sampled_from(sorted(p.OPERATIONS)))
    fields = {}
    for name, (validate, required) in p.OPERATIONS[op].items():
        if validate in VALID_VALUES and (required or draw(st.booleans())):
            fields[name] = draw(VALID_VALUES[validate])
    one_of = p.NEEDS_ONE_OF.get(op, ())
    if one_of and not any(name in fields for name in one_of):
        name = draw(st.sampled_from(one_of))
        fields[name] = draw(VALID_VALUES[p.OPERATIONS[op][name][0]])
    request_id = draw(st.none() | st.integers(min_value=0, max_value=2**53 - 1))
    return op, request_id, fields


@settings(max_examples=500)
@given(valid_requests())
def test_encoded_requests_decode_to_themselves(
    request: tuple[str, int | None, dict[str, Any]],
) -> None:
    op, request_id, fields = request
    line = p.encode_request(op, id=request_id, **fields)
    assert line.endswith(b"\n") and line.count(b"\n") == 1  # exactly one frame
    assert len(line) <= p.MAX_MESSAGE_BYTES
    decoded = p.decode_request(line.rstrip(b"\n"))
    assert (decoded.op, decoded.id, decoded.fields) == (op, request_id, fields)
    # The framing agrees: the line buffer yields the same single line back.
    assert list(p.LineBuffer().feed(line)) == [line.rstrip(b"\n")]


@settings(max_examples=300)
@given(
    st.dictionaries(st.text(max_size=10), JSON_SCALARS, max_size=5),
    st.none() | st.integers(min_value=0, max_value=2**53 - 1),
)
def test_ok_responses_round_trip(data: dict[str, Any], request_id: int | None) -> None:
    decoded = p.decode_response(p.encode_response(p.Response(data, id=request_id)))
    assert decoded.ok and decoded.data == data and decoded.id == request_id


@settings(max_examples=300)
@given(st.sampled_from(sorted(p.ERROR_CODES)), st.text(max_size=200))
def test_error_responses_round_trip(code: str, message: str) -> None:
    decoded = p.decode_response(p.encode_response(p.error_response(code, message, id=7)))
    assert (decoded.ok, decoded.code, decoded.message, decoded.id) == (False, code, message, 7)
