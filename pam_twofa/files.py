"""Writing a file for a person: theirs, private from the first byte, and never half done.

A file is opened before what goes into it exists: recovery codes are regenerated only
once their file is known to be writable, so a bad name, a missing directory or an owner
that cannot be set never leaves a person with new codes nobody saw and old ones dead.
"""

from __future__ import annotations

import contextlib
import os
import secrets


class FileRefused(Exception):
    """The file cannot be written where asked."""


class PrivateFile:
    """A .txt file to be written once, mode 0600, owned by uid:gid (root writing for a user).

    Opening creates a temporary file with its final mode and owner next to the target;
    `commit` writes and renames it over the target, `discard` removes it. Everything
    happens relative to the directory opened once, so a symbolic link swapped in
    meanwhile cannot redirect the write.
    """

    def __init__(self, path: str, uid: int | None = None, gid: int | None = None) -> None:
        if not path.endswith(".txt"):
            raise FileRefused(f"{path}: the file name must end in .txt")
        self.path = path
        directory, self._name = os.path.split(os.path.abspath(path))
        try:
            self._dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise FileRefused(f"{directory}: {exc.strerror}") from None
        self._temporary = f".{self._name}.{secrets.token_hex(4)}.tmp"
        try:
            self._fd = os.open(
                self._temporary,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=self._dir_fd,
            )
        except OSError as exc:
            os.close(self._dir_fd)
            raise FileRefused(f"{path}: {exc.strerror}") from None
        try:
            if uid is not None:
                os.fchown(self._fd, uid, gid if gid is not None else -1)
        except OSError as exc:
            self.discard()
            raise FileRefused(f"{path}: cannot give it to its owner: {exc.strerror}") from None

    def commit(self, text: str) -> None:
        try:
            with os.fdopen(self._fd, "w", encoding="utf-8") as handle:
                self._fd = -1
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(self._temporary, self._name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
        except OSError as exc:
            self.discard()
            raise FileRefused(f"{self.path}: {exc.strerror}") from None
        os.close(self._dir_fd)
        self._dir_fd = -1

    def discard(self) -> None:
        """Remove the temporary file; nothing was written to the target."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._dir_fd >= 0:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._temporary, dir_fd=self._dir_fd)
            os.close(self._dir_fd)
            self._dir_fd = -1
