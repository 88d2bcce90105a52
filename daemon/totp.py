"""TOTP codes and the time-step arithmetic around them (RFC 6238), with no state.

Which steps a user may still use is the store's business; here we only answer "which
steps in this window does this code match", comparing every candidate in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import unicodedata
from dataclasses import dataclass
from typing import Any

import pyotp
import segno

ALGORITHMS: dict[str, Any] = {
    "SHA1": hashlib.sha1,
    "SHA256": hashlib.sha256,
    "SHA512": hashlib.sha512,
}
SECRET_CHARS = 32  # base32 characters: 160 bits, what every authenticator app expects
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
        if not 6 <= self.digits <= 8:
            raise ValueError("digits must be 6 to 8")
        if not 15 <= self.period <= 120:
            raise ValueError("period must be 15 to 120 seconds")


def new_secret() -> str:
    """A fresh random secret in base32, drawn from the OS's CSPRNG (pyotp uses secrets)."""
    return pyotp.random_base32(SECRET_CHARS)


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


def provisioning_uri(secret: str, user: str, issuer: str, params: TotpParams) -> str:
    """The otpauth:// Key URI that authenticator apps read from the QR code."""
    return pyotp.TOTP(
        secret,
        digits=params.digits,
        digest=ALGORITHMS[params.algorithm],
        interval=params.period,
    ).provisioning_uri(name=user, issuer_name=issuer)


def qr_text(uri: str) -> str:
    """The QR code of `uri` as terminal text: half-block characters, under 80 columns."""
    out = io.StringIO()
    segno.make(uri, error="m", micro=False).terminal(out=out, compact=True, border=2)
    return out.getvalue()


def grouped(secret: str) -> str:
    """The secret in groups of four, for people who type it in by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
