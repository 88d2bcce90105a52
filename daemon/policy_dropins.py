"""Drop-ins: which files a policy's `include:` names, and whether they may be believed.

A program (the web console's page, through `twofactl require`) writes its rules to a
drop-in of its own, so the policy an administrator wrote by hand is never rewritten.
Whoever can write a drop-in decides who must give a code, so a pattern cannot reach
out of the policy's directory, and, when twofad runs as root, a drop-in is read only if
it is a regular file (not a link to somewhere else) that root owns and no group or other
user may write, in a directory the same holds for.  What a drop-in may say is the
schema's (policy_file); here are the files.
"""

from __future__ import annotations

import errno
import fnmatch
import glob
import os
import stat
from collections.abc import Iterable

MAX_DROPINS = 64  # files one policy may include; each may be as large as the policy
MAX_PATTERN = 255


class Untrusted(Exception):
    """A drop-in that must not be read; the message says why, for the file's error."""


def pattern_problem(pattern: str) -> str | None:
    """Why a pattern may not be used, or None: it must stay in the policy's directory."""
    if not pattern or len(pattern) > MAX_PATTERN or not pattern.isprintable():
        return f"expected 1 to {MAX_PATTERN} printable characters"
    if pattern.startswith("/"):
        return "an absolute path; patterns are relative to the policy file's directory"
    if ".." in pattern.split("/") or "\\" in pattern:
        return "'..' leads out of the policy file's directory; name files below it"
    return None


def matches(pattern: str, relative: str) -> bool:
    """Whether `relative` is a path `pattern` names, as glob would match it (a file that
    does not exist yet included): `*` matches within one path component, never across
    a slash, and not a leading dot."""
    wanted, parts = pattern.split("/"), relative.split("/")
    return len(wanted) == len(parts) and all(
        fnmatch.fnmatchcase(part, want) and (want.startswith(".") or not part.startswith("."))
        for want, part in zip(wanted, parts, strict=True)
    )


def expand(
    patterns: Iterable[str], base: str, extra: Iterable[str] = (), own: str = ""
) -> list[str]:
    """The drop-ins the patterns name, relative to `base`: each pattern's files sorted by
    name, in the patterns' order, each file once; `extra` are files (not yet written)
    to count as matched wherever a pattern names them; `own`, the policy file itself,
    never counts."""
    extra = tuple(extra)
    found: list[str] = []
    for pattern in patterns:
        names = set(glob.glob(pattern, root_dir=base or "."))
        names.update(name for name in extra if matches(pattern, name))
        for name in sorted(names):
            name = os.path.normpath(name)
            if name not in found and name != own:
                found.append(name)
    return found


def read_trusted(path: str, limit: int) -> bytes:
    """Up to `limit` + 1 bytes of a drop-in; Untrusted if it is not one to believe.

    Never opened if it is a link or a FIFO (O_NOFOLLOW, O_NONBLOCK), then checked on
    the open file itself, so a rename between the check and the read changes nothing.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Untrusted("a symbolic link; a drop-in must be a regular file") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Untrusted("not a regular file")
        _trusted(info, "the file")
        _trusted(os.stat(os.path.dirname(path) or "."), "its directory")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def check_directory(path: str) -> None:
    """For a drop-in given as text: its directory, if there is one yet, as read_trusted
    would find it, so a preview does not pass what a reload will refuse."""
    directory = os.path.dirname(path) or "."
    if os.path.isdir(directory):
        _trusted(os.stat(directory), "its directory")


def _trusted(info: os.stat_result, what: str) -> None:
    """Only what root (or the daemon's own account) alone can have written: whoever can
    write a drop-in decides logins. The daemon runs as _twofad, so this holds for any uid."""
    if info.st_uid not in (0, os.geteuid()):
        raise Untrusted(f"{what} is owned by uid {info.st_uid}, not root or this daemon")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise Untrusted(f"{what} may be written by its group or others (chmod go-w)")
