"""Root first, then every other uid in turn: through real socket pairs and a real loop.

Socket pairs report the test's own uid, so the connections here are told who they
are by a stand-in for SO_PEERCRED that maps each daemon-side socket to a peer.
"""

from __future__ import annotations

import asyncio
import io
import socket
import time

from pam_twofa import protocol as p
from twofad.access import Peer
from twofad.audit import Audit
from twofad.connection import ClientConnection
from twofad.connections import Connections, Limits

ROOT, MALLORY, BOB = 0, 1500, 1501


class _Recorder:
    """Answers every line after `cost` seconds of work, noting whose line it was."""

    def __init__(self, cost: float = 0.0) -> None:
        self.cost = cost
        self.order: list[tuple[int, int | None]] = []

    def __call__(self, peer: Peer, line: bytes) -> tuple[p.Response, bool]:
        request = p.decode_request(line)
        if self.cost:
            end = time.perf_counter() + self.cost
            while time.perf_counter() < end:  # busy, as rendering a QR code is
                pass
        self.order.append((peer.uid, request.id))
        return p.Response({}, id=request.id), False


def _connections(uids: dict[int, int]) -> Connections:
    """Connections whose peer is looked up by the daemon-side socket's file number."""
    return Connections(
        Limits(max_per_uid=64), lambda sock: Peer(pid=1, uid=uids[sock.fileno()], gid=1)
    )


async def _serve(sock: socket.socket, connections: Connections, respond: _Recorder) -> None:
    await asyncio.get_running_loop().connect_accepted_socket(
        lambda: ClientConnection(respond, connections, Audit(stream=io.StringIO())), sock
    )


async def _read_replies(sock: socket.socket, count: int) -> int:
    loop = asyncio.get_running_loop()
    received = b""
    while received.count(b"\n") < count:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), 10)
        assert chunk, "the daemon closed the connection"
        received += chunk
    return received.count(b"\n")


def _burst(count: int, first_id: int = 0) -> bytes:
    return b"".join(p.encode_request("ping", id=first_id + n) for n in range(count))


def test_roots_line_is_answered_before_a_backlog_of_another_uid() -> None:
    """Eight connections of one user with 40 costly lines each are waiting; a login's
    line sent after them is answered within the first few of theirs."""
    respond = _Recorder(cost=0.002)
    uids: dict[int, int] = {}
    connections = _connections(uids)

    async def main() -> None:
        flooders = []
        for _ in range(8):
            ours, theirs = socket.socketpair()
            uids[theirs.fileno()] = MALLORY
            ours.sendall(_burst(40))
            ours.setblocking(False)
            await _serve(theirs, connections, respond)
            flooders.append(ours)
        while len(respond.order) < 3:  # the flood is being answered
            await asyncio.sleep(0)
        login, served = socket.socketpair()
        uids[served.fileno()] = ROOT
        login.setblocking(False)
        await _serve(served, connections, respond)
        await asyncio.get_running_loop().sock_sendall(login, p.encode_request("ping", id=999))
        await _read_replies(login, 1)
        for flooder in flooders:
            await _read_replies(flooder, 40)
            flooder.close()
        login.close()

    asyncio.run(main())
    position = respond.order.index((ROOT, 999))
    assert len(respond.order) == 8 * 40 + 1
    assert position < 20, f"root was answered after {position} of the flood's lines"


def test_uids_take_turns_however_many_connections_each_has() -> None:
    """Mallory's 16 connections together get about as many turns as Bob's one."""
    respond = _Recorder(cost=0.0005)
    uids: dict[int, int] = {}
    connections = _connections(uids)

    async def main() -> None:
        clients: list[tuple[socket.socket, socket.socket]] = []
        for uid, count in [(MALLORY, 16), (BOB, 1)]:
            for _ in range(count):
                ours, theirs = socket.socketpair()
                uids[theirs.fileno()] = uid
                ours.sendall(_burst(50))
                ours.setblocking(False)
                clients.append((ours, theirs))
        # Every backlog is in place, and every connection is served from the same turn.
        await asyncio.gather(*(_serve(theirs, connections, respond) for _, theirs in clients))
        for ours, _ in clients:
            await _read_replies(ours, 50)
            ours.close()

    asyncio.run(main())
    bobs = [n for n, (uid, _) in enumerate(respond.order) if uid == BOB]
    assert len(bobs) == 50
    mallorys_before_bob_done = sum(1 for uid, _ in respond.order[: bobs[-1]] if uid == MALLORY)
    assert mallorys_before_bob_done <= 60, mallorys_before_bob_done


def test_a_connection_that_ends_leaves_the_queue() -> None:
    """A client gone with lines still waiting costs nothing more, and the rest carry on."""
    respond = _Recorder(cost=0.001)
    uids: dict[int, int] = {}
    connections = _connections(uids)

    async def main() -> None:
        quitter, quitter_end = socket.socketpair()
        stayer, stayer_end = socket.socketpair()
        for ours, theirs in ((quitter, quitter_end), (stayer, stayer_end)):
            uids[theirs.fileno()] = MALLORY
            ours.sendall(_burst(200))
            ours.setblocking(False)
            await _serve(theirs, connections, respond)
        quitter.close()
        await _read_replies(stayer, 200)
        stayer.close()
        while len(connections):
            await asyncio.sleep(0.01)

    asyncio.run(main())
    assert len(connections.scheduler) == 0
    assert len(respond.order) < 400
