"""The web console's drop-in (policy.d/web-console.yaml): its text, and writing it safely.

The page says who must give a code; `twofactl require` turns that into rules in a
drop-in of its own, so the policy an administrator wrote by hand is never rewritten.
The file is JSON (which YAML reads as it is) after a comment saying who wrote it: the
commands are standard library only, and read back with `json` exactly what they wrote.

Its rules: `web-console-users` (the users listed) and `web-console-groups` (members of
the groups listed), each `action: required`; one rule per kind, since a rule's
conditions all have to hold, and a list of users and one of groups mean either.  Both
lists empty, the file holds no rule.

A new file is written next to the old one (mode 0644, root's, from its first byte),
flushed to disk and renamed over it, so the daemon reads either the old rules or the
new, never half of them; what was there before is kept, to be put back if the daemon
will not load the new.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets

from ..vocabulary import MAX_POLICY_BYTES
from .files import FileRefused

USERS_RULE = "web-console-users"
GROUPS_RULE = "web-console-groups"
HEADER = (
    "# Written by twofactl require (the web console's page), which replaces it whole;\n"
    "# edit policy.yaml instead: its rules come first and win.\n"
)
FILE_MODE = 0o644
DIRECTORY_MODE = 0o755


class DropinError(FileRefused):
    """The drop-in cannot be read or written as asked; the message says why."""


def render(users: list[str], groups: list[str]) -> str:
    """The drop-in's text for these users and groups."""
    rules = []
    if users:
        rules.append({"name": USERS_RULE, "users": users, "action": "required"})
    if groups:
        rules.append({"name": GROUPS_RULE, "groups": groups, "action": "required"})
    return HEADER + json.dumps({"rules": rules}, indent=2, ensure_ascii=False) + "\n"


def parse(text: str, path: str) -> tuple[list[str], list[str]]:
    """The users and groups a drop-in this module wrote requires."""
    body = "".join(line for line in text.splitlines(True) if not line.startswith("#"))
    if not body.strip():
        return [], []
    try:
        named = {rule["name"]: rule for rule in json.loads(body)["rules"]}
        users = [str(name) for name in named.pop(USERS_RULE, {}).get("users", [])]
        groups = [str(name) for name in named.pop(GROUPS_RULE, {}).get("groups", [])]
        ours = not named
    except (ValueError, KeyError, TypeError, AttributeError):
        ours = False
    if not ours:
        raise DropinError(
            f"{path} is not as twofactl require writes it (edited by hand?); "
            "`twofactl require set` replaces it whole"
        )
    return users, groups


def read(path: str) -> str | None:
    """The drop-in's text, or None if there is none; never through a symbolic link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        why = "a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
        raise DropinError(f"cannot read {path}: {why}") from None
    try:
        with os.fdopen(fd, "rb") as dropin:
            data = dropin.read(MAX_POLICY_BYTES + 1)
    except OSError as exc:
        raise DropinError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DropinError(f"cannot read {path}: not UTF-8") from None


def write(path: str, text: str) -> None:
    """Replace the drop-in with `text` whole: a temporary file beside it, renamed over it."""
    directory = os.path.dirname(path) or "."
    try:
        os.mkdir(directory, DIRECTORY_MODE)
        os.chmod(directory, DIRECTORY_MODE)  # whatever the umask took away
    except FileExistsError:
        pass
    except OSError as exc:
        raise DropinError(f"cannot make {directory}: {exc.strerror}") from None
    # A leading dot: the include patterns' `*` never matches it, so no half-written
    # file is ever read as a drop-in.
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}")
    try:
        fd = os.open(
            temporary,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            FILE_MODE,
        )
    except OSError as exc:
        raise DropinError(f"cannot write in {directory}: {exc.strerror}") from None
    try:
        try:
            os.fchmod(fd, FILE_MODE)
            if os.geteuid() == 0:
                os.fchown(fd, 0, 0)  # the daemon believes only root's drop-ins
            data = memoryview(text.encode("utf-8"))
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temporary, path)
    except OSError as exc:
        _remove(temporary)
        raise DropinError(f"cannot write {path}: {exc.strerror}") from None
    _sync(directory)


def restore(path: str, previous: str | None) -> None:
    """Put the drop-in back as it was: its old text, or no file if there was none."""
    if previous is not None:
        write(path, previous)
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise DropinError(f"cannot remove {path}: {exc.strerror}") from None
    _sync(os.path.dirname(path) or ".")


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _sync(directory: str) -> None:
    """The rename itself on disk, so a crash cannot bring the old rules back."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
