"""Writing a file for a person: theirs, private from the first byte, and never half done."""

from __future__ import annotations

import os
import secrets


class FileRefused(Exception):
    """The file cannot be written where asked."""


def write_private(path: str, text: str, uid: int | None = None, gid: int | None = None) -> None:
    """Write `text` to `path`, mode 0600, owned by uid:gid (root writing for a user).

    The content goes to a temporary file created with its final mode next to the
    target, then is renamed over it. Everything happens relative to the directory
    opened once, so a symbolic link swapped in meanwhile cannot redirect the write.
    """
    if not path.endswith(".txt"):
        raise FileRefused(f"{path}: the file name must end in .txt")
    directory, name = os.path.split(os.path.abspath(path))
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise FileRefused(f"{directory}: {exc.strerror}") from None
    temporary = f".{name}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(
            temporary,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=dir_fd,
        )
        try:
            if uid is not None:
                os.fchown(fd, uid, gid if gid is not None else -1)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            os.unlink(temporary, dir_fd=dir_fd)
            raise
        os.rename(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError as exc:
        raise FileRefused(f"{path}: {exc.strerror}") from None
    finally:
        os.close(dir_fd)
