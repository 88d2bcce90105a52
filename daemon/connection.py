"""One client connection: bytes in, whole lines answered in order, limits enforced.

A protocol object rather than a stream task, because this is the daemon's hot path: a
request that arrives whole is decoded, answered and written back inside one callback,
with no task to wake, no future to resolve and no timer to start and cancel per read.
The time limits share one timer per connection, armed lazily: activity only moves a
deadline later, so the timer fires at most once per idle period, sees where the
deadline has moved to, and re-arms there.

Everything a client can do wrong ends here, in an error reply (where one can still be
delivered) and a closed connection: an overlong or malformed line, a message that never
finishes, a client that never reads its replies.  Idle connections are closed after a
while, and when the connection cap is reached the longest-idle one makes room, so a
crowd of silent clients cannot keep an honest login out.
"""

from __future__ import annotations

import asyncio
import contextlib
import traceback
from collections import deque
from collections.abc import Callable

from pam_twofa import protocol as p
from pam_twofa.protocol import LineBuffer, ProtocolError, Response

from .access import Peer
from .audit import Audit
from .connections import Connections

LINES_PER_TURN = 4  # root's requests on one connection answered before the others get a turn

# Answers one line from a peer; the flag says the connection must close (it sent garbage).
Answer = tuple[Response, bool]  # the reply, and whether the connection must close
# A responder answers a line at once, or hands back a future when the answer needs a
# store that may be slow (a database on another host): the connection then answers
# nothing else until it is done, so replies keep the order of their requests.
Responder = Callable[[Peer, bytes], "Answer | asyncio.Future[Answer]"]


