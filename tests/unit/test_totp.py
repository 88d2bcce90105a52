"""TOTP arithmetic against RFC 6238 Appendix B and the independent oathtool."""

from __future__ import annotations

import base64
import struct
import urllib.parse

import pyotp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pam_twofa import _jsoncodec
from pam_twofa.vocabulary import MAX_MESSAGE_BYTES
from support.oath import oathtool, oathtool_hex
from twofad import totp

# RFC 6238 Appendix B: the seeds are ASCII "1234567890" repeated to the hash's length.
SEEDS = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
VECTORS = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


def _b32(seed: bytes) -> str:
    return base64.b32encode(seed).decode().rstrip("=")


@pytest.mark.parametrize(("at", "sha1", "sha256", "sha512"), VECTORS)
def test_rfc6238_appendix_b(at: int, sha1: str, sha256: str, sha512: str) -> None:
    for algorithm, expected in (("SHA1", sha1), ("SHA256", sha256), ("SHA512", sha512)):
        params = totp.TotpParams(algorithm, 8, 30)
        step = totp.time_step(at, 30)
        assert totp.code_at(_b32(SEEDS[algorithm]), params, step) == expected


@pytest.mark.parametrize("algorithm", ["SHA1", "SHA256", "SHA512"])
def test_rfc_vectors_agree_with_oathtool(algorithm: str) -> None:
    for at, *_ in VECTORS[:4]:
        params = totp.TotpParams(algorithm, 8, 30)
        ours = totp.code_at(_b32(SEEDS[algorithm]), params, totp.time_step(at, 30))
        assert ours == oathtool_hex(SEEDS[algorithm].hex(), at, algorithm=algorithm)


@pytest.mark.parametrize(
    ("algorithm", "digits", "period"),
    [("SHA1", 6, 30), ("SHA256", 8, 60), ("SHA512", 7, 15), ("SHA1", 6, 120)],
)
def test_fresh_secrets_match_oathtool(algorithm: str, digits: int, period: int) -> None:
    secret = totp.new_secret()
    params = totp.TotpParams(algorithm, digits, period)
    for at in (1_700_000_000, 1_700_000_029, 1_800_000_123):
        expected = oathtool(secret, at, algorithm=algorithm, digits=digits, period=period)
        assert totp.code_at(secret, params, totp.time_step(at, period)) == expected


def test_new_secret_is_160_bits_of_base32() -> None:
    secret = totp.new_secret()
    assert len(base64.b32decode(secret)) == 20
    assert len({totp.new_secret() for _ in range(100)}) == 100


def test_matching_steps_finds_every_match_in_the_window() -> None:
    secret = totp.new_secret()
    params = totp.TotpParams()
    code = totp.code_at(secret, params, 1000)
    assert totp.matching_steps(secret, params, code, 999, 1001) == [1000]
    assert totp.matching_steps(secret, params, code, 1001, 1003) == []


def test_a_step_is_fresh_only_after_the_last_one_used() -> None:
    """RFC 6238 §5.2: the step last accepted, and every one before it, is spent."""
    assert totp.fresh_steps([999, 1000, 1001], None) == [999, 1000, 1001]
    assert totp.fresh_steps([999, 1000, 1001], 999) == [1000, 1001]
    assert totp.fresh_steps([1000], 1000) == []
    assert totp.fresh_steps([999, 1000], 1001) == []


def test_carry_step_rounds_toward_the_later_step() -> None:
    assert totp.carry_step(None, 30, 60) is None
    assert totp.carry_step(9, 30, 30) == 9
    assert totp.carry_step(9, 30, 60) == 4  # 270-299 s lies in the 60 s step 240-299
    assert totp.carry_step(10, 30, 60) == 5  # 300-329 s lies in 300-359
    assert totp.carry_step(4, 60, 30) == 9  # 240-299 s ends in the 30 s step 270-299


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("123 456", "123456"),
        ("１２３４５６", "123456"),
        (" 123456\t", "123456"),
        ("12 34 56", "123456"),
    ],
)
def test_normalize_folds_width_and_drops_spaces(typed: str, expected: str) -> None:
    assert totp.normalize(typed) == expected


def test_totp_shape_is_exactly_the_digit_count() -> None:
    params = totp.TotpParams(digits=6)
    assert totp.is_totp_shaped("123456", params)
    assert not totp.is_totp_shaped("12345", params)
    assert not totp.is_totp_shaped("1234567", params)
    assert not totp.is_totp_shaped("12345a", params)
    assert not totp.is_totp_shaped("١٢٣٤٥٦", params)  # Arabic-Indic digits are not ASCII


