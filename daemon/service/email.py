"""Codes by email: an address proven, a code mailed at the prompt and checked once.

Each operation that mails something returns an `Outgoing`: the reply, the message for
the mailer, and how to undo what was written if it cannot be delivered (the send no
longer counts, the code is dropped), so a failed delivery changes nothing.  The
server delivers it without holding a transaction open.

A name that gets no mail (no account, none set up, no proven address) is answered as
a real send would be, with its sends counted in memory like the real ones, so that
neither the reply nor the rate limit tells the names apart; nothing is sent.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pam_twofa import protocol as p

from .. import emailing, lockout
from ..emailing import Mail, Where
from ..policy import EmailPolicy
from ..store import UserRow
from .context import COMMAND_ORIGIN, Context, ServiceError
from .decoys import over_limit
from .proof import with_proof
from .replies import failed_reply, locked_reply


@dataclass(frozen=True)
class Outgoing:
    """An operation's reply, and a message to deliver before it is given (if any)."""

    reply: dict[str, Any]
    mail: Mail | None = None
    undo: Callable[[], None] | None = None  # after a failed delivery


def _refuse_over_limit(policy: EmailPolicy, sent: tuple[float, ...], now: float) -> None:
    if (refusal := over_limit(policy, sent, now)) is not None:
        raise refusal


# --- the account's address ---------------------------------------------------------


def set_address(
    ctx: Context, user: str, address: str, code: str | None, *, own: bool, needs_proof: bool
) -> Outgoing:
    """An administrator's word sets the address at once; a person proves it is theirs
    with a code mailed to it (after a current code: a new way to receive codes is a
    new way in)."""
    if not own:
        return Outgoing(ctx.atomic(lambda now: _set_directly(ctx, user, address)))
    found: dict[str, Any] = {}

    def begin(now: float) -> None:
        row = ctx.active_row(user)
        sent = emailing.decode_sends(row.email_sends)
        _refuse_over_limit(ctx.policy.email, sent, now)
        mailed = emailing.new_code()
        digest = emailing.digest(ctx.keys, user, emailing.ADDRESS, mailed)
        expires = now + ctx.policy.email.valid_for
        sends = emailing.encode_sends((*sent, now), now)
        ctx.store.begin_email_address(row, address, digest, expires, sends or "")
        where = Where(ctx.host, None, None)
        found["mail"] = emailing.address_code(
            address, user, mailed, where, now, ctx.policy.email.valid_for
        )
        found["undo"] = _undo(ctx, user, digest, now, code=False)

    with_proof(ctx, user, code, needs_proof, begin)
    reply = {"user": user, "pending": address, "expires_in": int(ctx.policy.email.valid_for)}
    return Outgoing(reply, found["mail"], found["undo"])


def _set_directly(ctx: Context, user: str, address: str) -> dict[str, Any]:
    row = ctx.active_row(user)
    ctx.store.set_email_address(row, address)
    return {"user": user, "email": address}


def confirm_address(ctx: Context, user: str, code: str) -> dict[str, Any]:
    """The address being proven becomes the account's, with the code mailed to it.

    A wrong code counts toward the lock-out like any wrong code.
    """

    def confirm(now: float) -> dict[str, Any] | ServiceError:
        row = ctx.active_row(user)
        if row.email_pending is None or row.email_pending_digest is None:
            raise ServiceError(
                p.NOT_ENROLLED,
                f"{user} has no address to confirm; set one with twofa email set ADDRESS",
            )
        if (locked := locked_reply(row.lock, now)) is not None:
            return ServiceError(p.LOCKED, f"too many failed attempts; {_wait(locked)}")
        if not emailing.live(row.email_pending_expires, now):
            return ServiceError(
                p.EXPIRED, "that code has expired; ask for another (twofa email set ADDRESS)"
            )
        if not emailing.matches(ctx.keys, row.email_pending_digest, user, emailing.ADDRESS, code):
            _count_failure(ctx, row, now, COMMAND_ORIGIN)
            return ServiceError(p.INVALID_CODE, "that is not the code mailed to the address")
        ctx.store.confirm_email_address(row)
        return {"user": user, "email": row.email_pending}

    result = ctx.atomic(confirm)
    if isinstance(result, ServiceError):
        raise result
    return result


def remove_address(ctx: Context, user: str) -> dict[str, Any]:
    def remove(now: float) -> dict[str, Any]:
        row = ctx.known_row(user)
        ctx.store.set_email_address(row, None)
        return {"user": user, "email": None, "removed": row.email}

    return ctx.atomic(remove)


# --- a code at the prompt ----------------------------------------------------------


def allowed(ctx: Context, user: str, service: str | None, rhost: str | None) -> bool:
    decision = ctx.policy.decide(user, lambda: ctx.directory.groups_of(user), service, rhost)
    return decision.email