class ClientConnection(asyncio.Protocol):
    """Serve one client until it closes, misbehaves, or idles too long."""

    def __init__(
        self,
        respond: Responder,
        connections: Connections,
        audit: Audit,
        peer: Peer | None = None,
    ) -> None:
        """`peer`: who is on the other end, when the listener has read it already."""
        self._respond = respond
        self._connections = connections
        self._limits = connections.limits
        self._scheduler = connections.scheduler
        self._audit = audit
        self._loop = asyncio.get_running_loop()
        self._buffer = LineBuffer()
        self._waiting: deque[bytes] = deque()  # whole lines held while the client won't read
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.peer = peer
        self.last_active = self._loop.time()
        self._started: float | None = None  # when the unfinished message began
        self._blocked_since: float | None = None  # replies backed up since
        self._closing_since: float | None = None
        self._reading = True
        self._turn: asyncio.Handle | None = None  # answering the rest of what was received
        self._in_flight: asyncio.Future[Answer] | None = None  # an answer being worked out
        self.closed: asyncio.Future[None] = self._loop.create_future()

    @property
    def closing(self) -> bool:
        return self._closing_since is not None

    @property
    def busy(self) -> bool:
        """Replies are waiting for this client: it is not idle, whatever its last read."""
        return self._blocked_since is not None or bool(self._waiting) or self._answering

    @property
    def _answering(self) -> bool:
        return self._in_flight is not None

    # --- the transport's callbacks ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if self.peer is None:
            try:
                self.peer = self._connections.credentials(transport.get_extra_info("socket"))
            except OSError:
                transport.abort()
                return
        refusal = self._connections.admit(self)
        if refusal is not None:
            self._send(p.error_response(p.BUSY, refusal))
            self.close()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._closing_since is not None:
            return
        try:
            lines = list(self._buffer.feed(data))
        except ProtocolError as exc:
            self._send(p.error_response(exc.code, exc.message))
            with contextlib.suppress(Exception):
                self._audit.event("protocol", error=exc.code, peer_uid=self._peer.uid)
            self.close()
            return
        now = self.last_active = self._loop.time()
        # The clock of an unfinished message runs from its first byte, so a client
        # dribbling one byte at a time cannot keep a message open for ever.
        if not self._buffer.pending:
            self._started = None
        elif lines or self._started is None:
            self._started = now
        self._waiting.extend(lines)
        self._answer_waiting()
        self._arm()

    def eof_received(self) -> bool:
        if not self._waiting and self._buffer.pending:
            self._send(p.error_response(p.BAD_REQUEST, "incomplete message"))
        self.close()
        return True  # we close ourselves, once the replies are out

    def pause_writing(self) -> None:
        """The client is not reading: stop reading its requests until it catches up."""
        self._blocked_since = self._loop.time()
        self._read_only_when_idle()
        self._arm()

    def resume_writing(self) -> None:
        self._blocked_since = None
        self._answer_waiting()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.forget(self)
        self._waiting.clear()
        for pending in (self._timer, self._turn):
            if pending is not None:
                pending.cancel()
        self._timer = self._turn = None
        if not self.closed.done():
            self.closed.set_result(None)

    # --- ending ----------------------------------------------------------------------

    def close(self) -> None:
        """Close once the replies are out; the write time-out aborts a client that won't read."""
        if self._closing_since is not None or self._transport is None:
            return
        self._closing_since = self._loop.time()
        self._waiting.clear()
        self._scheduler.forget(self)
        self._transport.close()
        self._arm()

    def abort(self) -> None:
        self._waiting.clear()
        self._scheduler.forget(self)
        if self._transport is not None:
            self._transport.abort()

    # --- answering -------------------------------------------------------------------

    @property
    def _peer(self) -> Peer:
        assert self.peer is not None
        return self.peer

    def _answer_waiting(self) -> None:
        """Answer what was received, root's at once and everyone else's in their turn.

        Root (the PAM stack) gets a few answers per connection per turn, so a client
        that sends thousands at once cannot make the other logins wait; everyone
        else's lines wait for the scheduler, which serves them after root's.
        """
        self._turn = None
        if self._peer.uid != 0:
            if self._may_answer():
                self._scheduler.ready(self._peer.uid, self)
            self._read_only_when_idle()
            return
        for _ in range(LINES_PER_TURN):
            if not self._may_answer() or not self._answer_next():
                break
        if self._may_answer() and self._turn is None:
            self._turn = self._loop.call_soon(self._answer_waiting)
        self._read_only_when_idle()

    def answer_one(self) -> bool:
        """The scheduler's turn: answer one line; say whether another may follow."""
        if self._may_answer() and self._answer_next():
            self._read_only_when_idle()
            self._arm()
        return self._may_answer()

    def _answer_next(self) -> bool:
        """Answer the oldest line; False once the connection has ended over it."""
        line = self._waiting.popleft()
        try:
            answer = self._respond(self._peer, line)
            if isinstance(answer, asyncio.Future):
                self._in_flight = answer
                answer.add_done_callback(self._answered)
                return False  # the next line waits for this one's answer
            return self._deliver(answer)
        except Exception:  # never a wedged connection: say so, if we still can, and end
            self._fail()
            return False

    def _deliver(self, answer: Answer) -> bool:
        response, fatal = answer
        self._send(response)
        if fatal:
            self.close()
        return not fatal

    def _answered(self, answer: asyncio.Future[Answer]) -> None:
        """An answer worked out elsewhere is ready: send it, then go on with the rest."""
        self._in_flight = None
        if self.closed.done() or self._closing_since is not None or answer.cancelled():
            return
        try:
            if not self._deliver(answer.result()):
                return
        except Exception:
            self._fail()
            return
        self._answer_waiting()
        self._arm()

    def _may_answer(self) -> bool:
        assert self._transport is not None
        return (
            bool(self._waiting)
            and self._in_flight is None
            and self._blocked_since is None
            and self._closing_since is None
            and not self._transport.is_closing()  # the client is gone: spend nothing more
        )

    def _fail(self) -> None:
        with contextlib.suppress(Exception):
            self._audit.note(f"internal error answering a client: {traceback.format_exc(limit=6)}")
        with contextlib.suppress(Exception):
            self._send(p.error_response(p.INTERNAL, "internal error; see the twofad log"))
        self.close()

    def _read_only_when_idle(self) -> None:
        """Read more only when all received is answered and the answers are taken."""
        assert self._transport is not None
        wanted = not self._waiting and self._in_flight is None and self._blocked_since is None
        if self._closing_since is not None or self.closed.done() or wanted == self._reading:
            return
        self._reading = wanted
        if wanted:
            # The client's clocks stood still while we were not reading from it.
            self.last_active = self._loop.time()
            if self._started is not None:
                self._started = self.last_active
            self._transport.resume_reading()
        else:
            self._transport.pause_reading()

    def _send(self, response: Response) -> None:
        assert self._transport is not None
        try:
            encoded = p.encode_response(response)
        except ProtocolError as exc:  # a reply that cannot travel is an error we report
            self._audit.note(f"reply not sent: {exc.message}")
            encoded = p.encode_response(
                p.error_response(p.INTERNAL, "the reply was too large to send", response.id)
            )
        self._transport.write(encoded)

    # --- time limits -----------------------------------------------------------------

    def _deadline(self) -> float:
        limits = self._limits
        if self._closing_since is not None:
            return self._closing_since + limits.write_timeout
        if self._blocked_since is not None:
            return self._blocked_since + limits.write_timeout
        if self._answering or (
            self._waiting and (self._turn is not None or self._scheduler.is_queued(self))
        ):
            # the client waits for us, not we for it
            return self._loop.time() + limits.idle_timeout
        deadline = self.last_active + limits.idle_timeout
        if self._started is not None:
            deadline = min(deadline, self._started + limits.message_timeout)
        return deadline

    def _arm(self) -> None:
        """Make sure the timer fires no later than the current deadline."""
        deadline = self._deadline()
        if self._timer is not None:
            if self._timer.when() <= deadline:
                return  # it fires early, finds the deadline moved, and re-arms
            self._timer.cancel()
        self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.closed.done():
            return
        if self._loop.time() < self._deadline():
            self._arm()
        elif self._closing_since is not None or self._blocked_since is not None:
            self.abort()  # a client that stopped reading must not hold the socket open
        elif self._started is not None:  # a message begun and never finished: say so
            self._send(p.error_response(p.BAD_REQUEST, "message not finished in time"))
            self.close()
        else:
            self.close()