def test_params_reject_what_apps_cannot_do() -> None:
    with pytest.raises(ValueError, match="algorithm"):
        totp.TotpParams("MD5")
    with pytest.raises(ValueError, match="digits"):
        totp.TotpParams(digits=9)
    with pytest.raises(ValueError, match="period"):
        totp.TotpParams(period=10)


def test_provisioning_uri_follows_the_key_uri_format() -> None:
    uri = totp.provisioning_uri("JBSWY3DPEHPK3PXP", "alice", "nas", totp.TotpParams())
    assert uri == "otpauth://totp/nas:alice?secret=JBSWY3DPEHPK3PXP&issuer=nas"
    uri = totp.provisioning_uri(
        "JBSWY3DPEHPK3PXP", "bob", "my nas", totp.TotpParams("SHA256", 8, 60)
    )
    assert uri.startswith("otpauth://totp/my%20nas:bob?secret=JBSWY3DPEHPK3PXP&issuer=my%20nas")
    assert "algorithm=SHA256" in uri and "digits=8" in uri and "period=60" in uri


# URIs pyotp 2.6 (bookworm's) made for these inputs, with
# pyotp.TOTP(secret, digits=, digest=, interval=).provisioning_uri(name=, issuer_name=).
PYOTP_26_URIS = [
    (
        ("JBSWY3DPEHPK3PXP", "alice", "nas", "SHA1", 6, 30),
        "otpauth://totp/nas:alice?secret=JBSWY3DPEHPK3PXP&issuer=nas",
    ),
    (
        ("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "jo.doe@corp", "backup-server-01", "SHA1", 6, 30),
        "otpauth://totp/backup-server-01:jo.doe%40corp?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        "&issuer=backup-server-01",
    ),
    (
        ("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "CORP\\jo", "Fileserver (Büro)", "SHA256", 8, 60),
        "otpauth://totp/Fileserver%20%28B%C3%BCro%29:CORP%5Cjo?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        "&issuer=Fileserver%20%28B%C3%BCro%29&algorithm=SHA256&digits=8&period=60",
    ),
    (
        ("JBSWY3DPEHPK3PXP", "host$", "my nas", "SHA512", 7, 15),
        "otpauth://totp/my%20nas:host%24?secret=JBSWY3DPEHPK3PXP&issuer=my%20nas"
        "&algorithm=SHA512&digits=7&period=15",
    ),
    (
        ("JBSWY3DPEHPK3PXP", "bob", "東京 NAS", "SHA1", 6, 120),
        "otpauth://totp/%E6%9D%B1%E4%BA%AC%20NAS:bob?secret=JBSWY3DPEHPK3PXP"
        "&issuer=%E6%9D%B1%E4%BA%AC%20NAS&period=120",
    ),
    (
        ("MFRGGZDFMZTWQ2LKNNWG23TP", "carol_x-1", "a+b&c=d/e?f#g%h", "SHA1", 8, 30),
        "otpauth://totp/a%2Bb%26c%3Dd/e%3Ff%23g%25h:carol_x-1?secret=MFRGGZDFMZTWQ2LKNNWG23TP"
        "&issuer=a%2Bb%26c%3Dd%2Fe%3Ff%23g%25h&digits=8",
    ),
    (
        ("MFRGGZDFMZTWQ2LK", "dave", "Ünïcödé ✓ ☃", "SHA256", 6, 30),
        "otpauth://totp/%C3%9Cn%C3%AFc%C3%B6d%C3%A9%20%E2%9C%93%20%E2%98%83:dave"
        "?secret=MFRGGZDFMZTWQ2LK&issuer=%C3%9Cn%C3%AFc%C3%B6d%C3%A9%20%E2%9C%93%20%E2%98%83"
        "&algorithm=SHA256",
    ),
    (
        ("JBSWY3DPEHPK3PXP" * 4, "eve@example.org", "~tilde_under.dot-dash", "SHA512", 6, 30),
        "otpauth://totp/~tilde_under.dot-dash:eve%40example.org?secret="
        + "JBSWY3DPEHPK3PXP" * 4
        + "&issuer=~tilde_under.dot-dash&algorithm=SHA512",
    ),
]


@pytest.mark.parametrize(("inputs", "expected"), PYOTP_26_URIS)
def test_provisioning_uri_is_what_pyotp_26_made(
    inputs: tuple[str, str, str, str, int, int], expected: str
) -> None:
    secret, user, issuer, algorithm, digits, period = inputs
    params = totp.TotpParams(algorithm, digits, period)
    assert totp.provisioning_uri(secret, user, issuer, params) == expected


_USERS = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.@\\-]{0,30}\$?", fullmatch=True)
_ISSUERS = st.text(min_size=1, max_size=64).filter(lambda t: t.isprintable() and ":" not in t)
_PARAMS = st.builds(
    totp.TotpParams,
    st.sampled_from(sorted(totp.ALGORITHMS)),
    st.integers(6, 8),
    st.integers(15, 120),
)


@settings(max_examples=300, deadline=None)
@given(
    key=st.binary(min_size=10, max_size=64),
    user=_USERS,
    issuer=_ISSUERS,
    params=_PARAMS,
)
def test_provisioning_uri_agrees_with_the_installed_pyotp(
    key: bytes, user: str, issuer: str, params: totp.TotpParams
) -> None:
    """pyotp's encoding, whichever pyotp is installed (2.6 with Debian's set).

    Its build_uri takes any secret; its TOTP, which checks the length since 2.12, only
    secrets of 112 bits or more.
    """
    secret = base64.b32encode(key).decode().rstrip("=")
    ours = totp.provisioning_uri(secret, user, issuer, params)
    digest = totp.ALGORITHMS[params.algorithm]
    assert ours == pyotp.utils.build_uri(
        secret,
        user,
        issuer=issuer,
        algorithm=digest().name,
        digits=params.digits,
        period=params.period,
    )
    if len(key) >= 14:
        made = pyotp.TOTP(secret, digits=params.digits, digest=digest, interval=params.period)
        assert ours == made.provisioning_uri(name=user, issuer_name=issuer)


def test_an_80_bit_key_gets_a_uri_whose_codes_oathtool_computes() -> None:
    """pam_oath's and older google-authenticator keys are 80 bits; an app must get them."""
    secret = "JBSWY3DPEHPK3PXP"
    params = totp.TotpParams("SHA1", 6, 30)
    uri = totp.provisioning_uri(secret, "CORP\\jo", "Büro NAS", params)
    parts = urllib.parse.urlsplit(uri)
    query = urllib.parse.parse_qs(parts.query)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert urllib.parse.unquote(parts.path) == "/Büro NAS:CORP\\jo"
    assert query == {"secret": [secret], "issuer": ["Büro NAS"]}
    for at in (1_700_000_000, 1_800_000_123):
        code = oathtool(query["secret"][0], at, algorithm="SHA1", digits=6, period=30)
        assert totp.code_at(secret, params, totp.time_step(at, 30)) == code


def test_qr_text_fits_an_80_column_terminal() -> None:
    uri = totp.provisioning_uri(
        totp.new_secret(), "a.rather.long.user.name", "backup-server-01", totp.TotpParams()
    )
    lines = totp.qr_text(uri).splitlines()
    assert lines and max(len(line) for line in lines) <= 80
    assert len(lines) <= 40
    assert set("".join(lines)) <= set(" █▀▄")


def test_the_longest_uri_the_validators_allow_still_makes_a_qr_code() -> None:
    longest = totp.provisioning_uri(
        "A" * 128, "a" + "@" * 255, "\U0001f600" * 64, totp.TotpParams("SHA512", 8, 120)
    )
    lines = totp.qr_text(longest).splitlines()
    assert lines and set("".join(lines)) <= set(" █▀▄")


def test_qr_image_is_a_png_of_the_code_with_its_quiet_zone() -> None:
    uri = totp.provisioning_uri(totp.new_secret(), "alice", "nas", totp.TotpParams())
    image = totp.qr_image(uri)
    prefix = "data:image/png;base64,"
    assert image.startswith(prefix)
    png = base64.b64decode(image[len(prefix) :], validate=True)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert width == height and width % 5 == 0  # square, 5 pixels a module
    assert (width // 5 - 8 - 21) % 4 == 0  # a QR version's size, plus 4 modules each side


def test_the_longest_uri_s_set_up_fits_in_one_message() -> None:
    longest = totp.provisioning_uri(
        "A" * 128, "a" + "@" * 255, "\U0001f600" * 64, totp.TotpParams("SHA512", 8, 120)
    )
    shown = _jsoncodec.dumps({"qr": totp.qr_text(longest), "qr_image": totp.qr_image(longest)})
    assert len(shown.encode()) < MAX_MESSAGE_BYTES - 8192  # room for the other fields


def test_grouped_secret_reads_in_fours() -> None:
    assert totp.grouped("JBSWY3DPEHPK3PXP") == "JBSW Y3DP EHPK 3PXP"