def send_login_code(
    ctx: Context, user: str, service: str | None = None, rhost: str | None = None
) -> Outgoing:
    """Mail a login code to the account's proven address, where the policy allows it.

    The reply is the same whether or not anything is sent; a locked account, and a
    name past its sends, are refused as such, whoever they are.
    """
    if not allowed(ctx, user, service, rhost):
        raise ServiceError(p.EMAIL_NOT_ALLOWED, "codes by email are not allowed for this login")
    policy = ctx.policy.email
    found: dict[str, Any] = {}

    def send(now: float) -> None:
        row = ctx.store.get_user(user)
        if row is None or not row.active or row.email is None:
            lock = row.lock if row is not None else ctx.decoys.lock(user)
            _refuse_if_locked(lock, now)
            ctx.decoys.count_send(user, policy, now)
            return
        _refuse_if_locked(row.lock, now)
        sent = emailing.decode_sends(row.email_sends)
        _refuse_over_limit(policy, sent, now)
        mailed = emailing.new_code()
        digest = emailing.digest(ctx.keys, user, emailing.LOGIN, mailed)
        sends = emailing.encode_sends((*sent, now), now)
        ctx.store.begin_email_code(row, digest, now + policy.valid_for, sends or "")
        where = Where(ctx.host, service, rhost)
        found["mail"] = emailing.login_code(row.email, user, mailed, where, now, policy.valid_for)
        found["undo"] = _undo(ctx, user, digest, now, code=True)

    ctx.atomic(send)
    reply = {"user": user, "result": p.SENT, "expires_in": int(policy.valid_for)}
    return Outgoing(reply, found.get("mail"), found.get("undo"))


def verify_code(
    ctx: Context, user: str, code: str, service: str | None = None, rhost: str | None = None
) -> dict[str, Any]:
    """Accept the code mailed last, once and before it expires; a wrong one counts
    toward the lock-out like a wrong TOTP code."""
    origin = lockout.origin_of(service, rhost)
    if not allowed(ctx, user, service, rhost):
        raise ServiceError(p.EMAIL_NOT_ALLOWED, "codes by email are not allowed for this login")

    def check(now: float) -> dict[str, Any]:
        row = ctx.store.get_user(user)
        if row is None or not row.active:
            if row is None and ctx.directory.uid_of(user) is None:
                return ctx.decoys.verify(ctx.policy, user, code, now, origin)
            return {"result": p.NOT_ENROLLED}
        if (locked := locked_reply(row.lock, now)) is not None:
            return locked
        stored = row.email_code_digest
        good = (
            stored is not None
            and emailing.live(row.email_code_expires, now)
            and emailing.matches(ctx.keys, stored, user, emailing.LOGIN, code)
        )
        if not good:
            return _count_failure(ctx, row, now, origin)
        state = lockout.after_success(ctx.policy.lockout, row.lock, now, origin)
        ctx.store.record_success(row, state, now, host=ctx.host, emailed=True)
        return {"result": p.ACCEPTED, "method": "email"}

    return ctx.atomic(check)


def test_message(ctx: Context, address: str) -> Outgoing:
    now = ctx.clock()
    return Outgoing(
        {"address": address, "result": p.SENT}, emailing.test_message(address, ctx.host, now)
    )


# --- shared ------------------------------------------------------------------------


def _refuse_if_locked(state: lockout.LockState, now: float) -> None:
    locked = locked_reply(state, now)
    if locked is not None:
        raise ServiceError(p.LOCKED, f"too many failed attempts; {_wait(locked)}")


def _wait(locked: dict[str, Any]) -> str:
    if locked.get("hard_locked"):
        return "an administrator must unlock the account"
    return f"try again in {locked.get('retry_after')} seconds"


def _count_failure(ctx: Context, row: UserRow, now: float, origin: str) -> dict[str, Any]:
    state = lockout.after_failure(ctx.policy.lockout, row.lock, now, origin)
    ctx.store.record_failure(row, state, now)
    return failed_reply(p.REJECTED, state, now)


def _undo(
    ctx: Context, user: str, digest: bytes, sent_at: float, *, code: bool
) -> Callable[[], None]:
    """What takes back a send that could not be delivered: only if its code is still
    the one stored (a later send may have replaced it meanwhile)."""

    def undo() -> None:
        def withdraw(now: float) -> None:
            row = ctx.store.get_user(user)
            if row is None:
                return
            stored = row.email_code_digest if code else row.email_pending_digest
            if stored is None or not hmac.compare_digest(stored, digest):
                return
            kept = list(emailing.decode_sends(row.email_sends))
            if int(sent_at) in kept:
                kept.remove(int(sent_at))
            ctx.store.withdraw_email(row, emailing.encode_sends(kept, now), code=code)

        ctx.atomic(withdraw)

    return undo
