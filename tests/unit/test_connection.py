"""A connection's time limits and back-pressure, through a real socket pair.

The limits are shrunk to fractions of a second; each test asserts what the client sees
(replies, end of stream), not how long it took.
"""

from __future__ import annotations

import asyncio
import io
import socket
import time
from collections.abc import Awaitable, Callable

from pam_twofa import protocol as p
from twofad.access import Peer
from twofad.audit import Audit
from twofad.connection import ClientConnection, Responder
from twofad.connections import Connections, Limits

PING = p.encode_request("ping")


def _pong(peer: Peer, line: bytes) -> tuple[p.Response, bool]:
    request = p.decode_request(line)
    return p.Response({"pong": True, "uid": peer.uid}, id=request.id), False


async def _serve(
    sock: socket.socket, connections: Connections, respond: Responder = _pong
) -> ClientConnection:
    """Serve `sock` as the daemon serves an accepted client."""
    _, connection = await asyncio.get_running_loop().connect_accepted_socket(
        lambda: ClientConnection(respond, connections, Audit(stream=io.StringIO())), sock
    )
    return connection


def _run(
    limits: Limits,
    client: Callable[[socket.socket, ClientConnection], Awaitable[bytes]],
) -> tuple[bytes, Connections]:
    """Connect a socket pair, hand our end to `client`, return what it read."""
    connections = Connections(limits)

    async def main() -> bytes:
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        connection = await _serve(theirs, connections)
        try:
            return await asyncio.wait_for(client(ours, connection), 10)
        finally:
            ours.close()

    return asyncio.run(main()), connections


