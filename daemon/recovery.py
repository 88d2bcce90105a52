"""Single-use recovery codes: how they are made, typed, and recognised.

A code is 12 characters of Crockford's base32 (60 bits), shown as `k7pq-3xmd-9wtr`.
Crockford's alphabet leaves out I, L, O and U, and reading maps the look-alikes back,
so a code copied from paper by hand still works.  Eight-digit codes are recognised too:
they are google-authenticator's scratch codes, kept as recovery codes on import.
"""

from __future__ import annotations

import hmac
import secrets
import unicodedata

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
LENGTH = 12
GROUP = 4
SCRATCH_LENGTH = 8  # google-authenticator's emergency scratch codes
_LOOKALIKES = str.maketrans({"o": "0", "i": "1", "l": "1"})


def new_code() -> str:
    """A fresh code in its display form."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(raw[i : i + GROUP] for i in range(0, LENGTH, GROUP))


def normalize(text: str) -> str | None:
    """The canonical form of a typed code, or None if it cannot be a recovery code."""
    folded = unicodedata.normalize("NFKC", text).lower()
    folded = "".join(folded.split()).replace("-", "")
    if len(folded) == SCRATCH_LENGTH and folded.isascii() and folded.isdigit():
        return folded
    folded = folded.translate(_LOOKALIKES)
    if len(folded) != LENGTH or not all(c in ALPHABET for c in folded):
        return None
    return folded


def digest(key: bytes, user: str, canonical: str) -> bytes:
    """The keyed hash stored in place of a code; bound to its user so rows can't be swapped."""
    return hmac.new(key, f"{user}\0{canonical}".encode(), "sha256").digest()
