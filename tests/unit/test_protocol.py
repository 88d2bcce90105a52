from __future__ import annotations

import pytest

from pam_twofa import _jsoncodec
from pam_twofa import protocol as p


def test_request_round_trip() -> None:
    line = p.encode_request(
        "verify", id=7, user="alice", code="123 456", service="sshd", rhost="::1"
    )
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    request = p.decode_request(line.rstrip(b"\n"))
    assert (request.op, request.id) == ("verify", 7)
    assert request.fields == {"user": "alice", "code": "123 456", "service": "sshd", "rhost": "::1"}


def test_response_round_trip() -> None:
    ok = p.decode_response(p.encode_response(p.Response({"result": "accepted"}, id=3)))
    assert ok.ok and ok.data == {"result": "accepted"} and ok.id == 3
    error = p.decode_response(p.encode_response(p.error_response(p.LOCKED, "wait", 4)))
    assert not error.ok and (error.code, error.message, error.id) == (p.LOCKED, "wait", 4)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"\xff\xfe", "UTF-8"),
        (b"[1,2]", "object"),
        (b'{"op":"ping"}', "version"),
        (b'{"v":2,"op":"ping"}', "version"),
        (b'{"v":1,"op":"ping","v":1}', "JSON"),
        (b'{"v":1,"op":"fly"}', "unknown operation"),
        (b'{"v":1,"op":"ping","extra":1}', "unknown field"),
        (b'{"v":1,"op":"verify","user":"alice"}', "'code' is required"),
        (b'{"v":1,"op":"verify","user":"alice","code":123456}', "must be a string"),
        (b'{"v":1,"op":"status","user":"-rf"}', "not a valid user name"),
        (b'{"v":1,"op":"status","user":"../etc"}', "not a valid user name"),
        (b'{"v":1,"op":"status","user":"a/b"}', "not a valid user name"),
        (b'{"v":1,"op":"verify","user":"a","code":"1\\u00002"}', "control"),
        (b'{"v":1,"op":"check","user":"a","service":"../x"}', "PAM service"),
        (b'{"v":1,"op":"check","user":"a","rhost":"a b"}', "rhost"),
        (b'{"v":1,"op":"ping","id":-1}', "id"),
        (b'{"v":1,"op":"ping","id":1.5}', "id"),
        (b'{"v":1,"op":"ping","x":NaN}', "JSON"),
        (b'{"v":1,"op":"ping"} trailing', "JSON"),
        (b'{"v":1,"op":"list","limit":0}', "limit must be a whole number from 1 to 100"),
        (b'{"v":1,"op":"list","limit":101}', "limit must be a whole number from 1 to 100"),
        (b'{"v":1,"op":"list","limit":"5"}', "limit must be a whole number"),
        (b'{"v":1,"op":"list","after":"-x"}', "after '-x' is not a valid user name"),
    ],
)
def test_bad_requests_say_what_is_wrong(line: bytes, reason: str) -> None:
    with pytest.raises(p.ProtocolError) as error:
        p.decode_request(line)
    assert error.value.code == p.BAD_REQUEST
    assert reason in error.value.message


def test_user_names_from_ldap_and_samba_are_valid() -> None:
    for name in ("alice", "jo.doe@corp.example", "svc_backup", "HOST$", "a-b", "u1000", "CORP\\jo"):
        assert p.validate_user(name) == name
    for name in ("", "$", "-x", ".x", "\\x", "a b", "a:b", "x" * 257, "é"):
        with pytest.raises(p.ProtocolError):
            p.validate_user(name)


def test_encode_refuses_invalid_fields_before_sending() -> None:
    with pytest.raises(p.ProtocolError, match="user"):
        p.encode_request("status", user="a b")


def test_an_oversized_message_is_refused() -> None:
    with pytest.raises(p.ProtocolError, match="exceeds"):
        p.decode_request(b'{"v":1,"op":"ping","p":"' + b"x" * p.MAX_MESSAGE_BYTES + b'"}')


def test_line_buffer_splits_and_limits() -> None:
    buffer = p.LineBuffer(limit=10)
    assert list(buffer.feed(b"ab\ncd")) == [b"ab"]
    assert buffer.pending == 2
    assert list(buffer.feed(b"e\n\nf")) == [b"cde", b""]
    with pytest.raises(p.ProtocolError, match="exceeds"):
        list(buffer.feed(b"x" * 11))


