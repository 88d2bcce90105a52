"""The state directory must be the daemon's own before anything in it is trusted.

The database and the key live there. A directory that another user may write to
(group- or world-writable, or owned by someone else) lets them plant a database of
their choosing, or swap one in after the checks, so twofad refuses to start rather
than guess. The files of state inside it must be the daemon's too.
"""

from __future__ import annotations

import os
import stat

# SQLite's own files beside the database: whoever writes them writes the database.
DATABASE_SUFFIXES = ("", "-wal", "-shm", "-journal")


class StateDirError(Exception):
    """The state directory, or a file of state in it, is not safe to use."""


def make_or_check(path: str, database: str) -> None:
    """Create `path` (mode 0700) if missing; refuse it, or `database`, if unsafe."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    owner = os.geteuid()
    info = os.stat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise StateDirError(f"{path}: not a directory")
    _check_owned_and_private(path, info, owner, "the state directory")
    for suffix in DATABASE_SUFFIXES:
        try:
            file_info = os.lstat(database + suffix)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(file_info.st_mode):
            raise StateDirError(f"{database + suffix}: not a regular file")
        _check_owned_and_private(database + suffix, file_info, owner, "a file of state")


def _check_owned_and_private(path: str, info: os.stat_result, owner: int, what: str) -> None:
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid != owner:
        raise StateDirError(
            f"{path}: {what} belongs to uid {info.st_uid}, not to twofad's user (uid {owner}); "
            f"fix: chown {owner} {path}, after checking how it came to be so"
        )
    if mode & 0o022:
        raise StateDirError(
            f"{path}: {what} is writable by group or others (mode {mode:04o}); "
            f"fix: chmod go-w {path}"
        )
