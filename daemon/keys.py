"""The key ring: the key that seals new secrets, and older keys that still open theirs.

Secrets in the database are sealed with AES-GCM under a key derived from a master key,
and recovery codes are hashed with another; a copy of the database alone reveals
nothing.  A fleet shares one database, so every host needs the keys its secrets were
sealed with, and a key must be replaceable without a moment where some host cannot
read some secret.  So each key has an id (derived from it, never the key itself), a
sealed secret and a recovery code's digest carry the id of the key that made them,
and the ring opens with whichever key that was: add the new key to every host as an
older key, make it current host by host, re-seal (``twofactl keys reseal``), then
remove the old one.

Secrets sealed before ids existed (format 1) and recovery digests without an id are
opened by trying each key of the ring; there are few keys, and a wrong one fails the
AES-GCM tag or the digest comparison, never silently.
"""

from __future__ import annotations

import functools
import hmac
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
NONCE_BYTES = 12
KEY_ID_BYTES = 8
_SEALED_V1 = b"\x01"  # nonce, ciphertext: before key ids
_SEALED_V2 = b"\x02"  # key id, nonce, ciphertext


class KeyFileError(Exception):
    """A key is missing, malformed or too widely readable, or a secret needs a key the
    ring does not hold; the daemon must not start (or answer) on it."""


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose).derive(master)


@dataclass(frozen=True)
class Key:
    """One master key's derived keys, one per purpose, and its id."""

    secret_key: bytes
    recovery_key: bytes
    id: bytes

    @classmethod
    def from_master(cls, master: bytes) -> Key:
        return cls(
            secret_key=_derive(master, b"twofad v1 totp secret sealing"),
            recovery_key=_derive(master, b"twofad v1 recovery code hashing"),
            id=_derive(master, b"twofad key id")[:KEY_ID_BYTES],
        )

    @functools.cached_property
    def aead(self) -> AESGCM:
        return AESGCM(self.secret_key)  # made once: its set-up costs more than a decryption

    @property
    def fingerprint(self) -> bytes:
        """A value stored in the database, so a start with the wrong key file is refused."""
        return hmac.new(self.recovery_key, b"twofad key fingerprint v1", "sha256").digest()

    @property
    def name(self) -> str:
        """The id as people read it (in messages, `twofactl keys`)."""
        return self.id.hex()


@dataclass(frozen=True)
class Keys:
    """The ring: `current` seals and hashes; every key, current first, opens and checks."""

    current: Key
    older: tuple[Key, ...] = ()

    @classmethod
    def from_master(cls, master: bytes, older: Iterable[bytes] = ()) -> Keys:
        current = Key.from_master(master)
        others: dict[bytes, Key] = {}
        for other in map(Key.from_master, older):
            if other.id != current.id:
                others.setdefault(other.id, other)
        return cls(current, tuple(others.values()))

    @property
    def all(self) -> tuple[Key, ...]:
        return (self.current, *self.older)

    def by_id(self, key_id: bytes) -> Key | None:
        return next((key for key in self.all if hmac.compare_digest(key.id, key_id)), None)

    # --- what the current key alone does ---------------------------------------------

    @property
    def recovery_key(self) -> bytes:
        return self.current.recovery_key

    @property
    def fingerprint(self) -> bytes:
        return self.current.fingerprint

    def matches(self, fingerprint: bytes) -> bool:
        """Whether some key of the ring is the one the database was fingerprinted with."""
        return any(hmac.compare_digest(key.fingerprint, fingerprint) for key in self.all)

    def seal(self, user: str, secret: str) -> bytes:
        """Encrypt a secret, binding it to its user so a row copied to another user fails."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self.current.aead.encrypt(nonce, secret.encode(), _aad(user))
        return _SEALED_V2 + self.current.id + nonce + sealed

    # --- what any key of the ring does ------------------------------------------------

    def sealed_with_current(self, blob: bytes) -> bool:
        return blob[:1] == _SEALED_V2 and blob[1 : 1 + KEY_ID_BYTES] == self.current.id

    def unseal(self, user: str, blob: bytes) -> str:
        if blob[:1] == _SEALED_V2:
            key_id, rest = blob[1 : 1 + KEY_ID_BYTES], blob[1 + KEY_ID_BYTES :]
            key = self.by_id(key_id)
            if key is None:
                raise KeyFileError(
                    f"the secret of {user!r} is sealed with key {key_id.hex()}, which this "
                    f"host's key ring ({', '.join(k.name for k in self.all)}) does not hold"
                )
            return _open(key, user, rest)
        if blob[:1] != _SEALED_V1:
            raise KeyFileError("sealed secret has an unknown format")
        for key in self.all:
            try:
                return _open(key, user, blob[1:])
            except KeyFileError:
                continue
        raise KeyFileError(
            f"the secret of {user!r} does not decrypt with any key of this host's ring: "
            "the key file does not belong to this database"
        )

    def recovery_digest(self, user: str, canonical: str) -> bytes:
        """A new recovery code's digest: the current key's id, then its keyed hash."""
        return self.current.id + _hashed(self.current.recovery_key, user, canonical)

    def recovery_candidates(self, stored: bytes, user: str, canonical: str) -> Sequence[bytes]:
        """What `stored` would be if `canonical` were its code: one digest if it names
        its key, one per key of the ring if it is of the kind without an id."""
        if len(stored) == KEY_ID_BYTES + 32:
            key = self.by_id(stored[:KEY_ID_BYTES])
            return [] if key is None else [key.id + _hashed(key.recovery_key, user, canonical)]
        return [_hashed(key.recovery_key, user, canonical) for key in self.all]

    def hashed_with_current(self, stored: bytes) -> bool:
        return len(stored) == KEY_ID_BYTES + 32 and stored[:KEY_ID_BYTES] == self.current.id


def _open(key: Key, user: str, nonce_and_sealed: bytes) -> str:
    nonce, sealed = nonce_and_sealed[:NONCE_BYTES], nonce_and_sealed[NONCE_BYTES:]
    try:
        return key.aead.decrypt(nonce, sealed, _aad(user)).decode()
    except InvalidTag:
        raise KeyFileError(
            f"the secret of {user!r} does not decrypt: the key file does not belong "
            "to this database"
        ) from None


def _hashed(key: bytes, user: str, canonical: str) -> bytes:
    """The keyed hash of a recovery code, bound to its user so rows can't be swapped."""
    return hmac.new(key, f"{user}\0{canonical}".encode(), "sha256").digest()


def _aad(user: str) -> bytes:
    return b"twofad-secret\0" + user.encode()
