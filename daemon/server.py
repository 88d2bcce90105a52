"""The socket side of twofad: who may ask what, dispatch, and the listening socket.

Framing, time limits and the connection cap live in ``connection``; here a decoded
request meets the peer's role and the service, and every answer is audited.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pam_twofa import protocol as p
from pam_twofa.errors import TwofaError
from pam_twofa.protocol import ProtocolError, Request, Response
from pam_twofa.vocabulary import DROPIN_DIR

from . import access, names, policy_file
from .access import Grant, Peer
from .audit import Audit
from .audit_trail import AuditTrail
from .connection import Answer, ClientConnection
from .connections import Connections, Limits
from .listener import Listener
from .mail_delivery import MailDelivery
from .mailer_client import MailerClient
from .offload import StoreRunner
from .policy import Policy
from .policy_file import PolicyError
from .ratelimit import RateLimit
from .service import Service, ServiceError
from .service.email import Outgoing
from .totp import TotpParams

# What costs milliseconds to answer (a QR code rendered, a policy parsed and tried on
# every account), limited per uid for everyone but root, whose requests are logins.
COSTLY_OPERATIONS = frozenset(
    {"enroll.begin", "device.add", "secret.show", "policy.check", "keys.reseal", "email.set"}
)
COSTLY_BURST, COSTLY_INTERVAL = 5, 12.0  # five at once, then one every 12 s


# What is answered on the event loop even when the store is across the network.
NEEDS_NO_STORE = frozenset({"ping"})

# What may hand a message to the mailer before it is answered (see mail_delivery).
MAILING_OPERATIONS = frozenset({"email.set", "email.send", "email.test"})

Outcome = dict[str, Any] | BaseException  # a handler's reply, or why there is none


@dataclass
class _Begun:
    """A request that may be answered: who asked, what, and the call that answers it."""

    peer: Peer
    request: Request
    context: dict[str, Any]
    call: Callable[[], dict[str, Any]]


def _outcome(call: Callable[[], dict[str, Any]]) -> Outcome:
    """Run `call`, keeping what it raised (with its traceback) for the reply."""
    try:
        return call()
    except Exception as exc:
        return exc


class Server:
    def __init__(
        self,
        service: Service,
        audit: Audit,
        *,
        load_policy: Callable[[], Policy] | None = None,
        policy_path: str | None = None,
        diagnostics: Callable[[], dict[str, Any]] | None = None,
        limits: Limits | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        runner: StoreRunner | None = None,
        mailer: MailerClient | None = None,
    ) -> None:
        """`runner`: worker threads for a store that may be slow to answer (PostgreSQL);
        without it, every request is answered on the event loop.  `mailer`: where
        messages go (none: codes by email cannot be sent).  `policy_path`: the file
        `load_policy` reads, whose directory holds the drop-ins `policy.check` previews."""
        self.monotonic = monotonic
        self.runner = runner
        self.diagnostics = diagnostics or dict
        self.service = service
        self.audit = audit
        self.load_policy = load_policy or Policy
        self.policy_path = policy_path
        self.limits = limits or Limits()
        self._connections = Connections(self.limits)
        clock = service.clock
        self._costly = RateLimit(COSTLY_BURST, COSTLY_INTERVAL, clock)
        self._audit_trail = AuditTrail(audit, clock)
        self._mail = MailDelivery(mailer or MailerClient(None), audit)
        self._handlers: dict[str, Callable[..., Any]] = {
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
            "keys.reseal": self._reseal,
            "device.list": self._list_devices,
            "device.add": self._add_device,
            "device.rename": self._rename_device,
            "device.remove": self._remove_device,
            "email.set": self._set_email,
            "email.confirm": self._confirm_email,
            "email.remove": self._remove_email,
            "email.send": self._send_email_code,
            "email.test": self._email_test,
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
        self._audit_trail.summarise_left_out()

    # --- requests ----------------------------------------------------------------

    def _respond(self, peer: Peer, line: bytes) -> Answer | asyncio.Future[Answer]:
        """Answer one line; the flag says the connection must close (it sent garbage).

        With a store across the network, what needs it is answered on a worker thread
        (``offload``), and the answer comes as a future.
        """
        try:
            request = p.decode_request(line)
        except ProtocolError as exc:
            self._audit_trail.event(
                peer, "protocol", failed=True, error=exc.code, peer_uid=peer.uid, peer_pid=peer.pid
            )
            return p.error_response(exc.code, exc.message), True
        if request.op in MAILING_OPERATIONS:
            return asyncio.ensure_future(self._answer_after_mail(peer, request))
        if self.runner is None or request.op in NEEDS_NO_STORE:
            return self.dispatch(peer, request), False
        return self._dispatch_on_worker(peer, request)

    async def _answer_after_mail(self, peer: Peer, request: Request) -> Answer:
        """Decided (on a worker, where the store is across the network), then the
        message delivered without holding a transaction or the event loop, then
        answered: `not_sent`, with what was written undone, if it could not be."""
        begun = self._begin(peer, request)
        if isinstance(begun, Response):
            return begun, False
        outcome = await self._outcome_soon(peer, begun.call)
        if isinstance(outcome, Outgoing):
            undo = outcome.undo

            def undone() -> dict[str, Any]:
                if undo is not None:
                    undo()
                return {}

            delivered = await self._mail.deliver(outcome, begun.request.op, begun.context)
            if isinstance(delivered, TwofaError):
                await self._outcome_soon(peer, undone)
            outcome = delivered
        return self._end(begun, outcome), False

    async def _outcome_soon(self, peer: Peer, call: Callable[[], Any]) -> Any:
        """`_outcome(call)`: here, or on a worker where the store may be slow."""
        if self.runner is None:
            return _outcome(call)
        try:
            return await self.runner.submit(peer.uid, lambda: _outcome(call))
        except Exception as exc:
            return exc

    def dispatch(self, peer: Peer, request: Request) -> Response:
        """Answer `request` here and now."""
        begun = self._begin(peer, request)
        if isinstance(begun, Response):
            return begun
        return self._end(begun, _outcome(begun.call))

    def _dispatch_on_worker(self, peer: Peer, request: Request) -> asyncio.Future[Answer]:
        """Who may ask is decided here; the operation itself runs on a worker."""
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        begun = self._begin(peer, request)
        if isinstance(begun, Response):
            answer.set_result((begun, False))
            return answer
        assert self.runner is not None

        def settle(job: asyncio.Future[Outcome]) -> None:
            outcome = job.exception() or job.result()
            if not answer.done():
                answer.set_result((self._end(begun, outcome), False))

        self.runner.submit(peer.uid, lambda: _outcome(begun.call)).add_done_callback(settle)
        return answer

    def _begin(self, peer: Peer, request: Request) -> _Begun | Response:
        """The request checked: one name for the account, the peer's role, the limits."""
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
        begun = _Begun(peer, request, context, lambda: {})
        try:
            grant = access.authorize(
                peer, request, self.service.directory, self.service.policy.admin_groups
            )
            self._limit_costly(peer, request.op)
            self._refuse_if_expired(expires)
        except TwofaError as exc:
            return self._end(begun, exc)
        handler = self._handlers[request.op]

        def call() -> dict[str, Any]:
            self._refuse_if_expired(expires)  # again: it may have waited for a worker
            answer: dict[str, Any] = handler(grant, **fields)  # an Outgoing where it mails
            return answer

        begun.call = call
        return begun

    def _end(self, begun: _Begun, outcome: Outcome) -> Response:
        """The reply to a request, and its audit event."""
        request, peer, context = begun.request, begun.peer, begun.context
        if isinstance(outcome, TwofaError) and outcome.code == p.UNAVAILABLE:
            outcome = self._without_store(request, outcome)
        if isinstance(outcome, TwofaError):  # refused, or not answerable now: it says which
            if outcome.ours:
                self.audit.note(f"{request.op} not answered: {outcome.message}")
            self._audit_trail.event(peer, request.op, failed=True, error=outcome.code, **context)
            return p.error_response(outcome.code, outcome.message, request.id)
        if isinstance(outcome, BaseException):
            trace = "".join(traceback.format_exception(outcome, limit=8))
            self.audit.note(f"internal error in {request.op}: {trace}")
            self.audit.event(request.op, error=p.INTERNAL, **context)
            return p.error_response(p.INTERNAL, "internal error; see the twofad log", request.id)
        if request.op != "ping":
            result = outcome.get("result") or outcome.get("action") or "ok"
            self._audit_trail.event(
                peer,
                request.op,
                failed=result not in ("ok", p.ACCEPTED, p.SENT),
                result=result,
                method=outcome.get("method"),
                device=outcome.get("device"),
                retry_after=outcome.get("retry_after"),
                **context,
            )
        return Response(outcome, id=request.id)

    def _without_store(self, request: Request, unavailable: TwofaError) -> Outcome:
        """What can be answered while the store cannot: the policy's decision for a login."""
        if request.op != "policy.explain":
            return unavailable
        fields = {k: v for k, v in request.fields.items() if k in ("user", "service", "rhost")}
        return _outcome(lambda: self.service.decision(**fields))

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

    # --- handlers: unpack fields, call the service, shape the reply ----------------

    def _ping(self, grant: Grant) -> dict[str, Any]:
        return {"pong": True, "protocol": p.PROTOCOL_VERSION}

    def _check(self, grant: Grant, user: str, **where: str) -> dict[str, Any]:
        return {"user": user, **self.service.check(user, **where)}

    def _verify(
        self, grant: Grant, user: str, code: str, channel: str | None = None, **where: str
    ) -> dict[str, Any]:
        if channel == "email":
            return {"user": user, **self.service.verify_email_code(user, code, **where)}
        return {"user": user, **self.service.verify(user, code, **where)}

    def _enroll_begin(
        self,
        grant: Grant,
        user: str,
        replace: bool = False,
        code: str | None = None,
        device: str | None = None,
    ) -> dict[str, Any]:
        return self.service.enroll_begin(
            user, replace=replace, code=code, needs_proof=grant.needs_proof, device=device
        )

    def _show_secret(
        self, grant: Grant, user: str, code: str, device: str | None = None
    ) -> dict[str, Any]:
        return self.service.show_secret(user, code, device)

    def _list_devices(self, grant: Grant, user: str) -> dict[str, Any]:
        return self.service.list_devices(user)

    def _add_device(
        self, grant: Grant, user: str, device: str, code: str | None = None
    ) -> dict[str, Any]:
        return self.service.add_device(user, device, code, needs_proof=grant.needs_proof)

    def _rename_device(self, grant: Grant, user: str, device: str, new_name: str) -> dict[str, Any]:
        return self.service.rename_device(user, device, new_name)

    def _remove_device(
        self, grant: Grant, user: str, device: str, code: str | None = None
    ) -> dict[str, Any]:
        return self.service.remove_device(user, device, code, needs_proof=grant.needs_proof)

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
        device: str | None = None,
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
            device=device,
        )

    def _diagnose(self, grant: Grant) -> dict[str, Any]:
        """What `twofactl doctor` cannot see from outside: files, policy, who can log in."""
        policy = self.service.policy
        return {
            **self.diagnostics(),
            "policy_source": policy.source,
            "policy_rules": len(policy.rules),
            "lockout_risk": self.service.policy_impact(policy)["lockout_risk"],
            # Codes by email anywhere in the policy: then the mailer must be there.
            "email_allowed": policy.email.allowed or any(r.email for r in policy.rules),
            "mailer_socket": self._mail.mailer.path,
        }

    def _reseal(self, grant: Grant, **page: Any) -> dict[str, Any]:
        return self.service.reseal(**page)

    def _enroll_confirm(
        self, grant: Grant, user: str, code: str, device: str | None = None
    ) -> dict[str, Any]:
        return self.service.enroll_confirm(user, code, device)

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
        self,
        grant: Grant,
        text: str | None = None,
        name: str = "policy.yaml",
        dropin: dict[str, str] | None = None,
        **page: Any,
    ) -> dict[str, Any]:
        """Who a policy would require: `text` as the main file (else the daemon's own,
        as it is on disk now, which a reload would read), its drop-ins from the
        daemon's policy directory, and `dropin` read as the text given."""
        base = os.path.dirname(self.policy_path) if self.policy_path is not None else None
        relative = f"{DROPIN_DIR}/{dropin['name']}" if dropin else None
        replace = {relative: dropin["text"]} if dropin and relative else {}
        # A PolicyError is the answer: invalid_policy, naming each file and line.
        if text is not None:
            new = policy_file.with_dropins(policy_file.parse(text, name), base, replace)
        elif self.policy_path is None:
            raise ServiceError(p.INVALID_POLICY, "this twofad reads no policy file")
        else:
            try:
                new = policy_file.load(self.policy_path, replace)
            except OSError as exc:
                raise ServiceError(p.INVALID_POLICY, f"{exc.filename}: {exc.strerror}") from None
        report = self.service.policy_impact(new, **page)
        if relative is not None:
            report["dropin"] = {
                "name": relative,
                "file": os.path.join(base or "", relative),
                "included": policy_file.dropin_included(new, relative),
            }
        return report

    def _policy_explain(self, grant: Grant, user: str, **where: str) -> dict[str, Any]:
        return self.service.explain(user, **where)

    # --- codes by email: what mails is answered in _answer_after_mail --------------

    def _set_email(
        self, grant: Grant, user: str, address: str, code: str | None = None
    ) -> Outgoing:
        own = grant.role == access.SELF
        return self.service.set_email(user, address, code, own=own, needs_proof=grant.needs_proof)

    def _confirm_email(self, grant: Grant, user: str, code: str) -> dict[str, Any]:
        return self.service.confirm_email(user, code)

    def _remove_email(self, grant: Grant, user: str) -> dict[str, Any]:
        return self.service.remove_email(user)

    def _send_email_code(self, grant: Grant, user: str, **where: str) -> Outgoing:
        return self.service.send_email_code(user, **where)

    def _email_test(self, grant: Grant, address: str) -> Outgoing:
        return self.service.email_test(address)


# --- the listening socket ------------------------------------------------------------
