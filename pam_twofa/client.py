"""A blocking client for the twofad socket, for the PAM hook and the command-line tools.

It speaks through `_socket`, the C module under `socket`: the hook runs at every login
and `socket` would add milliseconds of imports (enum, selectors) it does not need.
"""

import _socket
import os

from . import protocol as p
from .errors import TwofaError
from .vocabulary import DEFAULT_SOCKET, MAILER_WAIT, ROOT_DIRECTORY

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_TIMEOUT = 5.0
# Requests the daemon must not act on once we stop waiting: a code at a login, whose
# outcome fail= has decided by then. We wait this much longer for their answer.
EXPIRING_OPERATIONS = frozenset({"verify", "email.send"})
# Answered only once something else has been waited for: the mailer's delivery.
SLOW_OPERATIONS = dict.fromkeys(("email.send", "email.set", "email.test"), MAILER_WAIT + 5.0)
EXPIRY_GRACE = 1.0
# How a daemon that closed the connection shows itself: EPIPE as we send, ECONNRESET
# (a close with our request unread) or the end of the stream as we read.
_EPIPE = 32  # (the errno module would cost the hook an import)
_CLOSED_ERRNOS = frozenset({_EPIPE, 104})  # and ECONNRESET


def default_socket_path() -> str:
    """The command-line tools' default: $TWOFA_SOCKET, else the system socket.

    Never the hook's: it runs inside su and sudo, whose environment the caller sets, and
    a socket of the caller's choosing would answer "skip" for them.
    """
    return os.environ.get("TWOFA_SOCKET") or DEFAULT_SOCKET


def root_socket_path(path: str) -> str:
    """Where the same daemon listens for root alone: `root/` beside the shared socket.

    The PAM stack runs as root. A directory only root can enter keeps every other uid
    out of that socket's queue of connections, so a user opening and closing
    connections in a loop on the shared socket cannot make a login wait in line.
    """
    head, _, name = path.rpartition("/")
    return f"{head or '.'}/{ROOT_DIRECTORY}/{name}"


def _root_directory_trusted(path: str) -> bool:
    """The root-only directory is used only if it is what twofad makes: a directory
    (no symbolic link) that no one but its owner may enter, owned by root or by the
    owner of the directory holding it (twofad's user, without systemd)."""
    head, _, _ = path.rpartition("/")
    try:
        own = os.lstat(head)
        parent = os.stat(head.rpartition("/")[0] or "/")
    except OSError:
        return False
    private = own.st_mode & 0o170077 == 0o040000  # a directory, nothing for group/others
    return private and own.st_uid in (0, parent.st_uid)


class ClientError(Exception):
    """Base of every failure a client may see."""


class Unavailable(ClientError):
    """The daemon cannot be reached, or did not answer in time."""


class RequestFailed(ClientError, TwofaError):
    """The daemon answered with an error; ``code`` is its stable error code."""

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"


class _Closed(ConnectionResetError):
    """The daemon ended the stream before answering."""


class _Unread(Exception):
    """The daemon closed the connection on a request it never answered."""


