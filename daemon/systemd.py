"""The two things twofad needs from systemd: inherited sockets and readiness notices.

systemd-python is used when importable; otherwise the documented plain protocols
(sd_listen_fds(3), sd_notify(3)) are spoken directly, so the daemon needs neither.
"""

from __future__ import annotations

import os
import socket

SD_LISTEN_FDS_START = 3


def inherited_sockets() -> list[socket.socket]:
    """The listening sockets systemd passed us (socket activation), if it passed any."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return []
    try:
        count = int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return []
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    sockets = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + max(0, min(count, 16))):
        os.set_inheritable(fd, False)
        sockets.append(socket.socket(fileno=fd))
    return sockets


def notify(state: str) -> bool:
    """Tell the service manager `state` (READY=1, STOPPING=1, ...); False if no one listens."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    try:
        from systemd import daemon
    except ImportError:
        return _notify_plain(address, state)
    return bool(daemon.notify(state))


def _notify_plain(address: str, state: str) -> bool:
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True
