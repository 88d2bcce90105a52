"""The socket side of twofad: framing, limits, peer credentials and dispatch.

Everything a client can do wrong ends here, in an error reply (where one can still be
delivered) and a closed connection: an overlong or malformed line, a message that never
finishes, a client that never reads its replies.  Idle connections are closed after a
while, and when the connection cap is reached the longest-idle one makes room, so a
crowd of silent clients cannot keep an honest login out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pam_twofa import protocol as p
from pam_twofa.protocol import LineBuffer, ProtocolError, Request, Response

from . import access, policy_file
from .access import AccessDenied, Peer
from .audit import Audit
from .policy import Policy
from .policy_file import PolicyError
from .service import Service, ServiceError
from .totp import TotpParams

READ_CHUNK = 64 * 1024
_PEERCRED = struct.Struct("3i")


@dataclass(frozen=True)
class Limits:
    idle_timeout: float = 30.0  # seconds a connection may sit between requests
    message_timeout: float = 5.0  # seconds a started message may take to finish
    write_timeout: float = 5.0  # seconds a reply may wait for the client to read it
    max_connections: int = 512
    max_per_uid: int = 32  # for uids other than root


@dataclass
class _Connection:
    peer: Peer
    writer: asyncio.StreamWriter
    busy: bool = False
    last_active: float = field(default_factory=time.monotonic)


def peer_credentials(sock: socket.socket) -> Peer:
    pid, uid, gid = _PEERCRED.unpack(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    )
    return Peer(pid=pid, uid=uid, gid=gid)


class Server:
    def __init__(
        self,
        service: Service,
        audit: Audit,
        *,
        load_policy: Callable[[], Policy] | None = None,
        diagnostics: Callable[[], dict[str, Any]] | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.diagnostics = diagnostics or dict
        self.service = service
        self.audit = audit
        self.load_policy = load_policy or Policy
        self.limits = limits or Limits()
        self._connections: dict[asyncio.StreamWriter, _Connection] = {}
        self._handlers: dict[str, Callable[..., dict[str, Any]]] = {
            "ping": self._ping,
            "check": self._check,
            "verify": self._verify,
            "enroll.begin": self._enroll_begin,
            "enroll.confirm": self._enroll_confirm,
            "status": self._status,
            "list": self._list,
            "disable": self._disable,
            "unlock": self._unlock,
            "recovery.regenerate": self._regenerate,
            "resync": self._resync,
            "reload": self._reload,
            "policy.check": self._policy_check,
            "policy.explain": self._policy_explain,
            "secret.show": self._show_secret,
            "import": self._import,
            "diagnose": self._diagnose,
        }
        missing = set(p.OPERATIONS) - set(self._handlers)
        assert not missing, f"operations without a handler: {missing}"

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    # --- connections -------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client until it closes, misbehaves, or idles too long."""
        sock = writer.get_extra_info("socket")
        try:
            peer = peer_credentials(sock)
        except OSError:
            writer.close()
            return
        refusal = self._admit(peer)
        if refusal:
            await self._send_and_close(writer, p.error_response(p.BUSY, refusal))
            return
        connection = _Connection(peer, writer)
        self._connections[writer] = connection
        clean = False
        try:
            await self._serve(reader, connection)
            clean = True
        except (ConnectionError, TimeoutError, OSError):
            pass
        finally:
            self._connections.pop(writer, None)
            await self._close(writer, clean)

    async def _close(self, writer: asyncio.StreamWriter, clean: bool) -> None:
        """Close, or abort: a client that stopped reading must not hold the socket open."""
        if not clean:
            writer.transport.abort()
            return
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), self.limits.write_timeout)
        except (TimeoutError, ConnectionError, OSError):
            writer.transport.abort()

    def _admit(self, peer: Peer) -> str | None:
        """Make room for a new connection, or say why there is none."""
        if peer.uid != 0:
            mine = sum(1 for c in self._connections.values() if c.peer.uid == peer.uid)
            if mine >= self.limits.max_per_uid:
                return "too many connections from this user; close some and retry"
        if len(self._connections) < self.limits.max_connections:
            return None
        idle = [c for c in self._connections.values() if not c.busy]
        if not idle:
            return "twofad is busy; retry in a moment"
        oldest = min(idle, key=lambda c: c.last_active)
        self._connections.pop(oldest.writer, None)
        oldest.writer.transport.abort()
        return None

    async def _serve(self, reader: asyncio.StreamReader, connection: _Connection) -> None:
        buffer = LineBuffer()
        started: float | None = None  # when the unfinished message began
        while True:
            data = await self._read(reader, started)
            if data is None:
                if started is not None:  # a message begun and never finished: say so
                    await self._reply(
                        connection,
                        p.error_response(p.BAD_REQUEST, "message not finished in time"),
                    )
                return
            if not data:
                if buffer.pending:
                    await self._reply(
                        connection, p.error_response(p.BAD_REQUEST, "incomplete message")
                    )
                return
            try:
                lines = list(buffer.feed(data))
            except ProtocolError as exc:
                await self._reply(connection, p.error_response(exc.code, exc.message))
                self.audit.event("protocol", error=exc.code, peer_uid=connection.peer.uid)
                return
            connection.last_active = time.monotonic()
            # The clock of an unfinished message runs from its first byte, so a client
            # dribbling one byte at a time cannot keep a message open for ever.
            if not buffer.pending:
                started = None
            elif lines or started is None:
                started = connection.last_active
            for line in lines:
                connection.busy = True
                try:
                    response, fatal = self._respond(connection.peer, line)
                    await self._reply(connection, response)
                finally:
                    connection.busy = False
                if fatal:
                    return

    async def _read(self, reader: asyncio.StreamReader, started: float | None) -> bytes | None:
        """The next chunk, b"" at end of stream, or None when the client took too long."""
        timeout = self.limits.idle_timeout
        if started is not None:
            timeout = min(timeout, started + self.limits.message_timeout - time.monotonic())
        try:
            # asyncio.timeout, unlike wait_for, makes no task per read: this is the hot path.
            async with asyncio.timeout(max(timeout, 0.0)):
                return await reader.read(READ_CHUNK)
        except TimeoutError:
            return None

    async def _reply(self, connection: _Connection, response: Response) -> None:
        writer = connection.writer
        try:
            encoded = p.encode_response(response)
        except ProtocolError as exc:  # a reply that cannot travel is an error we report
            self.audit.note(f"reply not sent: {exc.message}")
            encoded = p.encode_response(
                p.error_response(p.INTERNAL, "the reply was too large to send", response.id)
            )
        writer.write(encoded)
        if writer.transport.get_write_buffer_size() > 0:  # the client is slow to read
            async with asyncio.timeout(self.limits.write_timeout):
                await writer.drain()

    async def _send_and_close(self, writer: asyncio.StreamWriter, response: Response) -> None:
        with contextlib.suppress(Exception):
            writer.write(p.encode_response(response))
            await asyncio.wait_for(writer.drain(), self.limits.write_timeout)
        writer.close()

    # --- requests ----------------------------------------------------------------

    def _respond(self, peer: Peer, line: bytes) -> tuple[Response, bool]:
        """Answer one line; the flag says the connection must close (it sent garbage)."""
        try:
            request = p.decode_request(line)
        except ProtocolError as exc:
            self.audit.event("protocol", error=exc.code, peer_uid=peer.uid, peer_pid=peer.pid)
            return p.error_response(exc.code, exc.message), True
        return self.dispatch(peer, request), False

    def dispatch(self, peer: Peer, request: Request) -> Response:
        fields = request.fields
        context = {
            "user": fields.get("user"),
            "service": fields.get("service"),
            "rhost": fields.get("rhost"),
            "peer_uid": peer.uid,
            "peer_pid": peer.pid,
        }
        try:
            role = access.authorize(
                peer, request, self.service.directory, self.service.policy.admin_groups
            )
            data = self._handlers[request.op](role, **fields)
        except (AccessDenied, ServiceError) as exc:
            self.audit.event(request.op, error=exc.code, **context)
            return p.error_response(exc.code, exc.message, request.id)
        except Exception:
            self.audit.note(f"internal error in {request.op}: {traceback.format_exc(limit=8)}")
            self.audit.event(request.op, error=p.INTERNAL, **context)
            return p.error_response(p.INTERNAL, "internal error; see the twofad log", request.id)
        if request.op != "ping":
            self.audit.event(
                request.op,
                result=data.get("result") or data.get("action") or "ok",
                method=data.get("method"),
                retry_after=data.get("retry_after"),
                **context,
            )
        return Response(data, id=request.id)

    # --- handlers: unpack fields, call the service, shape the reply ----------------

    def _ping(self, role: str) -> dict[str, Any]:
        return {"pong": True, "protocol": p.PROTOCOL_VERSION}

    def _check(self, role: str, user: str, **where: str) -> dict[str, Any]:
        return {"user": user, **self.service.check(user, **where)}

    def _verify(self, role: str, user: str, code: str, **where: str) -> dict[str, Any]:
        return {"user": user, **self.service.verify(user, code, **where)}

    def _enroll_begin(
        self, role: str, user: str, replace: bool = False, code: str | None = None
    ) -> dict[str, Any]:
        return self.service.enroll_begin(
            user, replace=replace, code=code, needs_proof=role == access.SELF
        )

    def _show_secret(self, role: str, user: str, code: str) -> dict[str, Any]:
        return self.service.show_secret(user, code)

    def _import(
        self,
        role: str,
        user: str,
        secret: str,
        algorithm: str = "SHA1",
        digits: int = 6,
        period: int = 30,
        recovery_codes: list[str] | None = None,
        replace: bool = False,
    ) -> dict[str, Any]:
        params = TotpParams(algorithm, digits, period)
        return self.service.import_secret(
            user, secret, params, recovery_codes or [], replace=replace
        )

    def _diagnose(self, role: str) -> dict[str, Any]:
        """What `twofactl doctor` cannot see from outside: files, policy, who can log in."""
        policy = self.service.policy
        return {
            **self.diagnostics(),
            "policy_source": policy.source,
            "policy_rules": len(policy.rules),
            "lockout_risk": self.service.policy_impact(policy)["lockout_risk"],
        }

    def _enroll_confirm(self, role: str, user: str, code: str) -> dict[str, Any]:
        return self.service.enroll_confirm(user, code)

    def _status(self, role: str, user: str) -> dict[str, Any]:
        return self.service.status(user)

    def _list(self, role: str, **page: Any) -> dict[str, Any]:
        return self.service.list_users(**page)

    def _disable(self, role: str, user: str, code: str | None = None) -> dict[str, Any]:
        self.service.disable(user, code, needs_proof=role == access.SELF)
        return {"user": user, "state": "none"}

    def _unlock(self, role: str, user: str) -> dict[str, Any]:
        return self.service.unlock(user)

    def _regenerate(self, role: str, user: str, code: str | None = None) -> dict[str, Any]:
        return self.service.regenerate_recovery_codes(user, code, needs_proof=role == access.SELF)

    def _resync(self, role: str, user: str, code1: str, code2: str) -> dict[str, Any]:
        return {"user": user, **self.service.resync(user, code1, code2)}

    def _reload(self, role: str, force: bool = False) -> dict[str, Any]:
        return self.reload(force=force)

    def reload(self, *, force: bool = False) -> dict[str, Any]:
        """Read the policy file again; the one in force stays unless all of the new is valid."""
        try:
            new = self.load_policy()
        except PolicyError as exc:
            self.audit.note("policy not reloaded:\n" + "\n".join(exc.messages))
            raise ServiceError(p.INVALID_POLICY, "\n".join(exc.messages)) from None
        except OSError as exc:
            self.audit.note(f"policy not reloaded: {exc.filename}: {exc.strerror}")
            raise ServiceError(p.INVALID_POLICY, f"{exc.filename}: {exc.strerror}") from None
        try:
            self.service.replace_policy(new, force=force)
        except ServiceError as exc:
            self.audit.note(f"policy not reloaded: {exc.message}")
            raise
        self.audit.note(f"policy loaded from {new.source}: {len(new.rules)} rules")
        return {"source": new.source, "rules": len(new.rules), "forced": force}

    def _policy_check(
        self, role: str, text: str, name: str = "policy.yaml", **page: Any
    ) -> dict[str, Any]:
        try:
            new = policy_file.parse(text, name)
        except PolicyError as exc:
            raise ServiceError(p.INVALID_POLICY, "\n".join(exc.messages)) from None
        return self.service.policy_impact(new, **page)

    def _policy_explain(self, role: str, user: str, **where: str) -> dict[str, Any]:
        return self.service.explain(user, **where)


# --- the listening socket ------------------------------------------------------------


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
