"""The operations of twofad, as logic over a store, keys, a policy, a clock and accounts.

Nothing here opens a socket or reads the time: the server hands in the store and the
clock, so every rule about windows, replay, lock-out and recovery codes is tested with
an injected clock and no sleeping.  Each operation runs in one transaction and writes
only through compare-and-set; a lost race is retried from a fresh read.

`Service` is the public face the server calls.  The operations live by job, each a
function of a `Context` (context.py):

    logins      check, verify, resync: the PAM hook's questions
    decoys      names with no account, answered like accounts
    enrollment  a new key, confirming it, showing it again, importing one
    accounts    status, listing, explain, disable, unlock, new recovery codes
    policy      putting a policy in force, and what one would change
    proof       the current code a person gives to act on their own account
    replies     the one shape of a lock-out in a reply
"""

from __future__ import annotations

from typing import Any

from .. import totp
from ..directory import Directory
from ..keys import Keys
from ..policy import Policy
from ..store import Backend
from . import accounts, enrollment, logins
from . import policy as policies
from .context import PAGE_SIZE, Clock, Context, ServiceError

__all__ = ["PAGE_SIZE", "Context", "Service", "ServiceError"]


class Service:
    """Every operation of the protocol, over one context; the server's only way in."""

    def __init__(
        self,
        store: Backend,
        keys: Keys,
        policy: Policy,
        clock: Clock,
        directory: Directory,
    ) -> None:
        self.context = Context(store, keys, policy, clock, directory)

    # What the server and tests read; the policy is what a reload replaces.

    @property
    def store(self) -> Backend:
        return self.context.store

    @property
    def keys(self) -> Keys:
        return self.context.keys

    @property
    def clock(self) -> Clock:
        return self.context.clock

    @property
    def directory(self) -> Directory:
        return self.context.directory

    @property
    def policy(self) -> Policy:
        return self.context.policy

    @policy.setter
    def policy(self, new: Policy) -> None:
        self.context.policy = new

    # --- logins ------------------------------------------------------------------

    def check(
        self, user: str, service: str | None = None, rhost: str | None = None
    ) -> dict[str, Any]:
        return logins.check(self.context, user, service, rhost)

    def verify(
        self, user: str, code: str, service: str | None = None, rhost: str | None = None
    ) -> dict[str, Any]:
        return logins.verify(self.context, user, code, service, rhost)

    def resync(self, user: str, code1: str, code2: str) -> dict[str, Any]:
        return logins.resync(self.context, user, code1, code2)

    # --- enrollment --------------------------------------------------------------

    def enroll_begin(
        self,
        user: str,
        *,
        replace: bool = False,
        code: str | None = None,
        needs_proof: bool = False,
    ) -> dict[str, Any]:
        return enrollment.begin(
            self.context, user, replace=replace, code=code, needs_proof=needs_proof
        )

    def enroll_confirm(self, user: str, code: str) -> dict[str, Any]:
        return enrollment.confirm(self.context, user, code)

    def show_secret(self, user: str, code: str) -> dict[str, Any]:
        return enrollment.show_secret(self.context, user, code)

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
        return enrollment.import_secret(
            self.context,
            user,
            secret,
            params,
            recovery_codes,
            window=window,
            used_step=used_step,
            replace=replace,
        )

    # --- accounts ----------------------------------------------------------------

    def status(self, user: str) -> dict[str, Any]:
        return accounts.status(self.context, user)

    def list_users(self, after: str | None = None, limit: int = PAGE_SIZE) -> dict[str, Any]:
        return accounts.list_users(self.context, after, limit)

    def explain(
        self, user: str, service: str | None = None, rhost: str | None = None
    ) -> dict[str, Any]:
        return accounts.explain(self.context, user, service, rhost)

    def disable(self, user: str, code: str | None = None, *, needs_proof: bool = False) -> None:
        accounts.disable(self.context, user, code, needs_proof=needs_proof)

    def unlock(self, user: str) -> dict[str, Any]:
        return accounts.unlock(self.context, user)

    def regenerate_recovery_codes(
        self, user: str, code: str | None = None, *, needs_proof: bool = False
    ) -> dict[str, Any]:
        return accounts.regenerate_recovery_codes(self.context, user, code, needs_proof=needs_proof)

    # --- the policy --------------------------------------------------------------

    def replace_policy(self, new: Policy, *, force: bool = False) -> None:
        policies.replace_policy(self.context, new, force=force)

    def policy_impact(
        self, new: Policy, after: str | None = None, limit: int = PAGE_SIZE
    ) -> dict[str, Any]:
        return policies.policy_impact(self.context, new, after, limit)
