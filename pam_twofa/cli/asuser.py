"""Doing a small job with a person's own rights: a forked child that has become them.

Root writing or reading a file for a person could check the path itself — lstat each
component, compare owners — but every such check races the person changing the path,
and misses rules the kernel applies (ACLs, sticky directories, mount options, quotas,
root-squashed NFS homes). A child process that has dropped to the person's uid, gid and
supplementary groups lets the kernel make every check on the whole path exactly as for
the person: they can end up only with what they could have written or read themselves.

The parent talks to the child over two pipes in frames (a kind byte, a length, the
bytes), so a job can have several steps: the recovery-code writer first proves that it
can create its file, then waits for the text. A child never returns into the caller's
code: it runs the job and ends with os._exit. Setting the uid makes the kernel mark it
non-dumpable, so the person cannot trace it or read its memory (which, as a copy of the
parent's, may hold what the parent held), and only the two pipes stay open in it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass

OK = b"+"
ERROR = b"!"
_HEADER = struct.Struct(">cI")
MAX_FRAME = 32 * 1024 * 1024


class ChildFailed(Exception):
    """The child could not become the person, or ended without saying how its job went."""


@dataclass(frozen=True)
class Person:
    """Whose rights a job runs with: the account and every group it is in."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]

    @classmethod
    def of(cls, entry: pwd.struct_passwd) -> Person:
        groups = os.getgrouplist(entry.pw_name, entry.pw_gid)
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, tuple(sorted(set(groups))))

    @classmethod
    def named(cls, name: str) -> Person:
        """Raises KeyError when NSS knows no such account."""
        return cls.of(pwd.getpwnam(name))

    def is_caller(self) -> bool:
        """The caller already acts as this person: nothing to drop."""
        return os.geteuid() == self.uid

    def needs_child(self) -> bool:
        """Root acting for someone else: the job runs in a child that has become them."""
        return os.geteuid() == 0 and self.uid != 0


class Channel:
    """Framed messages over a pair of pipe ends."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd

    def send(self, kind: bytes, payload: bytes = b"") -> None:
        data = _HEADER.pack(kind, len(payload)) + payload
        view = memoryview(data)
        while view:
            view = view[os.write(self.write_fd, view) :]

    def receive(self) -> tuple[bytes, bytes] | None:
        """The next frame, or None when the other side closed its end (or broke a frame)."""
        header = self._exactly(_HEADER.size)
        if header is None:
            return None
        kind, length = _HEADER.unpack(header)
        if length > MAX_FRAME:
            return None
        payload = self._exactly(length)
        return None if payload is None else (kind, payload)

    def close_sending(self) -> None:
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    def close(self) -> None:
        self.close_sending()
        if self.read_fd >= 0:
            os.close(self.read_fd)
            self.read_fd = -1

    def _exactly(self, size: int) -> bytes | None:
        chunks = []
        left = size
        while left:
            chunk = os.read(self.read_fd, min(left, 1 << 16))
            if not chunk:
                return None
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)


class Child:
    """A forked process running `job(channel)` as `person`; the parent holds the other end.

    `job` reports through the channel; anything it raises is reported as an ERROR frame
    naming only the exception's type, because the message could hold what it read.
    """

    def __init__(self, person: Person, job: Callable[[Channel], None]) -> None:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # or the child's copy of a buffer could be written twice
        to_child_read, to_child_write = os.pipe()
        from_child_read, from_child_write = os.pipe()
        try:
            self.pid = os.fork()
        except OSError as exc:
            for fd in (to_child_read, to_child_write, from_child_read, from_child_write):
                os.close(fd)
            raise ChildFailed(
                f"cannot start a process acting as the user: {exc.strerror}"
            ) from None
        if self.pid == 0:  # the child: never returns
            channel = Channel(to_child_read, from_child_write)
            status = 0
            try:
                _isolate(keep=(to_child_read, from_child_write))
                _become(person)
                job(channel)
            except BaseException as exc:  # reported, then the child ends
                status = 1
                with contextlib.suppress(BaseException):  # if not, the parent sees the end
                    channel.send(ERROR, _failure(exc).encode())
            finally:
                os._exit(status)
        os.close(to_child_read)
        os.close(from_child_write)
        self.channel = Channel(from_child_read, to_child_write)

    def reply(self) -> bytes:
        """The payload of the child's next OK frame; raises ChildFailed with its error."""
        frame = self.channel.receive()
        if frame is None:
            raise ChildFailed("the process acting as the user ended without an answer")
        kind, payload = frame
        if kind != OK:
            raise ChildFailed(payload.decode("utf-8", "replace"))
        return payload

    def finish(self) -> None:
        """Close both ends and wait for the child, so no process is left behind."""
        self.channel.close()
        if self.pid > 0:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = -1


def run_as(person: Person, job: Callable[[], bytes]) -> bytes:
    """`job()` in a child that has become `person`; its bytes, or ChildFailed with why not.

    `job` signals a refusal by raising ChildFailed with a message safe to show.
    """

    def in_child(channel: Channel) -> None:
        try:
            result = job()
        except ChildFailed as exc:
            channel.send(ERROR, str(exc).encode())
            return
        channel.send(OK, result)

    child = Child(person, in_child)
    try:
        return child.reply()
    finally:
        child.finish()


def _become(person: Person) -> None:
    """Groups, then gid, then uid (after setuid nothing else could be changed), all three ids."""
    try:
        os.setgroups(list(person.groups))
        os.setresgid(person.gid, person.gid, person.gid)
        os.setresuid(person.uid, person.uid, person.uid)
    except OSError as exc:
        raise ChildFailed(f"cannot act as {person.name}: {exc.strerror}") from None
    if os.getresuid() != (person.uid,) * 3 or os.getresgid() != (person.gid,) * 3:
        raise ChildFailed(f"cannot act as {person.name}")
    os.umask(0o077)


def _isolate(keep: tuple[int, ...]) -> None:
    """Close every descriptor but `keep` (the daemon's socket, say); stdio to /dev/null."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd != null:
            os.dup2(null, fd)
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, max(os.sysconf("SC_OPEN_MAX"), low))  # /dev/null's own one too


def _failure(exc: BaseException) -> str:
    if isinstance(exc, ChildFailed):
        return str(exc)
    return f"the process acting as the user failed ({type(exc).__name__})"
