"""The listener drains the kernel's queue itself: root's connection never waits behind a
crowd of others'. Through a real listening socket and real client sockets.

Every socket here is the test's own uid, so each client binds an abstract address that
names who it stands for, and the stand-in for SO_PEERCRED reads it from the peer name.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
from pathlib import Path

from pam_twofa import protocol as p
from twofad import listener as listener_module
from twofad.access import Peer
from twofad.audit import Audit
from twofad.connection import ClientConnection
from twofad.connections import Connections, Limits

MALLORY = 1500


def _peer_from_name(sock: socket.socket) -> Peer:
    name = sock.getpeername()
    uid = MALLORY if isinstance(name, bytes) and name.startswith(b"\0mallory") else 0
    return Peer(pid=1, uid=uid, gid=uid)


def _client(path: str, who: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(f"\0{who}-{os.getpid()}-{id(sock)}")
    sock.setblocking(False)
    try:
        sock.connect(path)
    except BlockingIOError:  # the backlog is full: this one never got in
        sock.close()
        raise
    return sock


def _pong(peer: Peer, line: bytes) -> tuple[p.Response, bool]:
    request = p.decode_request(line)
    return p.Response({"uid": peer.uid}, id=request.id), False


def _listening(tmp_path: Path) -> tuple[str, socket.socket]:
    path = str(tmp_path / "l.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(socket.SOMAXCONN)
    return path, sock


def test_roots_connection_is_served_past_a_queue_full_of_anothers(tmp_path: Path) -> None:
    """Mallory's 1,000 connections are in the queue before root's; root is answered
    while most of them are still waiting or were turned away."""
    path, listening = _listening(tmp_path)
    connections = Connections(Limits(max_per_uid=32), _peer_from_name)

    async def main() -> tuple[dict[str, object], int]:
        loop = asyncio.get_running_loop()
        crowd = []
        for _ in range(1000):
            try:
                crowd.append(_client(path, "mallory"))
            except BlockingIOError:
                break
        root = _client(path, "root")
        audit = Audit(stream=io.StringIO())
        listener = listener_module.Listener(
            listening,
            lambda peer: ClientConnection(_pong, connections, audit, peer),
            connections,
            audit,
        )
        listener.start()
        await loop.sock_sendall(root, p.encode_request("ping", id=7))
        reply = p.decode_response(await asyncio.wait_for(loop.sock_recv(root, 4096), 5))
        served = len(connections)
        listener.close()
        await connections.close_all(1)
        for sock in [*crowd, root]:
            sock.close()
        return reply.data, served

    data, served = asyncio.run(main())
    listening.close()
    assert data == {"uid": 0}
    assert served <= listener_module.ADMITS_PER_TURN * 4 + 1, served


def test_the_peer_is_read_once_per_connection(tmp_path: Path) -> None:
    """The listener reads SO_PEERCRED at the accept and hands it on: not again per transport."""
    path, listening = _listening(tmp_path)
    reads: list[object] = []

    def counting(sock: socket.socket) -> Peer:
        reads.append(sock.getpeername())
        return _peer_from_name(sock)

    connections = Connections(Limits(max_per_uid=32), counting)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        audit = Audit(stream=io.StringIO())
        listener = listener_module.Listener(
            listening,
            lambda peer: ClientConnection(_pong, connections, audit, peer),
            connections,
            audit,
        )
        listener.start()
        for who in ("root", "mallory"):
            sock = _client(path, who)
            await loop.sock_sendall(sock, p.encode_request("ping", id=1))
            assert await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
            sock.close()
        listener.close()
        await connections.close_all(1)

    asyncio.run(main())
    listening.close()
    assert len(reads) == 2


def test_a_uid_past_its_parking_spaces_is_told_busy(tmp_path: Path) -> None:
    path, listening = _listening(tmp_path)
    connections = Connections(Limits(max_per_uid=32), _peer_from_name)

    async def main() -> list[bytes]:
        crowd = [_client(path, "mallory") for _ in range(listener_module.PARKED_PER_UID + 10)]
        audit = Audit(stream=io.StringIO())
        listener = listener_module.Listener(
            listening,
            lambda peer: ClientConnection(_pong, connections, audit, peer),
            connections,
            audit,
        )
        listener._accept_ready()  # one drain of the queue, before any is admitted
        parked = listener.parked
        answers = []
        for sock in crowd[-10:]:
            answers.append(
                await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 4096), 5)
            )
        listener.close()
        await connections.close_all(1)
        for sock in crowd:
            sock.close()
        assert parked == listener_module.PARKED_PER_UID
        return answers

    answers = asyncio.run(main())
    listening.close()
    assert all(p.decode_response(answer.splitlines()[0]).code == p.BUSY for answer in answers)
