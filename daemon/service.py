"""The operations of twofad, as logic over a store, a key, settings and a clock.

Nothing here opens a socket or reads the time: the server hands in the store and the
clock, so every rule about windows, replay, lock-out and recovery codes is tested with
an injected clock and no sleeping.  Each operation runs in one transaction and writes
only through compare-and-set; a lost race is retried from a fresh read.
"""

from __future__ import annotations

import dataclasses
import hmac
import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from pam_twofa import protocol as p

from . import impact, lockout, recovery, totp
from .directory import Directory
from .keys import Keys
from .policy import EXEMPT, OPTIONAL, REQUIRED, Policy
from .store import Conflict, Store, UserRow

T = TypeVar("T")
Clock = Callable[[], float]
CAS_ATTEMPTS = 8
PAGE_SIZE = p.MAX_PAGE  # entries per listing reply; the protocol bounds what fits


class ServiceError(Exception):
    """An operation refused; ``code`` is one of the protocol's stable error codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _params(row: UserRow, *, pending: bool = False) -> totp.TotpParams:
    if pending:
        return totp.TotpParams(
            row.pending_algorithm or "SHA1", row.pending_digits or 6, row.pending_period or 30
        )
    return totp.TotpParams(row.algorithm or "SHA1", row.digits or 6, row.period or 30)


def _lock_state(row: UserRow) -> lockout.LockState:
    return lockout.LockState(
        row.failures,
        row.locked_until,
        bool(row.hard_locked),
        row.strikes,
        lockout.decode_recent(row.recent_failures),
    )


def _lock_columns(state: lockout.LockState) -> dict[str, Any]:
    """A lock state as the users table holds it."""
    return {
        "failures": state.failures,
        "strikes": state.strikes,
        "recent_failures": lockout.encode_recent(state.recent),
        "locked_until": state.locked_until,
        "hard_locked": int(state.hard_locked),
    }


# A new key (or an administrator's unlock) starts both counts afresh: guesses at an
# old key tell nothing about the new one.
CLEAR_LOCK = _lock_columns(lockout.LockState(0, None, False))
# Where a code typed to the daemon's own commands comes from (twofa, twofactl resync):
# not a PAM login, and never the same origin as one.
COMMAND_ORIGIN = lockout.origin_of(None, None)


UNKNOWN_LOCKS_KEPT = 10_000  # names with no account whose failures are remembered


def _locked_reply(remaining: float) -> dict[str, Any]:
    if math.isinf(remaining):
        return {"result": p.LOCKED, "retry_after": None, "hard_locked": True}
    return {
        "result": p.LOCKED,
        "retry_after": lockout.seconds_to_show(remaining),
        "hard_locked": False,
    }


class Service:
    def __init__(
        self,
        store: Store,
        keys: Keys,
        policy: Policy,
        clock: Clock,
        directory: Directory,
    ) -> None:
        self.store = store
        self.keys = keys
        self.policy = policy
        self.clock = clock
        self.directory = directory
        self._decoy_secret = totp.new_secret()  # checked against for unknown users
        # Failures against names with no account, counted as for a real one, so that a
        # lock-out ("try again in N seconds") does not tell which accounts exist. Kept in
        # memory only, and only for the most recent names: an attacker inventing names
        # must not grow the database.
        self._unknown_locks: OrderedDict[str, lockout.LockState] = OrderedDict()

    # --- plumbing ----------------------------------------------------------------

    def _atomic(self, operation: Callable[[float], T]) -> T:
        """Run `operation(now)` in one transaction, again from scratch if it lost a race."""
        for _ in range(CAS_ATTEMPTS):
            try:
                with self.store.transaction():
                    return operation(self.clock())
            except Conflict:
                continue
        raise ServiceError(p.INTERNAL, "the database is too busy right now; try again")

    def _known_row(self, user: str) -> UserRow:
        """The user's row, or the right error: unknown user, or known but not set up."""
        row = self.store.get_user(user)
        if row is not None:
            return row
        if self.directory.uid_of(user) is None:
            raise ServiceError(p.UNKNOWN_USER, f"no such user: {user}")
        raise ServiceError(p.NOT_ENROLLED, f"{user} has not set up two-step verification")

    def _active_row(self, user: str) -> UserRow:
        row = self._known_row(user)
        if not row.active:
            raise ServiceError(p.NOT_ENROLLED, f"{user} has not confirmed two-step verification")
        return row

    def _new_recovery_codes(self, user: str, now: float) -> list[str]:
        codes = [recovery.new_code() for _ in range(self.policy.recovery_codes)]
        digests = [
            recovery.digest(self.keys.recovery_key, user, recovery.normalize(code) or "")
            for code in codes
        ]
        self.store.replace_recovery_codes(user, digests, now)
        return codes

    # --- the PAM hook's questions ------------------------------------------------

    def check(
        self, user: str, service: str | None = None, rhost: str | None = None
    ) -> dict[str, Any]:
        """What the hook should do with this login, as the policy decides it.

        skip (exempt, or optional and not set up), prompt, locked, enroll (required and
        not set up, with set-up at login) or refuse.  An unknown user is prompted like
        an enrolled one, so the prompt reveals nothing about which accounts exist.
        """
        decision = self.policy.decide(user, lambda: self.directory.groups_of(user), service, rhost)
        if decision.action == EXEMPT:
            return {"action": p.SKIP}
        with self.store.transaction():
            row = self.store.get_user(user)
        if row is not None and row.active:
            remaining = lockout.retry_after(_lock_state(row), self.clock())
            if remaining is not None:
                return {"action": p.LOCKED, **_locked_reply(remaining)}
            return {"action": p.PROMPT, "digits": row.digits}
        if self.directory.uid_of(user) is None:
            remaining = lockout.retry_after(self._unknown_lock(user), self.clock())
            if remaining is not None:
                return {"action": p.LOCKED, **_locked_reply(remaining)}
            return {"action": p.PROMPT, "digits": self.policy.totp.digits}
        if decision.action == OPTIONAL:
            return {"action": p.SKIP}
        return {"action": p.ENROLL if self.policy.enrollment_at_login else p.REFUSE}

    def verify(
        self, user: str, code: str, service: str | None = None, rhost: str | None = None
    ) -> dict[str, Any]:
        """Accept a TOTP or recovery code at most once; count and lock out failures.

        `service` and `rhost` are where the attempt comes from: a success forgives only
        failures from the same place (see lockout).
        """
        origin = lockout.origin_of(service, rhost)
        return self._atomic(lambda now: self._verify(user, code, now, origin))

    def _verify(self, user: str, code: str, now: float, origin: str) -> dict[str, Any]:
        row = self.store.get_user(user)
        if row is None or not row.active:
            if row is None and self.directory.uid_of(user) is None:
                return self._verify_unknown(user, code, now, origin)
            return {"result": p.NOT_ENROLLED}
        remaining = lockout.retry_after(_lock_state(row), now)
        if remaining is not None:
            return _locked_reply(remaining)
        typed = totp.normalize(code)
        if totp.is_totp_shaped(typed, _params(row)):
            return self._verify_totp(row, typed, now, origin)
        return self._verify_recovery(row, code, now, origin)

    def _verify_unknown(self, user: str, code: str, now: float, origin: str) -> dict[str, Any]:
        """Reject, as a real account would a wrong code: the same work, the same lock-out.

        The same rule as for an account nobody ever logs in to: the back-off, and the
        hard lock after `hard_after` strikes.  No success ever comes to forgive one, so
        the failures' origins are not kept (nor their memory spent).
        """
        state = self._unknown_lock(user)
        remaining = lockout.retry_after(state, now)
        if remaining is not None:
            return _locked_reply(remaining)
        self._decoy_check(code, now)
        state = lockout.after_failure(self.policy.lockout, state, now, origin)
        self._unknown_locks[user] = dataclasses.replace(state, recent=())
        self._unknown_locks.move_to_end(user)
        while len(self._unknown_locks) > UNKNOWN_LOCKS_KEPT:
            self._unknown_locks.popitem(last=False)
        reply: dict[str, Any] = {"result": p.REJECTED}
        remaining = lockout.retry_after(state, now)
        if remaining is not None:
            reply.update(_locked_reply(remaining), result=p.REJECTED)
        return reply

    def _unknown_lock(self, user: str) -> lockout.LockState:
        return self._unknown_locks.get(user) or lockout.LockState(0, None, False)

    def _decoy_check(self, code: str, now: float) -> None:
        """Spend the time a real check would, so unknown users are not told apart."""
        params = self.policy.totp
        step = totp.time_step(now, params.period)
        totp.matching_steps(
            self._decoy_secret,
            params,
            totp.normalize(code),
            step - self.policy.window,
            step + self.policy.window,
        )

    def _totp_window(self, row: UserRow, now: float) -> tuple[int, int]:
        params = _params(row)
        center = totp.time_step(now, params.period) + row.drift
        width = self.policy.window if row.totp_window is None else row.totp_window
        return center - width, center + width

    def _verify_totp(self, row: UserRow, typed: str, now: float, origin: str) -> dict[str, Any]:
        secret = self.keys.unseal(row.name, row.secret or b"")
        matches = totp.matching_steps(secret, _params(row), typed, *self._totp_window(row, now))
        last = row.last_step if row.last_step is not None else -1
        fresh = [step for step in matches if step > last]
        if fresh:
            self._record_success(row, now, origin, last_step=max(fresh))
            return {"result": p.ACCEPTED, "method": "totp"}
        return self._record_failure(row, now, origin, p.REPLAYED if matches else p.REJECTED)

    def _verify_recovery(self, row: UserRow, code: str, now: float, origin: str) -> dict[str, Any]:
        canonical = recovery.normalize(code)
        if canonical is None:
            return self._record_failure(row, now, origin, p.REJECTED)
        wanted = recovery.digest(self.keys.recovery_key, row.name, canonical)
        found = None
        for stored in self.store.recovery_codes(row.name):
            if hmac.compare_digest(stored.digest, wanted):
                found = stored
        if found is None:
            return self._record_failure(row, now, origin, p.REJECTED)
        if found.used_at is not None:
            return self._record_failure(row, now, origin, p.REPLAYED)
        self.store.spend_recovery_code(found.id, now)
        self._record_success(row, now, origin)
        return {
            "result": p.ACCEPTED,
            "method": "recovery",
            "recovery_codes_left": self.store.unused_recovery_count(row.name),
        }

    def _record_success(self, row: UserRow, now: float, origin: str, **changes: Any) -> None:
        """The back-off ends; the lifetime count keeps what this success does not forgive."""
        state = lockout.after_success(self.policy.lockout, _lock_state(row), now, origin)
        self.store.update_user(row, **_lock_columns(state), last_success=now, **changes)

    def _record_failure(self, row: UserRow, now: float, origin: str, result: str) -> dict[str, Any]:
        state = lockout.after_failure(self.policy.lockout, _lock_state(row), now, origin)
        self.store.update_user(row, **_lock_columns(state), last_failure=now)
        reply: dict[str, Any] = {"result": result}
        remaining = lockout.retry_after(state, now)
        if remaining is not None:
            reply.update(_locked_reply(remaining), result=result)
        return reply

    # --- enrollment ---------------------------------------------------------------

    def enroll_begin(
        self,
        user: str,
        *,
        replace: bool = False,
        code: str | None = None,
        needs_proof: bool = False,
    ) -> dict[str, Any]:
        """Make a new pending secret; it replaces a pending one, never an active one.

        With `replace`, an active secret keeps working until the new one is confirmed
        (a renewal, or a new phone); a user renewing their own needs a current code.
        """
        if self.directory.uid_of(user) is None:
            raise ServiceError(p.UNKNOWN_USER, f"no such user: {user}")
        params = self.policy.totp
        secret = totp.new_secret()
        pending = {
            "pending_secret": self.keys.seal(user, secret),
            "pending_algorithm": params.algorithm,
            "pending_digits": params.digits,
            "pending_period": params.period,
        }

        def begin(now: float) -> None:
            row = self.store.get_user(user)
            if row is None:
                self.store.insert_user(user, now, pending_since=now, **pending)
                return
            if row.active and not replace:
                raise ServiceError(
                    p.ALREADY_ENROLLED,
                    f"{user} already uses two-step verification; "
                    "renew the key with reset (twofa enroll --replace), or disable it first",
                )
            self.store.update_user(row, pending_since=now, **pending)

        self._with_proof(user, code, needs_proof and replace, begin)
        return self._provisioning(user, secret, params)

    def _provisioning(self, user: str, secret: str, params: totp.TotpParams) -> dict[str, Any]:
        """What an app needs: the key, grouped for typing, the URI and its QR code."""
        uri = totp.provisioning_uri(secret, user, self.policy.issuer_name, params)
        return {
            "user": user,
            "secret": secret,
            "secret_grouped": totp.grouped(secret),
            "uri": uri,
            "qr": totp.qr_text(uri),
            "issuer": self.policy.issuer_name,
            "algorithm": params.algorithm,
            "digits": params.digits,
            "period": params.period,
        }

    def show_secret(self, user: str, code: str) -> dict[str, Any]:
        """The active key again, to add a second device; only with a current code."""

        def show(now: float) -> dict[str, Any]:
            row = self._active_row(user)
            return self._provisioning(user, self.keys.unseal(user, row.secret or b""), _params(row))

        return self._with_proof(user, code, True, show)

    def import_secret(
        self,
        user: str,
        secret: str,
        params: totp.TotpParams,
        recovery_codes: list[str],
        *,
        window: int | None = None,
        used_step: int | None = None,
        replace: bool = False,
    ) -> dict[str, Any]:
        """Take over a secret an app already has (google-authenticator, pam_oath).

        The account is active at once; its old single-use codes become recovery codes.
        `window` keeps the old module's tolerance for this key; `used_step` is the last
        time step the old module accepted, so a code it took is not taken again here.
        Re-importing the same key changes nothing; another key for an enrolled account
        is refused unless `replace`, so running an import twice is safe.
        """
        if self.directory.uid_of(user) is None:
            raise ServiceError(p.UNKNOWN_USER, f"no such user: {user}")
        sealed = self.keys.seal(user, secret)
        digests = []
        for code in recovery_codes:
            canonical = recovery.normalize(code)
            if canonical is None:
                raise ServiceError(p.BAD_REQUEST, "a recovery code to import is malformed")
            digests.append(recovery.digest(self.keys.recovery_key, user, canonical))
        active = {
            "secret": sealed,
            "algorithm": params.algorithm,
            "digits": params.digits,
            "period": params.period,
            "pending_secret": None,
            "pending_algorithm": None,
            "pending_digits": None,
            "pending_period": None,
            "pending_since": None,
            "drift": 0,
            **CLEAR_LOCK,
            "totp_window": window,
        }

        def take_over(now: float) -> dict[str, Any]:
            row = self.store.get_user(user)
            if row is None:
                self.store.insert_user(user, now, enrolled_at=now, last_step=used_step, **active)
            elif row.active and not replace:
                if self._holds(row, secret, params):
                    return {"user": user, "state": "active", "unchanged": True}
                raise ServiceError(
                    p.ALREADY_ENROLLED,
                    f"{user} is already enrolled with another key; use --replace to overwrite",
                )
            else:
                # The time steps already used stay used: replacing a secret with the
                # same one (a second import) must not make a code seen today valid again.
                carried = totp.carry_step(row.last_step, row.period or 30, params.period)
                used = max((s for s in (carried, used_step) if s is not None), default=None)
                self.store.update_user(row, enrolled_at=now, last_step=used, **active)
            self.store.replace_recovery_codes(user, sorted(set(digests)), now)
            return {"user": user, "state": "active", "recovery_codes": len(set(digests))}

        return self._atomic(take_over)

    def _holds(self, row: UserRow, secret: str, params: totp.TotpParams) -> bool:
        """Whether `row` already has exactly this key and these parameters."""
        held = self.keys.unseal(row.name, row.secret or b"")
        same_key = hmac.compare_digest(held.encode(), secret.encode())
        return same_key and _params(row) == params

    def enroll_confirm(self, user: str, code: str) -> dict[str, Any]:
        """Activate the pending secret with a code from the app; hand out recovery codes once."""
        return self._atomic(lambda now: self._confirm(user, code, now))

    def _confirm(self, user: str, code: str, now: float) -> dict[str, Any]:
        row = self._known_row(user)
        if row.pending_secret is None:
            raise ServiceError(
                p.NOT_ENROLLED, f"{user} has no set-up in progress; begin one with enroll"
            )
        params = _params(row, pending=True)
        secret = self.keys.unseal(user, row.pending_secret)
        step = totp.time_step(now, params.period)
        typed = totp.normalize(code)
        window = self.policy.window
        matches = (
            totp.matching_steps(secret, params, typed, step - window, step + window)
            if totp.is_totp_shaped(typed, params)
            else []
        )
        if not matches:
            raise ServiceError(
                p.INVALID_CODE,
                "that code does not match the new key; check the app's entry and the clock",
            )
        self.store.update_user(
            row,
            secret=row.pending_secret,
            algorithm=params.algorithm,
            digits=params.digits,
            period=params.period,
            enrolled_at=now,
            pending_secret=None,
            pending_algorithm=None,
            pending_digits=None,
            pending_period=None,
            pending_since=None,
            last_step=max(matches),
            drift=0,
            **CLEAR_LOCK,
            totp_window=None,  # a new key follows the policy, whatever the old one kept
        )
        return {
            "user": user,
            "state": "active",
            "recovery_codes": self._new_recovery_codes(user, now),
        }

    # --- account management -------------------------------------------------------

    def status(self, user: str) -> dict[str, Any]:
        def read(now: float) -> dict[str, Any]:
            row = self.store.get_user(user)
            if row is None and self.directory.uid_of(user) is None:
                raise ServiceError(p.UNKNOWN_USER, f"no such user: {user}")
            return self._describe(user, row, now)

        return self._atomic(read)

    def list_users(self, after: str | None = None, limit: int = PAGE_SIZE) -> dict[str, Any]:
        """One page of the enrolled users and the accounts the policy requires."""

        def read(now: float) -> dict[str, Any]:
            def listed(name: str) -> dict[str, Any] | None:
                row = self.store.get_user(name)
                described = self._describe(name, row, now)
                return described if row is not None or described["required"] else None

            names = impact.candidates(self.store.user_names(), self.directory)
            users, cursor = impact.page(names, after, limit, listed)
            return {"users": users, "next": cursor}

        return self._atomic(read)

    def explain(
        self, user: str, service: str | None = None, rhost: str | None = None
    ) -> dict[str, Any]:
        """The decision for one login, the rule behind it, and the user's state."""
        decision = self.policy.decide(user, lambda: self.directory.groups_of(user), service, rhost)

        def read(now: float) -> dict[str, Any]:
            row = self.store.get_user(user)
            return {
                "user": user,
                "service": service,
                "rhost": rhost,
                "action": decision.action,
                "rule": decision.rule,
                "line": decision.where(self.policy.source),
                "state": impact.state_of(row, decision.action == REQUIRED, now),
                "known": self.directory.uid_of(user) is not None,
            }

        return self._atomic(read)

    def _describe(self, user: str, row: UserRow | None, now: float) -> dict[str, Any]:
        decision = impact.requirement(self.policy, user, self.directory)
        described: dict[str, Any] = {
            "user": user,
            "state": impact.state_of(row, decision.action == REQUIRED, now),
            "rule": decision.rule,
            "required": decision.action == REQUIRED,
            "enrollment": "none",
        }
        if row is None:
            return described
        remaining = lockout.retry_after(_lock_state(row), now)
        described.update(
            {
                "enrollment": "active" if row.active else "pending",
                "renewal_pending": row.active and row.pending_secret is not None,
                "enrolled_at": row.enrolled_at,
                "last_success": row.last_success,
                "last_failure": row.last_failure,
                "failures": row.failures,
                "strikes": row.strikes,
                "hard_after": self.policy.lockout.hard_after,
                "locked": remaining is not None,
                "retry_after": None,
                "hard_locked": bool(row.hard_locked),
                "recovery_codes_left": self.store.unused_recovery_count(row.name),
                "drift": row.drift,
            }
        )
        if remaining is not None and not math.isinf(remaining):
            described["retry_after"] = lockout.seconds_to_show(remaining)
        if row.active:
            described.update(algorithm=row.algorithm, digits=row.digits, period=row.period)
        return described

    # --- the policy ----------------------------------------------------------------

    def replace_policy(self, new: Policy, *, force: bool = False) -> None:
        """Put `new` in force, unless it would shut every administrator out."""
        with self.store.transaction():
            risk = impact.lockout_risk(new, self.store.get_user, self.directory)
        if risk is not None and not force:
            raise ServiceError(p.WOULD_LOCK_OUT, risk)
        self.policy = new

    def policy_impact(
        self, new: Policy, after: str | None = None, limit: int = PAGE_SIZE
    ) -> dict[str, Any]:
        """Who `new` would require (one page of them), who is not set up, any lock-out risk."""

        def read(now: float) -> dict[str, Any]:
            def required(name: str) -> dict[str, Any] | None:
                decision = impact.requirement(new, name, self.directory)
                if decision.action != REQUIRED:
                    return None
                state = impact.state_of(self.store.get_user(name), True, now)
                return {"user": name, "state": state, "rule": decision.rule}

            names = impact.candidates(self.store.user_names(), self.directory)
            page, cursor = impact.page(names, after, limit, required)
            return {
                "source": new.source,
                "rules": len(new.rules),
                "required": page,
                "incomplete": [r["user"] for r in page if r["state"] == impact.INCOMPLETE],
                "lockout_risk": impact.lockout_risk(new, self.store.get_user, self.directory),
                "next": cursor,
            }

        return self._atomic(read)

    def _with_proof(
        self, user: str, code: str | None, needs_proof: bool, action: Callable[[float], T]
    ) -> T:
        """Run `action`, after a user acting on their own account proves it with a code.

        A wrong proof is a failed attempt like any other: it is committed (and counts
        toward a lock-out) before the refusal is raised.
        """

        def guarded(now: float) -> T | ServiceError:
            refusal = self._check_proof(user, code, now) if needs_proof else None
            return refusal if refusal is not None else action(now)

        result = self._atomic(guarded)
        if isinstance(result, ServiceError):
            raise result
        return result

    def _check_proof(self, user: str, code: str | None, now: float) -> ServiceError | None:
        row = self.store.get_user(user)
        if row is not None and not row.active:
            return None  # nothing is protected yet: a pending set-up needs no proof
        if code is None:
            return ServiceError(p.UNAUTHORIZED, "a current verification code is required")
        result = self._verify(user, code, now, COMMAND_ORIGIN)["result"]
        if result == p.ACCEPTED:
            return None
        if result == p.LOCKED:
            return ServiceError(p.LOCKED, "too many failed attempts; try again later")
        if result == p.NOT_ENROLLED:
            return ServiceError(p.NOT_ENROLLED, f"{user} has not set up two-step verification")
        return ServiceError(p.INVALID_CODE, "the verification code was not accepted")

    def disable(self, user: str, code: str | None = None, *, needs_proof: bool = False) -> None:
        """Switch two-step verification off: secret, pending set-up and recovery codes go.

        A user may not switch it off for themselves where the policy requires it.
        """
        if needs_proof:
            decision = impact.requirement(self.policy, user, self.directory)
            if decision.action == REQUIRED:
                raise ServiceError(
                    p.UNAUTHORIZED,
                    f"the policy requires two-step verification for {user} "
                    f"(rule {decision.rule!r}); ask an administrator",
                )

        def remove(now: float) -> None:
            self.store.delete_user(self._known_row(user))

        self._with_proof(user, code, needs_proof, remove)

    def unlock(self, user: str) -> dict[str, Any]:
        def lift(now: float) -> dict[str, Any]:
            row = self._known_row(user)
            self.store.update_user(row, **CLEAR_LOCK)
            return {"user": user, "unlocked": True}

        return self._atomic(lift)

    def regenerate_recovery_codes(
        self, user: str, code: str | None = None, *, needs_proof: bool = False
    ) -> dict[str, Any]:
        def regenerate(now: float) -> dict[str, Any]:
            # Claimed first, so two renewals racing (two hosts, one store) cannot
            # interleave their deletes and inserts: the later one starts over.
            self.store.update_user(self._active_row(user))
            return {"user": user, "recovery_codes": self._new_recovery_codes(user, now)}

        return self._with_proof(user, code, needs_proof, regenerate)

    def resync(self, user: str, code1: str, code2: str) -> dict[str, Any]:
        """Find two consecutive codes within ±10 minutes and centre the window on them."""
        return self._atomic(lambda now: self._resync(user, code1, code2, now))

    def _resync(self, user: str, code1: str, code2: str, now: float) -> dict[str, Any]:
        row = self._active_row(user)
        remaining = lockout.retry_after(_lock_state(row), now)
        if remaining is not None:
            return _locked_reply(remaining)
        params = _params(row)
        secret = self.keys.unseal(user, row.secret or b"")
        first, second = totp.normalize(code1), totp.normalize(code2)
        if not (totp.is_totp_shaped(first, params) and totp.is_totp_shaped(second, params)):
            return self._record_failure(row, now, COMMAND_ORIGIN, p.REJECTED)
        step = totp.time_step(now, params.period)
        reach = totp.resync_steps(params.period)
        low, high = step - reach, step + reach
        firsts = set(totp.matching_steps(secret, params, first, low, high))
        seconds = totp.matching_steps(secret, params, second, low, high)
        last = row.last_step if row.last_step is not None else -1
        pairs = [s for s in seconds if s - 1 in firsts and s - 1 > last]
        if not pairs:
            return self._record_failure(row, now, COMMAND_ORIGIN, p.REJECTED)
        latest = max(pairs)
        self._record_success(row, now, COMMAND_ORIGIN, last_step=latest, drift=latest - step)
        return {"result": p.ACCEPTED, "drift": latest - step}
