"""The listening sockets: the shared one, and root's own in a directory only root enters.

Binding is the one place a path of the file system meets the daemon's socket, so the
checks live here: a live daemon's socket is never taken over, a stale one is replaced,
and the root-only directory is made private or refused.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat

from pam_twofa.client import root_socket_path


class SocketInUse(Exception):
    """Another twofad answers on the socket path."""


def bind_unix_socket(path: str) -> socket.socket:
    """Listen on `path`, mode 0666: access is decided per peer uid, not by file mode.

    A stale socket file left by a crash is replaced; a live one means another daemon
    runs, and we refuse rather than steal its address.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o755, exist_ok=True)
    if os.path.exists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(path)
        except OSError as exc:
            raise SocketInUse(f"cannot use {path}: {exc.strerror}") from None
        else:
            raise SocketInUse(f"another twofad is already listening on {path}")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o111)
    try:
        sock.bind(path)
    finally:
        os.umask(previous)
    sock.listen(socket.SOMAXCONN)
    return sock


def bind_root_socket(shared_path: str) -> socket.socket:
    """Listen for root alone, in a directory beside `shared_path` that only we may enter.

    Made mode 0700 if missing; one that exists must already be ours and private, or
    another uid could reach (or replace) the socket the PAM stack trusts.
    """
    path = root_socket_path(shared_path)
    directory = os.path.dirname(path)
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory, 0o700)
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise SocketInUse(f"{directory}: not a private directory of twofad's user; not used")
    return bind_unix_socket(path)
