"""The socket side of twofad: who may ask what, dispatch, and the listening socket.

Framing, time limits and the connection cap live in ``connection``; here a decoded
request meets the peer's role and the service, and every answer is audited.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import stat
import time
import traceback
from collections.abc import Callable
from typing import Any

from pam_twofa import protocol as p
from pam_twofa.client import root_socket_path
from pam_twofa.errors import TwofaError
from pam_twofa.protocol import ProtocolError, Request, Response

from . import access, names, policy_file
from .access import Grant, Peer
from .audit import Audit
from .connection import ClientConnection, Connections, Limits
from .listener import Listener
from .policy import Policy
from .policy_file import PolicyError
from .ratelimit import RateLimit
from .service import Service, ServiceError
from .totp import TotpParams

# What costs milliseconds to answer (a QR code rendered, a policy parsed and tried on
# every account), limited per uid for everyone but root, whose requests are logins.
COSTLY_OPERATIONS = frozenset({"enroll.begin", "secret.show", "policy.check"})
COSTLY_BURST, COSTLY_INTERVAL = 5, 12.0  # five at once, then one every 12 s

# Operations that change an account or hand out a secret: their successes are always
# logged.  An unprivileged peer's reads and refusals are logged up to a budget, and
# what goes past it is counted and summarised, so one user asking for their own
# status in a loop cannot make journald's rate limit drop the events that matter.
CHANGES = frozenset(
    {
        "verify",
        "enroll.begin",
        "enroll.confirm",
        "secret.show",
        "disable",
        "unlock",
        "recovery.regenerate",
        "resync",
        "reload",
        "import",
    }
)
AUDIT_BURST, AUDIT_INTERVAL = 30, 2.0  # per uid: 30 lines at once, then one every 2 s
SUMMARY_INTERVAL = 60.0  # how often the lines left out are summarised


class Server:
    def __init__(
        self,
        service: Service,
        audit: Audit,
        *,
        load_policy: Callable[[], Policy] | None = None,
        diagnostics: Callable[[], dict[str, Any]] | None = None,
        limits: Limits | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.monotonic = monotonic
        self.diagnostics = diagnostics or dict
        self.service = service
        self.audit = audit
        self.load_policy = load_policy or Policy
        self.limits = limits or Limits()
        self._connections = Connections(self.limits)
        clock = service.clock
        self._costly = RateLimit(COSTLY_BURST, COSTLY_INTERVAL, clock)
        self._audit_budget = RateLimit(AUDIT_BURST, AUDIT_INTERVAL, clock)
        self._left_out: dict[int, int] = {}  # uid -> audit lines not written since the summary
        self._summary: asyncio.TimerHandle | None = None
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
        access.check_table()  # no operation answered without a row saying who may ask
        missing = set(p.OPERATIONS) - set(self._handlers)
        if missing:
            raise RuntimeError(f"operations without a handler: {sorted(missing)}")

    # --- connections -------------------------------------------------------------

    def connection(self, peer: Peer | None = None) -> ClientConnection:
        """A protocol for one new client, as the listener (or a test) accepts one;
        without `peer` it reads the peer's credentials from the socket itself."""
        return ClientConnection(self._respond, self._connections, self.audit, peer)

    def listen(self, sock: socket.socket) -> Listener:
        """Start accepting on `sock`; the caller closes what this returns, then the
        connections (``close_connections``)."""
        listener = Listener(sock, self.connection, self._connections, self.audit)
        listener.start()
        return listener

    async def close_connections(self) -> None:
        """At stop: new clients are refused, replies already made still go out."""
        await self._connections.close_all(self.limits.write_timeout)
        self.summarise_left_out()

    # --- requests ----------------------------------------------------------------

    def _respond(self, peer: Peer, line: bytes) -> tuple[Response, bool]:
        """Answer one line; the flag says the connection must close (it sent garbage)."""
        try:
            request = p.decode_request(line)
        except ProtocolError as exc:
            self._audit_event(
                peer, "protocol", failed=True, error=exc.code, peer_uid=peer.uid, peer_pid=peer.pid
            )
            return p.error_response(exc.code, exc.message), True
        return self.dispatch(peer, request), False

    def dispatch(self, peer: Peer, request: Request) -> Response:
        request = names.resolve(request, self.service.directory)  # one account, one name
        fields = dict(request.fields)
        expires = fields.pop("expires", None)
        context = {
            "user": fields.get("user"),
            "service": fields.get("service"),
            "rhost": fields.get("rhost"),
            "peer_uid": peer.uid,
            "peer_pid": peer.pid,
        }
        try:
            grant = access.authorize(
                peer, request, self.service.directory, self.service.policy.admin_groups
            )
            self._limit_costly(peer, request.op)
            self._refuse_if_expired(expires)
            data = self._handlers[request.op](grant, **fields)
        except TwofaError as exc:  # refused, or not answerable now: the answer says which
            if exc.ours:
                self.audit.note(f"{request.op} not answered: {exc.message}")
            self._audit_event(peer, request.op, failed=True, error=exc.code, **context)
            return p.error_response(exc.code, exc.message, request.id)
        except Exception:
            self.audit.note(f"internal error in {request.op}: {traceback.format_exc(limit=8)}")
            self.audit.event(request.op, error=p.INTERNAL, **context)
            return p.error_response(p.INTERNAL, "internal error; see the twofad log", request.id)
        if request.op != "ping":
            result = data.get("result") or data.get("action") or "ok"
            self._audit_event(
                peer,
                request.op,
                failed=result not in ("ok", p.ACCEPTED),
                result=result,
                method=data.get("method"),
                retry_after=data.get("retry_after"),
                **context,
            )
        return Response(data, id=request.id)

    def _refuse_if_expired(self, expires: float | None) -> None:
        """A login that gave up waiting has been decided by its fail= choice already:
        acting on its code now would count it, and log it, as something it was not."""
        if expires is not None and self.monotonic() > expires:
            raise ServiceError(
                p.EXPIRED, "the request was read after its sender stopped waiting; nothing was done"
            )

    def _limit_costly(self, peer: Peer, op: str) -> None:
        if peer.uid == 0 or op not in COSTLY_OPERATIONS:
            return
        wait = self._costly.take(peer.uid)
        if wait is not None:
            raise ServiceError(
                p.RATE_LIMITED,
                f"too many {op} requests from this user; try again in {math.ceil(wait)} s",
            )

    # --- the audit trail, bounded for what anyone can make the daemon write ----------

    def _audit_event(self, peer: Peer, op: str, *, failed: bool, **values: Any) -> None:
        """Log the event, unless an unprivileged peer's reads and refusals are over budget."""
        bounded = peer.uid != 0 and (op not in CHANGES or failed)
        if bounded and self._audit_budget.take(peer.uid) is not None:
            self._left_out[peer.uid] = self._left_out.get(peer.uid, 0) + 1
            self._summarise_later()
            return
        self.audit.event(op, **values)

    def _summarise_later(self) -> None:
        if self._summary is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a test calling dispatch): summarise now
            self.summarise_left_out()
            return
        self._summary = loop.call_later(SUMMARY_INTERVAL, self.summarise_left_out)

    def summarise_left_out(self) -> None:
        """One line per uid: how many of its events were left out since the last summary."""
        if self._summary is not None:
            self._summary.cancel()
            self._summary = None
        left_out, self._left_out = self._left_out, {}
        for uid, count in sorted(left_out.items()):
            self.audit.event("audit", result="rate_limited", peer_uid=uid, left_out=count)

    # --- handlers: unpack fields, call the service, shape the reply ----------------

    def _ping(self, grant: Grant) -> dict[str, Any]:
        return {"pong": True, "protocol": p.PROTOCOL_VERSION}

    def _check(self, grant: Grant, user: str, **where: str) -> dict[str, Any]:
        return {"user": user, **self.service.check(user, **where)}

    def _verify(self, grant: Grant, user: str, code: str, **where: str) -> dict[str, Any]:
        return {"user": user, **self.service.verify(user, code, **where)}

    def _enroll_begin(
        self, grant: Grant, user: str, replace: bool = False, code: str | None = None
    ) -> dict[str, Any]:
        return self.service.enroll_begin(
            user, replace=replace, code=code, needs_proof=grant.needs_proof
        )

    def _show_secret(self, grant: Grant, user: str, code: str) -> dict[str, Any]:
        return self.service.show_secret(user, code)

    def _import(
        self,
        grant: Grant,
        user: str,
        secret: str,
        algorithm: str = "SHA1",
        digits: int = 6,
        period: int = 30,
        recovery_codes: list[str] | None = None,
        window: int | None = None,
        used_step: int | None = None,
        replace: bool = False,
    ) -> dict[str, Any]:
        params = TotpParams(algorithm, digits, period)
        return self.service.import_secret(
            user,
            secret,
            params,
            recovery_codes or [],
            window=window,
            used_step=used_step,
            replace=replace,
        )

    def _diagnose(self, grant: Grant) -> dict[str, Any]:
        """What `twofactl doctor` cannot see from outside: files, policy, who can log in."""
        policy = self.service.policy
        return {
            **self.diagnostics(),
            "policy_source": policy.source,
            "policy_rules": len(policy.rules),
            "lockout_risk": self.service.policy_impact(policy)["lockout_risk"],
        }

    def _enroll_confirm(self, grant: Grant, user: str, code: str) -> dict[str, Any]:
        return self.service.enroll_confirm(user, code)

    def _status(self, grant: Grant, user: str) -> dict[str, Any]:
        return self.service.status(user)

    def _list(self, grant: Grant, **page: Any) -> dict[str, Any]:
        return self.service.list_users(**page)

    def _disable(self, grant: Grant, user: str, code: str | None = None) -> dict[str, Any]:
        self.service.disable(user, code, needs_proof=grant.needs_proof)
        return {"user": user, "state": "none"}

    def _unlock(self, grant: Grant, user: str) -> dict[str, Any]:
        return self.service.unlock(user)

    def _regenerate(self, grant: Grant, user: str, code: str | None = None) -> dict[str, Any]:
        return self.service.regenerate_recovery_codes(user, code, needs_proof=grant.needs_proof)

    def _resync(self, grant: Grant, user: str, code1: str, code2: str) -> dict[str, Any]:
        return {"user": user, **self.service.resync(user, code1, code2)}

    def _reload(self, grant: Grant, force: bool = False) -> dict[str, Any]:
        return self.reload(force=force)

    def reload(self, *, force: bool = False) -> dict[str, Any]:
        """Read the policy file again; the one in force stays unless all of the new is valid."""
        try:
            new = self.load_policy()
        except PolicyError as exc:
            self.audit.note("policy not reloaded:\n" + exc.message)
            raise
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
        self, grant: Grant, text: str, name: str = "policy.yaml", **page: Any
    ) -> dict[str, Any]:
        new = policy_file.parse(text, name)  # a PolicyError is the answer: invalid_policy
        return self.service.policy_impact(new, **page)

    def _policy_explain(self, grant: Grant, user: str, **where: str) -> dict[str, Any]:
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
