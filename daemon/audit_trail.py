"""The audit trail, bounded for what anyone can make the daemon write.

Every change to an account, and everything root's PAM stack asks, is logged.  An
unprivileged peer's reads and refusals are logged up to a budget, and what goes past
it is counted and summarised, so one user asking for their own status in a loop cannot
make journald's rate limit drop the events that matter.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .access import Peer
from .audit import Audit
from .ratelimit import Clock, RateLimit

# Operations that change an account or hand out a secret: their successes are always logged.
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
        "keys.reseal",
    }
)
AUDIT_BURST, AUDIT_INTERVAL = 30, 2.0  # per uid: 30 lines at once, then one every 2 s
SUMMARY_INTERVAL = 60.0  # how often the lines left out are summarised


class AuditTrail:
    """Audit events, with each unprivileged uid's reads and refusals on a budget."""

    def __init__(self, audit: Audit, clock: Clock) -> None:
        self.audit = audit
        self._budget = RateLimit(AUDIT_BURST, AUDIT_INTERVAL, clock)
        self._left_out: dict[int, int] = {}  # uid -> lines not written since the summary
        self._summary: asyncio.TimerHandle | None = None

    def event(self, peer: Peer, op: str, *, failed: bool, **values: Any) -> None:
        """Log the event, unless an unprivileged peer's reads and refusals are over budget."""
        bounded = peer.uid != 0 and (op not in CHANGES or failed)
        if bounded and self._budget.take(peer.uid) is not None:
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