class Client:
    """One connection, used for as many requests as the caller likes, one at a time."""

    def __init__(self, path: "str | None" = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = path or DEFAULT_SOCKET
        self.timeout = timeout
        self._sock: Any = None
        self._lines = p.LineBuffer()
        self._received: list[bytes] = []
        self._next_id = 1

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _connect(self) -> "Any":
        sock = self._connect_as_root() if os.geteuid() == 0 else None
        if sock is not None:
            return self._opened(sock)
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        sock.settimeout(self.timeout)
        try:
            self._connect_patiently(sock, self.path)
        except TimeoutError:
            sock.close()
            raise Unavailable(f"twofad at {self.path} did not accept in time") from None
        except OSError as exc:
            sock.close()
            raise Unavailable(f"cannot reach twofad at {self.path}: {exc.strerror}") from None
        return self._opened(sock)

    def _opened(self, sock: "Any") -> "Any":
        self._sock = sock
        self._lines = p.LineBuffer()
        self._received = []
        return sock

    def _connect_as_root(self) -> "Any":
        """The root-only socket, if this daemon has one; None means use the shared one."""
        path = root_socket_path(self.path)
        if not _root_directory_trusted(path):
            return None
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        sock.settimeout(self.timeout)
        try:
            self._connect_patiently(sock, path)
        except OSError:  # not there (an older twofad), or not listening: the shared one
            sock.close()
            return None
        return sock

    def _connect_patiently(self, sock: "Any", path: str) -> None:
        """Connect, retrying while the daemon's backlog is full (EAGAIN on Unix sockets).

        A burst of logins can fill the backlog for a moment; that is not the daemon
        being down, and must not turn into refused logins under fail=secure.
        """
        import time

        deadline = time.monotonic() + self.timeout
        pause = 0.005
        while True:
            try:
                sock.connect(path)
                return
            except BlockingIOError:
                if time.monotonic() + pause > deadline:
                    raise TimeoutError from None
                time.sleep(pause)
                pause = min(pause * 2, 0.1)

    def _open_socket(self) -> "Any":
        """The connection, renewed if the daemon closed it while we were idle."""
        sock = self._sock
        if sock is not None and not self._received:
            # Non-blocking for the peek: with a timeout set, Python would wait out the
            # whole timeout for data that is not meant to come.
            sock.setblocking(False)
            try:
                if sock.recv(1, _socket.MSG_PEEK) == b"":
                    self.close()
            except BlockingIOError:
                pass
            except OSError:
                self.close()
            finally:
                if self._sock is not None:
                    sock.settimeout(self.timeout)
        return self._sock or self._connect()

    def request(self, op: str, **fields: "Any") -> "dict[str, Any]":
        """Send one request and return its data, or raise RequestFailed / Unavailable.

        A request of EXPIRING_OPERATIONS carries the moment we stop waiting for it, so
        a daemon that reads it later does not act on it; we wait a moment longer than
        that for the answer, so that an answer the daemon did act on is never missed.

        The daemon closes a connection it holds no request of (idle, or making room)
        without reading what is still on its way, so a close that lands as we send is
        answered by sending once more, on a new connection: an unread line was never
        acted on. A time-out is not retried, since the daemon may still act on it.
        """
        request_id = self._next_id
        self._next_id += 1
        wait = self.timeout + SLOW_OPERATIONS.get(op, 0.0)
        if op in EXPIRING_OPERATIONS:
            import time

            fields["expires"] = round(time.monotonic() + self.timeout, 3)
            wait += EXPIRY_GRACE
        try:
            message = p.encode_request(op, id=request_id, **fields)
        except p.ProtocolError as exc:
            raise RequestFailed(exc.code, exc.message) from None
        try:
            response = self._exchange(message, wait)
        except _Unread:
            response = self._exchange(message, wait, last_try=True)
        if response.code in (p.BUSY, p.EXPIRED):  # refused at the door, or read too late:
            self.close()  # as good as unreachable, and nothing was done
            raise Unavailable(response.message)
        if response.id != request_id:
            self.close()
            raise RequestFailed(p.INTERNAL, "twofad answered a different request")
        if not response.ok:
            raise RequestFailed(response.code or p.INTERNAL, response.message)
        return response.data

    def _exchange(self, message: bytes, wait: float, *, last_try: bool = False) -> "p.Response":
        """Send `message`, read its answer; raise _Unread if the daemon closed on it."""
        sock = self._open_socket()
        answered = False
        try:
            # MSG_NOSIGNAL: a daemon that closed first must be an error here, not a
            # SIGPIPE that kills sshd or login, which do not all ignore the signal.
            sock.sendall(message, _socket.MSG_NOSIGNAL)
            sock.settimeout(wait)
            line = self._read_line(sock)
            answered = True
            sock.settimeout(self.timeout)
            return p.decode_response(line)
        except TimeoutError:
            self.close()
            raise Unavailable(f"twofad did not answer within {wait:g} s") from None
        except OSError as exc:
            refusal = self._refusal_left(sock) if exc.errno == _EPIPE else None
            self.close()
            if refusal is not None:  # turned away at the door before we wrote: say why
                return refusal
            closed_on_us = exc.errno in _CLOSED_ERRNOS or isinstance(exc, _Closed)
            if closed_on_us and not answered and not self._lines.pending and not last_try:
                raise _Unread from None
            raise Unavailable(f"connection to twofad failed: {exc.strerror}") from None
        except p.ProtocolError as exc:
            self.close()
            raise RequestFailed(exc.code, exc.message) from None

    def _refusal_left(self, sock: "Any") -> "p.Response | None":
        """The "busy" a daemon sent before closing on us, if it is there to read."""
        try:
            sock.setblocking(False)
            lines = list(self._lines.feed(sock.recv(65536)))
            response = p.decode_response(lines[0]) if lines else None
        except (OSError, p.ProtocolError):
            return None
        return response if response is not None and response.code == p.BUSY else None

    def _read_line(self, sock: "Any") -> bytes:
        while not self._received:
            chunk = sock.recv(65536)
            if not chunk:
                raise _Closed(0, "twofad closed the connection")
            self._received.extend(self._lines.feed(chunk))
        return self._received.pop(0)
