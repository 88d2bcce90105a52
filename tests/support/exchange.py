"""A server's conversation with one client, through a real Unix socket pair.

A socketpair is a real Unix socket, so SO_PEERCRED answers as it would on the daemon's
listening socket, but no file, no process and no event loop of a daemon are involved.
"""

from __future__ import annotations

import asyncio
import socket

from pam_twofa import protocol as p
from twofad.server import Server


def exchange(server: Server, payload: bytes, *, shut: bool = True) -> list[p.Response]:
    """Send `payload` through a socket pair to the server; read replies until it closes."""

    async def run() -> bytes:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        loop = asyncio.get_running_loop()
        _, connection = await loop.connect_accepted_socket(server.connection, theirs)
        ours.setblocking(False)
        await loop.sock_sendall(ours, payload)
        if shut:
            ours.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := await asyncio.wait_for(loop.sock_recv(ours, 65536), 5):
            received += chunk
        await asyncio.wait_for(connection.closed, 5)
        ours.close()
        return received

    data = asyncio.run(run())
    return [p.decode_response(line) for line in data.splitlines()]