def test_line_buffer_refuses_an_overlong_line_that_ends_in_the_same_chunk() -> None:
    with pytest.raises(p.ProtocolError):
        list(p.LineBuffer(limit=4).feed(b"123456\n"))


def test_request_repr_hides_codes() -> None:
    request = p.decode_request(b'{"v":1,"op":"verify","user":"alice","code":"123456"}')
    assert "123456" not in repr(request)


@pytest.mark.parametrize(
    "value",
    [{"a": [1, 2.5, None, True, False, 'é\n"\\']}, [], {}, "x", 0, -3, {"nested": {"k": ["v"]}}],
)
def test_codec_agrees_with_json(value: object) -> None:
    import json

    assert json.loads(_jsoncodec.dumps(value)) == value
    assert _jsoncodec.loads(json.dumps(value)) == value


@pytest.mark.parametrize(
    "text", ["", "  ", "{", '{"a":1}{', "NaN", "[Infinity]", '{"a":1,"a":2}', "tru"]
)
def test_codec_refuses_what_is_not_one_json_value(text: str) -> None:
    with pytest.raises(ValueError):
        _jsoncodec.loads(text)


def test_codec_refuses_non_finite_numbers() -> None:
    with pytest.raises(ValueError):
        _jsoncodec.dumps({"x": float("nan")})


@pytest.mark.parametrize("length", [17, 19, 22, 25, 27, 30])
def test_a_key_that_ends_part_way_through_a_byte_is_refused(length: int) -> None:
    with pytest.raises(p.ProtocolError, match=f"has {length} base32 characters"):
        p.validate_secret("A" * length)


@pytest.mark.parametrize("length", [16, 18, 20, 23, 24, 26, 32, 128])
def test_keys_of_whole_bytes_are_taken(length: int) -> None:
    assert p.validate_secret("A" * length) == "A" * length


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, "give 'text' or 'dropin' (or both)"),
        ({"dropin": "x"}, "dropin must be an object"),
        ({"dropin": {"name": "a.yaml"}}, "needs both 'name' and 'text'"),
        ({"dropin": {"name": "a.yaml", "text": "", "mode": 1}}, "unknown field(s) 'mode'"),
        ({"dropin": {"name": "../a.yaml", "text": ""}}, "dropin.name '../a.yaml' is not a drop-in"),
        ({"dropin": {"name": "a/b.yaml", "text": ""}}, "is not a drop-in file name"),
        ({"dropin": {"name": ".a.yaml", "text": ""}}, "is not a drop-in file name"),
        ({"dropin": {"name": "a.yml", "text": ""}}, "is not a drop-in file name"),
        ({"dropin": {"name": ".yaml", "text": ""}}, "is not a drop-in file name"),
        ({"dropin": {"name": "a" * 60 + ".yaml", "text": ""}}, "is not a drop-in file name"),
        ({"dropin": {"name": 5, "text": ""}}, "dropin.name must be a string"),
        ({"dropin": {"name": "a.yaml", "text": 5}}, "dropin.text must be a string"),
        (
            {"dropin": {"name": "a.yaml", "text": "x" * (48 * 1024 + 1)}},
            "dropin.text must be at most",
        ),
    ],
)
def test_a_drop_in_to_preview_is_checked_field_by_field(
    fields: dict[str, object], reason: str
) -> None:
    with pytest.raises(p.ProtocolError) as error:
        p.validate_request("policy.check", fields)
    assert error.value.code == p.BAD_REQUEST
    assert reason in error.value.message, error.value.message


def test_a_drop_in_alone_is_a_policy_check() -> None:
    request = p.validate_request(
        "policy.check", {"dropin": {"name": "web-console.yaml", "text": "rules: []\n"}}
    )
    assert request.fields == {"dropin": {"name": "web-console.yaml", "text": "rules: []\n"}}


@pytest.mark.parametrize("name", ["domain admins", "sudo", "Grüppe", "x" * 256])
def test_group_names_from_directories_are_valid(name: str) -> None:
    assert p.validate_group(name) == name


@pytest.mark.parametrize("name", ["", " sudo", "a:b", "a,b", "tab\there", "x" * 257, 5])
def test_group_names_that_could_be_two_or_none_are_refused(name: object) -> None:
    with pytest.raises(p.BadRequest):
        p.validate_group(name)
