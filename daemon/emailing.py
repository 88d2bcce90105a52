"""Codes by email, as rules: the code, how it is kept and checked, and the messages.

A code is 8 random digits, valid for the policy's `valid_for` (10 minutes), spent by
its first use, and kept only as a keyed hash (the recovery codes' key, with a purpose
of its own, so a code mailed for one thing is never another).  A new code replaces
the one before.  The times codes were mailed to an account within the last day are
kept to cap how many go out (the policy's `per_hour` and `per_day`).

The messages are composed here, by twofad, which knows the host, the time and where
the request came from; the mailer only delivers them, and never sees a key.
"""

from __future__ import annotations

import hmac
import secrets
import textwrap
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from pam_twofa.vocabulary import EMAIL_CODE_DIGITS

from .keys import Keys

LOGIN = "email-login"  # a code to log in with
ADDRESS = "email-address"  # a code proving an address is the person's
DAY = 86400.0


def new_code() -> str:
    return f"{secrets.randbelow(10**EMAIL_CODE_DIGITS):0{EMAIL_CODE_DIGITS}d}"


def normalize(typed: str) -> str | None:
    """The code as typed, NFKC-normalised (full-width digits are digits), spaces and
    dashes dropped; None if that is not exactly 8 ASCII digits."""
    text = unicodedata.normalize("NFKC", typed)
    text = "".join(c for c in text if c not in " -")
    if len(text) != EMAIL_CODE_DIGITS or not (text.isascii() and text.isdigit()):
        return None
    return text


def digest(keys: Keys, user: str, purpose: str, code: str) -> bytes:
    return keys.recovery_digest(user, f"{purpose}:{code}")


def matches(keys: Keys, stored: bytes, user: str, purpose: str, typed: str) -> bool:
    """Whether `typed` is the code `stored` is the hash of; every candidate is compared
    in constant time."""
    code = normalize(typed)
    candidates = keys.recovery_candidates(stored, user, f"{purpose}:{code or ''}")
    found = False
    for candidate in candidates:
        found |= hmac.compare_digest(candidate, stored)
    return found and code is not None


def live(expires: float | None, now: float) -> bool:
    return expires is not None and now < expires


# --- when codes were mailed --------------------------------------------------------


def decode_sends(text: str | None) -> tuple[float, ...]:
    if not text:
        return ()
    try:
        return tuple(float(item) for item in text.split(","))
    except ValueError:
        return ()  # never written so; a damaged list must not stop every send


def encode_sends(times: Iterable[float], now: float) -> str | None:
    """The sends of the last day, whole seconds, oldest first; None when there are none."""
    kept = sorted(int(t) for t in times if now - DAY < t <= now + 1)
    return ",".join(str(t) for t in kept) or None


# --- the messages ------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    """One message for the mailer to deliver: plain text, to one address."""

    to: str
    subject: str
    body: str


@dataclass(frozen=True)
class Where:
    """Where a request came from, as the message tells it."""

    host: str  # the host asked
    service: str | None  # the PAM service, or None for a command
    rhost: str | None  # the address the login came from, if any

    def told(self) -> str:
        origin = f"from {self.rhost}" if self.rhost else "with no remote address (at the host)"
        through = f" through {self.service}" if self.service else ""
        return f"{self.host}{through}, {origin}"


NOT_YOU = (
    "If this was not you, someone who knows your password may be trying to log in: "
    "change your password and tell your administrator. Do not give this code to anyone."
)


def login_code(to: str, user: str, code: str, where: Where, now: float, valid_for: float) -> Mail:
    minutes = max(1, round(valid_for / 60))
    body = "\n".join(
        [
            f"Your verification code for {user} on {where.host}:",
            "",
            f"    {code[:4]} {code[4:]}",
            "",
            f"It works once, within {minutes} minutes.",
            "",
            _wrapped(f"Asked for at {_when(now)} on {where.told()}."),
            "",
            _wrapped(NOT_YOU),
        ]
    )
    return Mail(to, f"Verification code for {user} on {where.host}", body + "\n")


def address_code(to: str, user: str, code: str, where: Where, now: float, valid_for: float) -> Mail:
    minutes = max(1, round(valid_for / 60))
    body = "\n".join(
        [
            f"To receive verification codes for {user} on {where.host} at this address,",
            "confirm it with:",
            "",
            f"    twofa email confirm {code}",
            "",
            f"The code works once, within {minutes} minutes.",
            "",
            _wrapped(f"Asked for at {_when(now)} on {where.told()}."),
            "",
            "If this was not you, ignore this message: nothing changes without the code.",
        ]
    )
    return Mail(to, f"Confirm your address for {user} on {where.host}", body + "\n")


def test_message(to: str, host: str, now: float) -> Mail:
    body = (
        f"A test message from pam-twofa on {host}, sent at {_when(now)}.\n"
        "Codes by email can reach this address.\n"
    )
    return Mail(to, f"pam-twofa test message from {host}", body)


def _wrapped(paragraph: str) -> str:
    """Lines a mail reader shows as they are (no soft breaks in the middle of words)."""
    return textwrap.fill(paragraph, width=72, break_long_words=False, break_on_hyphens=False)


def _when(now: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
