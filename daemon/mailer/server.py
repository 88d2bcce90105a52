"""The mailer's socket: one message in, one answer out, from allowed local users only.

Anyone may connect (the socket is 0666, so twofad's sandbox needs no group), but the
kernel's word on the peer (SO_PEERCRED) decides: root and the users of `allow_users`
hand over messages, everyone else is told no and nothing is sent, so no local user
can use the mailer as a relay.  Each connection carries one JSON line
(`to`, `subject`, `body`), checked before anything is sent: one plain address, a
subject of one line, a body of bounded text.  A thread per connection, a bounded
number at once, a read time-out.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import socket
import socketserver
import struct
import sys
import threading
from collections.abc import Callable
from typing import Any

from pam_twofa.errors import BadRequest
from pam_twofa.fields import validate_email_address

from .config import MailerConfig
from .delivery import NotDelivered, compose, deliver

MAX_LINE = 64 * 1024
MAX_SUBJECT = 200
MAX_BODY = 32 * 1024
READ_TIMEOUT = 10.0
AT_ONCE = 8  # connections served at the same time; more are told to try again

Deliver = Callable[[MailerConfig, Any], None]


def allowed_uids(config: MailerConfig) -> frozenset[int]:
    uids = {0}
    for name in config.allow_users:
        try:
            uids.add(pwd.getpwnam(name).pw_uid)
        except KeyError:
            print(f"twofa-mailer: allow_users: no such user {name!r}", file=sys.stderr)
    return frozenset(uids)


def peer_uid(connection: socket.socket) -> int:
    raw = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", raw)
    return int(uid)


def checked(line: bytes) -> tuple[str, str, str]:
    """The message's address, subject and body, or BadRequest saying what is wrong."""
    try:
        message = json.loads(line)
    except ValueError:
        raise BadRequest("the message is not JSON") from None
    if not isinstance(message, dict) or set(message) != {"to", "subject", "body"}:
        raise BadRequest("expected an object with to, subject and body")
    to = validate_email_address(message["to"], "to")
    subject, body = message["subject"], message["body"]
    if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT:
        raise BadRequest(f"subject must be 1 to {MAX_SUBJECT} characters")
    if not subject.isprintable():
        raise BadRequest("subject must be one line of printable characters")
    if not isinstance(body, str) or not 0 < len(body) <= MAX_BODY:
        raise BadRequest(f"body must be 1 to {MAX_BODY} characters")
    if any(not c.isprintable() and c not in "\n\t" for c in body):
        raise BadRequest("body may hold only printable characters, tabs and new lines")
    return to, subject, body


class MailerServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, config: MailerConfig, send: Deliver = deliver) -> None:
        self.config = config
        self.uids = allowed_uids(config)
        self.send = send
        self.slots = threading.BoundedSemaphore(AT_ONCE)
        self.final_path = path
        super().__init__(f"{path}.new", _Handler)

    def server_activate(self) -> None:
        """Listening first, then under its name: whoever finds the socket can connect
        (between bind and listen, a connection would be refused)."""
        super().server_activate()
        os.replace(self.server_address, self.final_path)  # type: ignore[arg-type]
        self.server_address = self.final_path


class _Handler(socketserver.BaseRequestHandler):
    server: MailerServer

    def handle(self) -> None:
        connection: socket.socket = self.request
        if peer_uid(connection) not in self.server.uids:
            self._answer({"ok": False, "error": "not allowed"})
            return
        if not self.server.slots.acquire(blocking=False):
            self._answer({"ok": False, "error": "busy; try again"})
            return
        try:
            self._answer(self._one_message(connection))
        finally:
            self.server.slots.release()

    def _one_message(self, connection: socket.socket) -> dict[str, Any]:
        connection.settimeout(READ_TIMEOUT)
        try:
            line = _read_line(connection)
            to, subject, body = checked(line)
        except BadRequest as exc:
            return {"ok": False, "error": exc.message}
        except (TimeoutError, OSError):
            return {"ok": False, "error": "the message did not arrive in time"}
        config = self.server.config
        try:
            self.server.send(config, compose(config, to, subject, body))
        except NotDelivered as exc:
            print(f"twofa-mailer: to {to}: not delivered: {exc}", file=sys.stderr, flush=True)
            return {"ok": False, "error": str(exc)}
        print(f"twofa-mailer: to {to}: delivered", file=sys.stderr, flush=True)
        return {"ok": True}

    def _answer(self, reply: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # gone: twofad counts it a failed delivery
            self.request.sendall(json.dumps(reply).encode() + b"\n")


def _read_line(connection: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data:
        chunk = connection.recv(8192)
        if not chunk:
            raise BadRequest("the message ended before its end of line")
        data += chunk
        if len(data) > MAX_LINE:
            raise BadRequest(f"the message is larger than {MAX_LINE} bytes")
    return data.split(b"\n", 1)[0]
