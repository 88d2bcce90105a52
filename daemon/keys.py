"""The key file: where the daemon's one master key lives, apart from the database.

Secrets in the database are sealed with AES-GCM under a key derived from it, and
recovery codes are hashed with another; a copy of the database alone reveals nothing.
"""

from __future__ import annotations

import functools
import hmac
import os
import stat
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
NONCE_BYTES = 12
_SEAL_VERSION = b"\x01"


class KeyFileError(Exception):
    """The key file is missing, malformed or too widely readable; the daemon must not start."""


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose).derive(master)


@dataclass(frozen=True)
class Keys:
    """The keys derived from the master key, one per purpose."""

    secret_key: bytes
    recovery_key: bytes

    @classmethod
    def from_master(cls, master: bytes) -> Keys:
        return cls(
            secret_key=_derive(master, b"twofad v1 totp secret sealing"),
            recovery_key=_derive(master, b"twofad v1 recovery code hashing"),
        )

    @functools.cached_property
    def _aead(self) -> AESGCM:
        return AESGCM(self.secret_key)  # made once: its set-up costs more than a decryption

    def seal(self, user: str, secret: str) -> bytes:
        """Encrypt a secret, binding it to its user so a row copied to another user fails."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode(), _aad(user))
        return _SEAL_VERSION + nonce + sealed

    @property
    def fingerprint(self) -> bytes:
        """A value stored in the database, so a start with the wrong key file is refused."""
        return hmac.new(self.recovery_key, b"twofad key fingerprint v1", "sha256").digest()

    def matches(self, fingerprint: bytes) -> bool:
        return hmac.compare_digest(self.fingerprint, fingerprint)

    def unseal(self, user: str, blob: bytes) -> str:
        if blob[:1] != _SEAL_VERSION:
            raise KeyFileError("sealed secret has an unknown format")
        nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, sealed, _aad(user)).decode()
        except InvalidTag:
            raise KeyFileError(
                f"the secret of {user!r} does not decrypt: the key file does not belong "
                "to this database"
            ) from None


def _aad(user: str) -> bytes:
    return b"twofad-secret\0" + user.encode()


def load_or_create(path: str) -> Keys:
    """Read the master key, creating it (mode 0400, never wider) on first start."""
    try:
        master = _read(path)
    except FileNotFoundError:
        master = _create(path)
    return Keys.from_master(master)


def _read(path: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise KeyFileError(f"cannot open key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as key_file:
        _check_ownership(path, os.fstat(key_file.fileno()))
        master = key_file.read(KEY_BYTES + 1)
    if len(master) != KEY_BYTES:
        raise KeyFileError(f"key file {path} must hold exactly {KEY_BYTES} bytes")
    return master


def _check_ownership(path: str, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise KeyFileError(f"key file {path} is not a regular file")
    if info.st_mode & 0o077:
        raise KeyFileError(
            f"key file {path} is readable by group or others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); fix with: chmod 0400 {path}"
        )
    if info.st_uid not in (0, os.geteuid()):
        raise KeyFileError(f"key file {path} is owned by uid {info.st_uid}, not by this daemon")


def _create(path: str) -> bytes:
    """Write a new key under a temporary name, then link it into place.

    Linking (unlike renaming) fails if another daemon created the key meanwhile, so
    two first starts cannot end up with different keys.
    """
    master = os.urandom(KEY_BYTES)
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o400)
    try:
        with os.fdopen(fd, "wb") as key_file:
            key_file.write(master)
            key_file.flush()
            os.fsync(key_file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return _read(path)
    finally:
        os.unlink(temporary)
    _fsync_directory(directory)
    return master


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