async def _read_to_end(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    received = b""
    while chunk := await loop.sock_recv(sock, 65536):
        received += chunk
    return received


def _replies(data: bytes) -> list[p.Response]:
    return [p.decode_response(line) for line in data.splitlines()]


def test_an_idle_connection_is_closed_without_a_word() -> None:
    async def client(sock: socket.socket, connection: ClientConnection) -> bytes:
        return await _read_to_end(sock)

    data, connections = _run(Limits(idle_timeout=0.05), client)
    assert data == b""
    assert len(connections) == 0


def test_activity_keeps_a_connection_open_past_the_idle_time() -> None:
    async def client(sock: socket.socket, connection: ClientConnection) -> bytes:
        loop = asyncio.get_running_loop()
        received = b""
        for _ in range(6):  # 6 × 0.05 s: longer in all than one idle time-out
            await loop.sock_sendall(sock, PING)
            received += await loop.sock_recv(sock, 65536)
            await asyncio.sleep(0.05)
        sock.shutdown(socket.SHUT_WR)
        return received + await _read_to_end(sock)

    data, _ = _run(Limits(idle_timeout=0.2), client)
    replies = _replies(data)
    assert len(replies) == 6
    assert all(reply.ok for reply in replies)


def test_a_message_never_finished_gets_an_error_then_the_close() -> None:
    async def client(sock: socket.socket, connection: ClientConnection) -> bytes:
        await asyncio.get_running_loop().sock_sendall(sock, b'{"v":1,"op":"pi')
        return await _read_to_end(sock)

    data, _ = _run(Limits(message_timeout=0.05), client)
    [reply] = _replies(data)
    assert (reply.code, reply.message) == (p.BAD_REQUEST, "message not finished in time")


def test_dribbling_a_message_does_not_extend_its_time() -> None:
    async def client(sock: socket.socket, connection: ClientConnection) -> bytes:
        loop = asyncio.get_running_loop()
        reader = asyncio.ensure_future(_read_to_end(sock))
        for byte in PING[:-1]:  # one byte every 20 ms, never the newline
            if reader.done():
                break
            try:
                await loop.sock_sendall(sock, bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break  # the daemon closed it between our look and our send: its reply is read
            await asyncio.sleep(0.02)
        return await reader

    data, _ = _run(Limits(idle_timeout=5, message_timeout=0.15), client)
    [reply] = _replies(data)
    assert reply.message == "message not finished in time"


def test_pipelined_requests_are_answered_in_order() -> None:
    async def client(sock: socket.socket, connection: ClientConnection) -> bytes:
        burst = b"".join(p.encode_request("ping", id=n) for n in range(200))
        await asyncio.get_running_loop().sock_sendall(sock, burst)
        sock.shutdown(socket.SHUT_WR)
        return await _read_to_end(sock)

    data, _ = _run(Limits(), client)
    assert [reply.id for reply in _replies(data)] == list(range(200))


def test_a_client_that_never_reads_is_held_back_then_dropped() -> None:
    held_back = False

    async def client(sock: socket.socket, connection: ClientConnection) -> bytes:
        nonlocal held_back
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        flood = memoryview(PING * 100_000)  # far more replies than the socket buffers hold
        while flood and not connection.closed.done():
            try:
                flood = flood[sock.send(flood) :]
            except BlockingIOError:
                held_back = True  # the daemon stopped reading: requests pile up on our side
            except ConnectionError:
                break
            await asyncio.sleep(0.001)
        await connection.closed
        return b""

    _, connections = _run(Limits(write_timeout=0.1), client)
    assert held_back
    assert len(connections) == 0


def test_a_client_that_reads_slowly_still_gets_every_reply() -> None:
    async def client(sock: socket.socket, connection: ClientConnection) -> bytes:
        loop = asyncio.get_running_loop()
        count = 5000  # ~150 KB of replies: more than the transport's buffer limit
        await loop.sock_sendall(
            sock, b"".join(p.encode_request("ping", id=n) for n in range(count))
        )
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := await loop.sock_recv(sock, 4096):
            received += chunk
            await asyncio.sleep(0)  # slower than the daemon writes
        return received

    data, _ = _run(Limits(write_timeout=5), client)
    assert [reply.id for reply in _replies(data)] == list(range(5000))


def test_a_client_sending_thousands_at_once_does_not_make_others_wait() -> None:
    """Each connection gets a few answers per turn: a ping that arrives while a flood of
    pipelined requests is being answered is answered long before the flood is."""
    order: list[int | None] = []

    def recording(peer: Peer, line: bytes) -> tuple[p.Response, bool]:
        request = p.decode_request(line)
        order.append(request.id)
        return p.Response({}, id=request.id), False

    connections = Connections(Limits())
    flood_size = 2000  # about 60 KB: all of it in the daemon's first read

    async def main() -> None:
        loop = asyncio.get_running_loop()
        (flooder, flooded), (honest, served) = socket.socketpair(), socket.socketpair()
        flooder.sendall(b"".join(p.encode_request("ping", id=n) for n in range(flood_size)))
        flooder.shutdown(socket.SHUT_WR)
        honest.sendall(p.encode_request("ping", id=flood_size))
        flooder.setblocking(False)
        honest.setblocking(False)
        first = await _serve(flooded, connections, recording)
        while not order:  # the flood is being answered
            await asyncio.sleep(0)
        await _serve(served, connections, recording)
        await asyncio.wait_for(loop.sock_recv(honest, 1000), 5)
        await asyncio.wait_for(_read_to_end(flooder), 10)
        await first.closed
        flooder.close()
        honest.close()

    asyncio.run(main())
    assert sorted(order) == list(range(flood_size + 1))
    assert order.index(flood_size) < 100


def test_the_clocks_stand_still_while_the_daemon_works_through_a_backlog() -> None:
    """Requests still being answered are the daemon's delay, not the client's: the
    message time-out of a partial line after them starts once they are answered."""

    def slow(peer: Peer, line: bytes) -> tuple[p.Response, bool]:
        time.sleep(0.002)  # a busy daemon: 200 answers take 0.4 s, the limit is 0.1 s
        request = p.decode_request(line)
        return p.Response({}, id=request.id), False

    async def main() -> bytes:
        ours, theirs = socket.socketpair()
        ours.sendall(b"".join(p.encode_request("ping", id=n) for n in range(200)) + b'{"v":1')
        ours.setblocking(False)
        connections = Connections(Limits(idle_timeout=0.1, message_timeout=0.1))
        await _serve(theirs, connections, slow)
        try:
            return await asyncio.wait_for(_read_to_end(ours), 10)
        finally:
            ours.close()

    *answers, last = _replies(asyncio.run(main()))
    assert [answer.id for answer in answers] == list(range(200))
    assert last.message == "message not finished in time"


def test_a_failure_while_answering_ends_the_connection_with_an_error() -> None:
    """Whatever goes wrong (the journal gone, say), the client hears of it and the
    connection ends: it is neither left hanging nor kept counted."""

    def failing(peer: Peer, line: bytes) -> tuple[p.Response, bool]:
        request = p.decode_request(line)
        if request.id == 6:
            raise OSError("the journal is not there")
        return p.Response({}, id=request.id), False

    connections = Connections(Limits(idle_timeout=5))

    async def main() -> bytes:
        ours, theirs = socket.socketpair()
        ours.sendall(b"".join(p.encode_request("ping", id=n) for n in range(10)))
        ours.setblocking(False)
        connection = await _serve(theirs, connections, failing)
        try:
            data = await asyncio.wait_for(_read_to_end(ours), 5)
            await asyncio.wait_for(connection.closed, 5)
            return data
        finally:
            ours.close()

    *answered, last = _replies(asyncio.run(main()))
    assert [reply.id for reply in answered] == [0, 1, 2, 3, 4, 5]
    assert last.code == p.INTERNAL
    assert len(connections) == 0


class _Held:
    """What Connections.admit looks at in a connection, and whether it was cut."""

    def __init__(self, uid: int, last_active: float, *, closing: bool = False) -> None:
        self.peer = Peer(pid=1, uid=uid, gid=uid)
        self.last_active = last_active
        self.closing = closing
        self.busy = False
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


def test_connections_being_closed_count_and_make_room_first() -> None:
    """One that sent garbage and never reads its error holds a socket until the write
    time-out: it counts against the caps, and it is the first to go for a new client."""
    connections = Connections(Limits(max_connections=2, max_per_uid=2))
    closing, idle = _Held(1000, last_active=5.0, closing=True), _Held(1000, last_active=1.0)
    assert connections.admit(closing) is None  # type: ignore[arg-type]
    assert connections.admit(idle) is None  # type: ignore[arg-type]
    assert "too many connections from this user" in str(
        connections.admit(_Held(1000, last_active=9.0))  # type: ignore[arg-type]
    )
    assert connections.admit(_Held(0, last_active=9.0)) is None  # type: ignore[arg-type]
    assert closing.aborted and not idle.aborted


def test_at_stop_replies_still_go_out_and_nobody_new_gets_in() -> None:
    connections = Connections(Limits())

    async def main() -> tuple[bytes, bytes]:
        loop = asyncio.get_running_loop()
        (first, first_end), (late, late_end) = socket.socketpair(), socket.socketpair()
        for sock in (first, late):
            sock.setblocking(False)

        await _serve(first_end, connections)
        await loop.sock_sendall(first, PING)
        await asyncio.sleep(0.05)
        await connections.close_all(timeout=5)
        answered = await asyncio.wait_for(_read_to_end(first), 5)
        await _serve(late_end, connections)
        refused = await asyncio.wait_for(_read_to_end(late), 5)
        first.close()
        late.close()
        return answered, refused

    answered, refused = asyncio.run(main())
    assert _replies(answered)[0].ok
    [reply] = _replies(refused)
    assert reply.code == p.BUSY and "stopping" in reply.message
    assert len(connections) == 0
