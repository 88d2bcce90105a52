"""Single-use recovery codes: how they are made, typed, recognised and spent.

A code is 12 characters of Crockford's base32 (60 bits), shown as `k7pq-3xmd-9wtr`.
Crockford's alphabet leaves out I, L, O and U, and reading maps the look-alikes back,
so a code copied from paper by hand still works.  Eight-digit codes are recognised too:
they are google-authenticator's scratch codes, kept as recovery codes on import.

Only keyed digests are stored, each with the id of the key that made it (keys.py),
so a code made before a new key was put in the ring still works while the old key is
in it.  `redeem` is the whole rule for a typed code: found in constant time among the
user's, refused if already used, spent with a conditional write otherwise, so that it
works exactly once even when two logins race.
"""

from __future__ import annotations

import hmac
import secrets
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .keys import Keys

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
LENGTH = 12
GROUP = 4
SCRATCH_LENGTH = 8  # google-authenticator's emergency scratch codes
_LOOKALIKES = str.maketrans({"o": "0", "i": "1", "l": "1"})

# What became of a typed code (see redeem).
SPENT = "spent"  # it was one of the user's, unused; now it is used
USED = "used"  # it was one of the user's, used before: a replay
UNKNOWN = "unknown"  # not a code of this user's, or not a recovery code at all


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


def new_codes(keys: Keys, user: str, count: int) -> tuple[list[str], list[bytes]]:
    """`count` fresh codes to show once, and the digests to store in their place."""
    codes = [new_code() for _ in range(count)]
    return codes, [keys.recovery_digest(user, normalize(code) or "") for code in codes]


def digests_of(keys: Keys, user: str, codes: list[str]) -> list[bytes]:
    """The digests of codes brought from elsewhere (an import), each once, in a fixed order.

    Raises ValueError if one of them is no recovery code.
    """
    digests = set()
    for code in codes:
        canonical = normalize(code)
        if canonical is None:
            raise ValueError("a recovery code to import is malformed")
        digests.add(keys.recovery_digest(user, canonical))
    return sorted(digests)


class StoredCode(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def digest(self) -> bytes: ...

    @property
    def used_at(self) -> float | None: ...


class Codes(Protocol):
    """Where a user's digests are kept: the part of the store this rule needs."""

    def recovery_codes(self, user: str) -> Sequence[StoredCode]: ...

    def spend_recovery_code(self, code_id: int, now: float) -> None: ...


def redeem(codes: Codes, keys: Keys, user: str, typed: str, now: float) -> str:
    """Check a typed code against `user`'s and spend it: SPENT, USED or UNKNOWN.

    Every stored digest is compared, in constant time, so the time taken does not say
    which code (or whether one) matched.  The spend is conditional on the code being
    still unused and raises the store's Conflict if another login spent it meanwhile.
    """
    canonical = normalize(typed)
    if canonical is None:
        return UNKNOWN
    found = None
    for stored in codes.recovery_codes(user):
        for wanted in keys.recovery_candidates(stored.digest, user, canonical):
            if hmac.compare_digest(stored.digest, wanted):
                found = stored
    if found is None:
        return UNKNOWN
    if found.used_at is not None:
        return USED
    codes.spend_recovery_code(found.id, now)
    return SPENT
