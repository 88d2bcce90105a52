"""The open connections as a whole: the limits on them, who may open another, and who is
on the other end of each.

One connection (``connection``) knows its own framing and time limits; this module
knows all of them at once, so the cap on connections (per uid, and in all), the room
made by closing the longest idle, and the stop that lets replies out first are in one
place.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .access import Peer
from .scheduler import Scheduler

if TYPE_CHECKING:
    from .connection import ClientConnection

_PEERCRED = struct.Struct("3i")


@dataclass(frozen=True)
class Limits:
    idle_timeout: float = 30.0  # seconds a connection may sit between requests
    message_timeout: float = 5.0  # seconds a started message may take to finish
    write_timeout: float = 5.0  # seconds a reply may wait for the client to read it
    max_connections: int = 512
    max_per_uid: int = 32  # for uids other than root


def peer_credentials(sock: Any) -> Peer:
    pid, uid, gid = _PEERCRED.unpack(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    )
    return Peer(pid=pid, uid=uid, gid=gid)


# Who is on the other end of an accepted socket; tests hand in other uids.
Credentials = Callable[[Any], Peer]


class Connections:
    """The open connections, who may open another, and when the unprivileged are answered."""

    def __init__(self, limits: Limits, credentials: Credentials = peer_credentials) -> None:
        self.limits = limits
        self.credentials = credentials
        self.scheduler = Scheduler()
        self._open: set[ClientConnection] = set()  # until their sockets are closed
        self._per_uid: dict[int, int] = {}
        self._stopping = False

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, connection: ClientConnection) -> str | None:
        """Make room for `connection` and count it, or say why there is no room.

        A connection being closed still holds its socket and buffers, so it counts
        until it is gone; it is also the first to go when room is needed.
        """
        peer = connection.peer
        assert peer is not None
        if self._stopping:
            return "twofad is stopping; retry in a moment"
        if not self.has_room(peer.uid):
            return "too many connections from this user; close some and retry"
        if len(self._open) >= self.limits.max_connections:
            closing = [c for c in self._open if c.closing]
            idle = closing or [c for c in self._open if not c.busy]
            if not idle:
                return "twofad is busy; retry in a moment"
            min(idle, key=lambda c: c.last_active).abort()
        self._open.add(connection)
        self._per_uid[peer.uid] = self._per_uid.get(peer.uid, 0) + 1
        return None

    def has_room(self, uid: int) -> bool:
        """Whether `uid` may open another connection now (root always may)."""
        return uid == 0 or self._per_uid.get(uid, 0) < self.limits.max_per_uid

    def forget(self, connection: ClientConnection) -> None:
        self.scheduler.forget(connection)
        if connection not in self._open:
            return
        self._open.discard(connection)
        assert connection.peer is not None
        uid = connection.peer.uid
        self._per_uid[uid] -= 1
        if not self._per_uid[uid]:
            del self._per_uid[uid]

    async def close_all(self, timeout: float) -> None:
        """Refuse new clients, close the open ones, and give their replies `timeout`
        seconds to get out before the sockets are cut."""
        self._stopping = True
        self.scheduler.cancel()
        connections = list(self._open)
        for connection in connections:
            connection.close()
        closed = [connection.closed for connection in connections]
        if closed:
            _, late = await asyncio.wait(closed, timeout=timeout)
            if late:
                for connection in connections:
                    connection.abort()
                await asyncio.wait(closed, timeout=1.0)
