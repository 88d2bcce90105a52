"""Key files: one master key of 32 bytes each, read only if private, created only once.

A key file is created mode 0400 and never widened; one readable by group or others,
owned by another user, a symbolic link or of the wrong size is refused, since the
daemon must not run on a key anyone else may have read.  The key ring (keys.py) is
made of these: the current key file, and the older ones in a directory beside it.
"""

from __future__ import annotations

import os
import stat

from .keys import KEY_BYTES, KeyFileError, Keys

KEY_SUFFIX = ".key"


def load_ring(current: str, older_directory: str | None = None) -> Keys:
    """The current key (created on first start) and every older ``*.key`` in
    `older_directory`, which only open what they sealed before."""
    master = load_or_create_master(current)
    older = []
    if older_directory is not None:
        try:
            names = sorted(os.listdir(older_directory))
        except FileNotFoundError:
            names = []
        except OSError as exc:
            raise KeyFileError(
                f"cannot list older keys in {older_directory}: {exc.strerror}"
            ) from None
        older = [
            _read(os.path.join(older_directory, name))
            for name in names
            if name.endswith(KEY_SUFFIX) and not name.startswith(".")
        ]
    return Keys.from_master(master, older)


def load_or_create(path: str) -> Keys:
    """A ring of one: the key in `path`, created on first start."""
    return Keys.from_master(load_or_create_master(path))


def load_or_create_master(path: str) -> bytes:
    """Read the master key, creating it (mode 0400, never wider) on first start."""
    try:
        return _read(path)
    except FileNotFoundError:
        return _create(path)


def create_new(path: str) -> Keys:
    """A new key file at `path`, which must not exist yet (for a key to add to a ring)."""
    if os.path.lexists(path):
        raise KeyFileError(f"{path} exists already; a new key needs a new file")
    return Keys.from_master(_create(path))


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
