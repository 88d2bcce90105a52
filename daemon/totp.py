"""TOTP codes and the time-step arithmetic around them (RFC 6238), with no state.

Here are "which steps in this window does this code match" (every candidate compared
in constant time) and the replay rule, "which of them may still be used" (a step is
accepted at most once, RFC 6238 §5.2).  The last step used is kept in the store; the
store's compare-and-set makes the rule hold when two logins race.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import segno

from pam_twofa import vocabulary as v

HASHES: dict[str, Any] = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}
ALGORITHMS = {name: HASHES[name] for name in v.ALGORITHMS}
SECRET_BYTES = 20  # 160 bits (32 base32 characters), what every authenticator app expects
RESYNC_SECONDS = 600  # how far a resync looks either way: ±10 minutes, whatever the period


def resync_steps(period: int) -> int:
    return -(-RESYNC_SECONDS // period)  # rounded up, so the whole ten minutes are covered


@dataclass(frozen=True)
class TotpParams:
    """How a user's codes are made; fixed at enrollment so a policy change breaks no app."""

    algorithm: str = "SHA1"
    digits: int = 6
    period: int = 30

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}")
        if not v.MIN_DIGITS <= self.digits <= v.MAX_DIGITS:
            raise ValueError(f"digits must be {v.MIN_DIGITS} to {v.MAX_DIGITS}")
        if not v.MIN_PERIOD <= self.period <= v.MAX_PERIOD:
            raise ValueError(f"period must be {v.MIN_PERIOD} to {v.MAX_PERIOD} seconds")


def new_secret() -> str:
    """A fresh random secret in base32 (no padding: 20 bytes are 32 characters), from the
    OS's CSPRNG."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def time_step(now: float, period: int) -> int:
    return int(now // period)


def carry_step(last_step: int | None, old_period: int, new_period: int) -> int | None:
    """The last used step in another period's units: the one holding the old step's end.

    A secret replaced with another period must still refuse codes for the time already
    used; rounding toward the later step errs on refusing, never on a replay.
    """
    if last_step is None:
        return None
    return ((last_step + 1) * old_period - 1) // new_period


def code_at(secret: str, params: TotpParams, step: int) -> str:
    return _hotp(_key(secret), params, step)


def _key(secret: str) -> bytes:
    """The raw key of a base32 secret, padded as base32 wants (apps omit the padding)."""
    return base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))


def _hotp(key: bytes, params: TotpParams, counter: int) -> str:
    """RFC 4226 §5.3: HMAC the counter, truncate dynamically, keep `digits` digits.

    Written out rather than through pyotp, which decodes the base32 secret again for
    every code; a window of three codes per login made that the bulk of a verify.
    """
    mac = hmac.new(key, counter.to_bytes(8, "big"), ALGORITHMS[params.algorithm]).digest()
    offset = mac[-1] & 0x0F
    binary = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(binary % 10**params.digits).zfill(params.digits)


def normalize(code: str) -> str:
    """What a person meant to type: NFKC folds full-width digits, spaces are dropped."""
    return "".join(unicodedata.normalize("NFKC", code).split())


def is_totp_shaped(code: str, params: TotpParams) -> bool:
    """True if a normalised code could be a TOTP code (so not a recovery code)."""
    return len(code) == params.digits and code.isascii() and code.isdigit()


def matching_steps(secret: str, params: TotpParams, code: str, first: int, last: int) -> list[int]:
    """Every step in first..last whose code equals `code`, compared in constant time.

    All candidates are computed and compared, so the time taken says nothing about
    where in the window (or whether) the code matched.
    """
    key = _key(secret)
    wanted = code.encode()
    matches = []
    for step in range(first, last + 1):
        if hmac.compare_digest(_hotp(key, params, step).encode(), wanted):
            matches.append(step)
    return matches


def fresh_steps(matches: Iterable[int], last_step: int | None) -> list[int]:
    """The matched steps a code may still be accepted for: those after the last one used.

    Not only the last step itself is spent but every one before it, so that a code seen
    over someone's shoulder cannot be typed after the owner has logged in with a later one.
    """
    if last_step is None:
        return list(matches)
    return [step for step in matches if step > last_step]


def provisioning_uri(secret: str, user: str, issuer: str, params: TotpParams) -> str:
    """The otpauth:// Key URI that authenticator apps read from the QR code.

    Built here, not by pyotp: its TOTP refuses secrets under 112 bits since 2.12, and an
    import keeps the 80-bit keys of pam_oath and older google-authenticator files. The
    text is what pyotp 2.6 makes, byte for byte, so a key shown again reads as before:
    the label `ISSUER:ACCOUNT` through quote() (which leaves '/' alone), the query through
    urlencode() with spaces as %20, and algorithm, digits and period only where they are
    not the defaults every app assumes (SHA1, 6, 30).
    """
    label = quote(user)
    query: dict[str, str | int] = {"secret": secret}
    if issuer:
        label = f"{quote(issuer)}:{label}"
        query["issuer"] = issuer
    if params.algorithm != "SHA1":
        query["algorithm"] = params.algorithm
    if params.digits != 6:
        query["digits"] = params.digits
    if params.period != 30:
        query["period"] = params.period
    return f"otpauth://totp/{label}?{urlencode(query).replace('+', '%20')}"


def qr_text(uri: str) -> str:
    """The QR code of `uri` as terminal text: half-block characters, under 80 columns
    for the URIs of ordinary names.

    Error correction M where the URI fits, else L: the longest URI the validators let
    through (a 256-character user name, a 64-character issuer of 4-byte characters, a
    128-character key) fits only at L, and a code harder to scan beats an error.
    """
    out = io.StringIO()
    _qr_code(uri).terminal(out=out, compact=True, border=2)
    return out.getvalue()


def qr_image(uri: str) -> str:
    """The QR code of `uri` as a PNG image in a `data:` URI, for a page to show in an
    <img>: an image runs no script, so a page can show it without trusting its text.
    Black on white with the standard four-module quiet zone, whatever the page's theme:
    phones' scanners read dark-on-light best. PNG, not SVG: the longest URI's code
    (version 37) is 9 KB as a PNG and 44 KB as an SVG, and it travels in one message
    with the terminal text.
    """
    return str(_qr_code(uri).png_data_uri(scale=5, border=4, dark="#000", light="#fff"))


def _qr_code(uri: str) -> segno.QRCode:
    try:
        return segno.make(uri, error="m", micro=False)
    except segno.DataOverflowError:
        return segno.make(uri, error="l", micro=False)


def grouped(secret: str) -> str:
    """The secret in groups of four, for people who type it in by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
