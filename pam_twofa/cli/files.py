"""A person's files, written and read with that person's rights, never where they point root.

Writing. A file is opened before what goes into it exists: recovery codes are
regenerated only once their file is known to be writable, so a bad name, a missing
directory or a directory the person may not write never leaves them with new codes
nobody saw and old ones dead. Root writing for someone else does it in a child process
that has become them (uid, gid and every supplementary group; see asuser.py), in two
steps: the child creates the temporary file next to the target (O_CREAT | O_EXCL |
O_NOFOLLOW, mode 0600 from the first byte), reserves room for the text so a full disk
or quota shows now rather than later, and says so; the parent asks twofad for the new
codes only then, and hands the text over; the child writes, fsyncs and renames it over
the target. If the codes never come, the child removes its temporary file; if the
parent dies, the child sees the pipe close and does the same. The kernel makes every
permission check on the whole path as for the person, so a symbolic link they made to
a directory of root's reaches nothing they could not write themselves — no walk of our
own to race. The child path is chosen over lchown/fchown after a root-made file
because it also keeps ACLs, sticky directories, quotas and root-squashed NFS homes
right. A caller writing their own file (twofa, or root for root) needs no child.

A target that is a symbolic link is refused whoever writes: the rename would replace
the link, not write where it points, which is not what the person asked for.

Reading. A person's own file (~/.google_authenticator) is read the same way, by a child
that has become them: it must be a regular file of theirs, is never opened if it is a
FIFO or a device (lstat first; O_NONBLOCK and O_NOFOLLOW on the open, then fstat), and
is read up to a bound. A file the caller names that decides for other people (a
users.oath: whoever writes it picks everyone's secrets) is read only if it is the
caller's or root's, reached by a walk from / that refuses every symbolic link and every
directory not owned by root or the caller.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat

from .asuser import OK, Channel, Child, ChildFailed, Person, run_as

_COMMIT = b"C"
RESERVED_BYTES = 4096  # recovery codes and their words: well under 1 KiB


class FileRefused(Exception):
    """The file cannot be written or read where asked; the message says why."""


# --- writing ------------------------------------------------------------------------------


class PrivateFile:
    """A .txt file to be written once, mode 0600, as `owner` (None: the caller's own file).

    Opening proves the file can be written (its temporary file exists, with room for the
    text); `commit` writes and renames it over the target; `discard` removes it. The
    target is never touched until `commit`.
    """

    def __init__(self, path: str, owner: Person | None = None) -> None:
        if not path.endswith(".txt"):
            raise FileRefused(f"{path}: the file name must end in .txt")
        self.path = path
        self._local: _TempFile | None = None
        self._child: Child | None = None
        if owner is None or owner.is_caller():
            self._local = _TempFile(path)
        elif owner.needs_child():
            self._child = _writer_as(owner, path)
        else:
            raise FileRefused(
                f"{path}: only root can write a file for {owner.name} "
                "(they can use: twofa recovery-codes --regenerate --output FILE)"
            )

    def commit(self, text: str) -> None:
        if self._local is not None:
            self._local.commit(text)
            return
        child = self._child
        if child is None:
            raise FileRefused(f"{self.path}: already written or discarded")
        self._child = None
        try:
            child.channel.send(_COMMIT, text.encode("utf-8"))
            child.channel.close_sending()
            child.reply()
        except ChildFailed as exc:
            raise FileRefused(_about(self.path, str(exc))) from None
        except OSError as exc:  # the child is gone: its pipe broke
            raise FileRefused(f"{self.path}: {exc.strerror}") from None
        finally:
            child.finish()

    def discard(self) -> None:
        """Remove the temporary file; nothing was written to the target."""
        if self._local is not None:
            self._local.discard()
        if self._child is not None:
            child, self._child = self._child, None
            child.finish()  # the child sees its pipe close, removes the file, and ends


def _writer_as(owner: Person, path: str) -> Child:
    """A child that has become `owner`, holding the opened temporary file for `path`."""

    def job(channel: Channel) -> None:
        try:
            temporary = _TempFile(path)
        except FileRefused as exc:
            raise ChildFailed(str(exc)) from None
        try:
            channel.send(OK)
            frame = channel.receive()
        except BaseException:
            temporary.discard()
            raise
        if frame is None or frame[0] != _COMMIT:
            temporary.discard()
            return
        try:
            temporary.commit(frame[1].decode("utf-8"))
        except FileRefused as exc:
            raise ChildFailed(str(exc)) from None
        channel.send(OK)

    try:
        child = Child(owner, job)
    except ChildFailed as exc:  # no process could be started
        raise FileRefused(_about(path, str(exc))) from None
    try:
        child.reply()
    except ChildFailed as exc:
        child.finish()
        raise FileRefused(_about(path, str(exc))) from None
    return child


class _TempFile:
    """The temporary file beside the target, created and written by whoever runs this.

    Everything happens relative to the directory opened once, so a symbolic link
    swapped in meanwhile cannot redirect the rename.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        directory, self._name = os.path.split(os.path.abspath(path))
        try:
            self._dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise FileRefused(f"{directory}: {exc.strerror}") from None
        self._fd = -1
        self._temporary = ""  # set once this process has created it: only then removed
        name = f".{self._name}.{secrets.token_hex(4)}.tmp"
        try:
            self._refuse_odd_target()
            self._fd = os.open(
                name,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=self._dir_fd,
            )
            self._temporary = name
            _reserve(self._fd)
        except FileRefused:
            self.discard()
            raise
        except OSError as exc:
            self.discard()
            raise FileRefused(f"{path}: {exc.strerror}") from None

    def _refuse_odd_target(self) -> None:
        try:
            info = os.stat(self._name, dir_fd=self._dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(info.st_mode):
            raise FileRefused(f"{self.path} is a symbolic link: name a file, not a link")
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(f"{self.path} exists and is not a regular file")

    def commit(self, text: str) -> None:
        data = text.encode("utf-8")
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            os.ftruncate(self._fd, len(data))  # give back the room reserved beyond the text
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
            os.rename(self._temporary, self._name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
            self._temporary = ""
        except OSError as exc:
            self.discard()
            raise FileRefused(f"{self.path}: {exc.strerror}") from None
        except BaseException:
            self.discard()
            raise
        with contextlib.suppress(OSError):  # the rename to disk; the file is there either way
            os.fsync(self._dir_fd)
        os.close(self._dir_fd)
        self._dir_fd = -1

    def discard(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._dir_fd >= 0:
            if self._temporary:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._temporary, dir_fd=self._dir_fd)
            os.close(self._dir_fd)
            self._dir_fd = -1


def _reserve(fd: int) -> None:
    """Take the room for the text now: no space or no quota refuses before codes change."""
    try:
        os.posix_fallocate(fd, 0, RESERVED_BYTES)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise


# --- reading ------------------------------------------------------------------------------


def read_own_file(path: str, owner: Person, limit: int) -> bytes:
    """`owner`'s regular file at `path`, at most `limit` bytes, read with their rights."""

    def job() -> bytes:
        try:
            return _read_regular(path, None, path, frozenset((owner.uid,)), "its user", limit)
        except FileRefused as exc:
            raise ChildFailed(str(exc)) from None

    if not owner.needs_child():
        return _read_regular(path, None, path, frozenset((owner.uid,)), "its user", limit)
    try:
        return run_as(owner, job)
    except ChildFailed as exc:
        raise FileRefused(_about(path, str(exc))) from None


def read_callers_file(path: str, limit: int) -> bytes:
    """A file of root's or the caller's that decides for other people, at most `limit` bytes.

    Walked from / one directory at a time (O_NOFOLLOW | O_DIRECTORY): a symbolic link,
    or a directory owned by anyone but root or the caller, anywhere on the way is refused.
    """
    trusted = frozenset((0, os.geteuid()))
    whose = "root or by you (it holds other people's secrets)"
    absolute = os.path.normpath(os.path.join(os.getcwd(), path))
    parts = [part for part in absolute.split("/") if part]
    if not parts:
        raise FileRefused(f"{path} is not a regular file")
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    walked = ""
    try:
        for part in parts[:-1]:
            _owned_by(fd, trusted, path, walked or "/", whose)
            walked += "/" + part
            try:
                next_fd = os.open(
                    part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd
                )
            except OSError as exc:
                raise FileRefused(_step_refused(fd, part, path, walked, exc)) from None
            os.close(fd)
            fd = next_fd
        _owned_by(fd, trusted, path, walked or "/", whose)
        return _read_regular(parts[-1], fd, path, trusted, whose, limit)
    finally:
        os.close(fd)


def _owned_by(fd: int, owners: frozenset[int], path: str, where: str, whose: str) -> None:
    if os.fstat(fd).st_uid not in owners:
        raise FileRefused(f"{path}: the directory {where} is not owned by {whose}")


def _step_refused(fd: int, part: str, path: str, walked: str, exc: OSError) -> str:
    try:
        if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
            return f"{path}: {walked} is a symbolic link: name the real path"
    except OSError:
        pass
    if exc.errno == errno.ENOENT:
        return f"{path}: {walked} does not exist"
    return f"{path}: {walked}: {exc.strerror}"


def _read_regular(
    name: str, dir_fd: int | None, path: str, owners: frozenset[int], whose: str, limit: int
) -> bytes:
    """Never opens a FIFO, device or link: lstat first, then open without following or
    waiting, then fstat that what was opened is the regular file lstat saw."""
    try:
        seen = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        raise FileRefused(f"{path} does not exist") from None
    except OSError as exc:
        raise FileRefused(f"{path}: {exc.strerror}") from None
    if stat.S_ISLNK(seen.st_mode):
        raise FileRefused(f"{path} is a symbolic link (refused: name the file itself)")
    if not stat.S_ISREG(seen.st_mode):
        raise FileRefused(f"{path} is not a regular file")
    if seen.st_uid not in owners:
        raise FileRefused(f"{path} is not owned by {whose}")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        raise FileRefused(f"{path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) != (seen.st_dev, seen.st_ino) or not stat.S_ISREG(
            info.st_mode
        ):
            raise FileRefused(f"{path} changed while it was being opened")
        if info.st_uid not in owners:
            raise FileRefused(f"{path} is not owned by {whose}")
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise FileRefused(f"{path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise FileRefused(f"{path} is larger than {limit} bytes")
    return data


def _about(path: str, message: str) -> str:
    """A message from the child names the file already, or is given its name."""
    return message if path in message else f"{path}: {message}"
