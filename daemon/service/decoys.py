"""Names with no account: answered like an account, so that no reply tells them apart.

A code typed for such a name is checked against a secret of its own (the same work as
a real check) and always rejected, and its failures count toward the same back-off and
hard lock as a real account's, so "try again in N seconds" does not reveal which names
exist.  The counts are kept in memory only, and only for the most recent names: an
attacker inventing names must not grow the database (or this process) without bound.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from typing import Any

from pam_twofa import protocol as p

from .. import emailing, lockout, totp
from ..policy import EmailPolicy, Policy
from .replies import ServiceError, failed_reply, locked_reply

UNKNOWN_LOCKS_KEPT = 10_000  # names with no account whose failures are remembered
UNSENT_KEPT = 10_000  # names that get no mail, whose pretended sends are remembered


def over_limit(policy: EmailPolicy, sent: tuple[float, ...], now: float) -> ServiceError | None:
    """The refusal of one more code by email, if `sent` has used up the limits."""
    wait = policy.sends_allowed(sent, now)
    if wait is None:
        return None
    minutes = max(1, round(wait / 60))
    return ServiceError(
        p.RATE_LIMITED,
        f"too many codes were sent by email; the next can be sent in {minutes} minutes",
    )


class Decoys:
    def __init__(self) -> None:
        self._secret = totp.new_secret()  # checked against, never accepted
        self.locks: OrderedDict[str, lockout.LockState] = OrderedDict()
        # Store-bound requests may run on several worker threads: one name's count is
        # read and written under this lock, so two wrong codes are never counted as one.
        self._counting = threading.Lock()
        self.sends: OrderedDict[str, tuple[float, ...]] = OrderedDict()

    def count_send(self, user: str, policy: EmailPolicy, now: float) -> None:
        """A code by email pretended for a name that gets no mail, counted as a real
        send is (RATE_LIMITED past the same limits), so the limit tells nothing."""
        with self._counting:
            sent = tuple(t for t in self.sends.get(user, ()) if now - emailing.DAY < t <= now)
            refusal = over_limit(policy, sent, now)
            if refusal is not None:
                raise refusal
            self.sends[user] = (*sent, now)
            self.sends.move_to_end(user)
            while len(self.sends) > UNSENT_KEPT:
                self.sends.popitem(last=False)

    def lock(self, user: str) -> lockout.LockState:
        """The lock-out state of a name with no account; a fresh one if none is kept."""
        return self.locks.get(user) or lockout.LockState(0, None, False)

    def verify(
        self, policy: Policy, user: str, code: str, now: float, origin: str
    ) -> dict[str, Any]:
        """Reject, as a real account would a wrong code: the same work, the same lock-out.

        The same rule as for an account nobody ever logs in to: the back-off, and the
        hard lock after `hard_after` strikes.  No success ever comes to forgive one, so
        the failures' origins are not kept (nor their memory spent).
        """
        if (locked := locked_reply(self.lock(user), now)) is not None:
            return locked
        self._check(policy, code, now)
        with self._counting:
            state = self.lock(user)
            if (locked := locked_reply(state, now)) is not None:
                return locked
            state = lockout.after_failure(policy.lockout, state, now, origin)
            self.locks[user] = dataclasses.replace(state, recent=())
            self.locks.move_to_end(user)
            while len(self.locks) > UNKNOWN_LOCKS_KEPT:
                self.locks.popitem(last=False)
        return failed_reply(p.REJECTED, state, now)

    def _check(self, policy: Policy, code: str, now: float) -> None:
        """Spend the time a real check would, so unknown users are not told apart."""
        params = policy.totp
        step = totp.time_step(now, params.period)
        totp.matching_steps(
            self._secret,
            params,
            totp.normalize(code),
            step - policy.window,
            step + policy.window,
        )
