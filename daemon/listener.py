"""Taking connections off the listening socket: root's at once, everyone else's in turn.

The kernel's queue of connections waiting to be accepted is one line for everybody. A
local user opening and closing connections in a loop keeps it full, and asyncio's own
server accepts the whole queue in one go, building a transport for each connection
before anything else runs: root's connection, a login waiting on its answer, stood
behind thousands of doomed ones for seconds. So twofad accepts for itself:

- the queue is drained quickly, with nothing but the accept and the peer's credentials
  per connection, so root's connection is reached within one drain of the queue;
- root's connections are served at once;
- everyone else's are parked, a few per uid, and admitted a few per turn, uid after
  uid, by a timer due at once, which asyncio runs after the I/O callbacks of the same
  loop iteration (as the scheduler does); a uid with no room left (its connection cap,
  or its parking spaces) gets "busy" and the close, which costs one send.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections import OrderedDict, deque
from collections.abc import Callable

from pam_twofa import protocol as p

from .access import Peer
from .audit import Audit
from .connection import ClientConnection
from .connections import Connections

ACCEPTS_PER_TURN = 64  # taken off the kernel's queue per turn: about 2 ms of the loop at most
ADMITS_PER_TURN = 8  # parked connections given a transport per turn, across uids
PARKED_PER_UID = 16
PARKED_AT_MOST = 1024
RETRY_AFTER_EMFILE = 0.1  # seconds without accepting when file descriptors run out
_BUSY = p.encode_response(p.error_response(p.BUSY, "too many connections; retry in a moment"))


class Listener:
    """Accept from `sock` into `connections`, serving each with `protocol_factory`."""

    def __init__(
        self,
        sock: socket.socket,
        protocol_factory: Callable[[Peer], ClientConnection],
        connections: Connections,
        audit: Audit,
    ) -> None:
        self._sock = sock
        self._factory = protocol_factory
        self._connections = connections
        self._audit = audit
        self._loop = asyncio.get_running_loop()
        self._parked: OrderedDict[int, deque[tuple[socket.socket, Peer]]] = OrderedDict()
        self._parked_count = 0
        self._admitting: asyncio.TimerHandle | None = None
        self._paused: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._closed = False
        sock.setblocking(False)

    def start(self) -> None:
        self._loop.add_reader(self._sock.fileno(), self._accept_ready)

    def close(self) -> None:
        """Stop accepting; parked connections are refused, as at any stop."""
        self._closed = True
        self._loop.remove_reader(self._sock.fileno())
        for pending in (self._admitting, self._paused):
            if pending is not None:
                pending.cancel()
        for queue in self._parked.values():
            for parked, _ in queue:
                _refuse(parked)
        self._parked.clear()
        self._parked_count = 0

    @property
    def parked(self) -> int:
        return self._parked_count

    # --- the kernel's queue ------------------------------------------------------------

    def _accept_ready(self) -> None:
        for _ in range(ACCEPTS_PER_TURN):
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._pause_accepting(exc)
                    return
                if exc.errno == errno.ECONNABORTED:
                    continue
                raise
            conn.setblocking(False)
            try:
                peer = self._connections.credentials(conn)
            except OSError:
                conn.close()
                continue
            if peer.uid == 0:
                self._serve(conn, peer)
            else:
                self._park(conn, peer)

    def _pause_accepting(self, exc: OSError) -> None:
        """Out of file descriptors: stop a moment rather than spin on the same error."""
        with contextlib.suppress(Exception):
            self._audit.note(f"not accepting for a moment: {exc.strerror}")
        self._loop.remove_reader(self._sock.fileno())
        self._paused = self._loop.call_later(RETRY_AFTER_EMFILE, self._resume_accepting)

    def _resume_accepting(self) -> None:
        self._paused = None
        if not self._closed:
            self.start()

    # --- serving -----------------------------------------------------------------------

    def _serve(self, conn: socket.socket, peer: Peer) -> None:
        """A transport for `conn`; its protocol is told the peer read at the accept."""
        task = self._loop.create_task(
            self._loop.connect_accepted_socket(lambda: self._factory(peer), conn)
        )
        self._tasks.add(task)
        task.add_done_callback(self._served)

    def _served(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            with contextlib.suppress(Exception):  # the client was gone before we began
                self._audit.note(f"a connection could not be served: {task.exception()!r}")

    # --- everyone else, in turn ----------------------------------------------------------

    def _park(self, conn: socket.socket, peer: Peer) -> None:
        queue = self._parked.get(peer.uid)
        if queue is None:
            queue = self._parked[peer.uid] = deque()
        if len(queue) >= PARKED_PER_UID or self._parked_count >= PARKED_AT_MOST:
            _refuse(conn)
            return
        queue.append((conn, peer))
        self._parked_count += 1
        if self._admitting is None:
            self._admitting = self._loop.call_at(self._loop.time(), self._admit_parked)

    def _admit_parked(self) -> None:
        """Give a few parked connections a transport, one uid after another."""
        self._admitting = None
        admitted = 0
        for uid in list(self._parked):
            if admitted >= ADMITS_PER_TURN:
                break
            queue = self._parked.pop(uid)
            conn, peer = queue.popleft()
            self._parked_count -= 1
            if self._connections.has_room(uid):
                self._serve(conn, peer)
                admitted += 1
            else:
                _refuse(conn)
            if queue:
                self._parked[uid] = queue  # to the back of the line
        if self._parked and not self._closed:
            self._admitting = self._loop.call_at(self._loop.time(), self._admit_parked)


def _refuse(conn: socket.socket) -> None:
    """Say "busy" if the client can hear it without our waiting, and close."""
    with contextlib.suppress(OSError):
        conn.send(_BUSY, socket.MSG_NOSIGNAL | socket.MSG_DONTWAIT)
    conn.close()
