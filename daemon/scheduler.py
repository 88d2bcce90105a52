"""When the requests of unprivileged peers are answered: after root's, a fair share each.

The PAM stack runs as root and a login waits on its answer; any local user can keep
dozens of connections full of requests that cost milliseconds each (a set-up renders
a QR code).  Answering those inline, as they arrive, let one user's backlog stand
between the event loop and the next login for seconds.  So root's lines are answered
the moment they are read (``ClientConnection`` does that itself), and everyone else's
wait here:

- the uids with lines waiting take turns, one line per turn, so a user with 32
  connections gets no more than a user with one;
- work for them runs in slices of at most ``budget`` seconds (plus the one line that
  crosses it), and a slice is started by a timer that is due at once, never by
  ``call_soon``: asyncio runs due timers *after* the I/O callbacks of the same loop
  iteration, so a line root sent meanwhile is read and answered before the next slice.

Root's wait is therefore bounded by one slice whatever the others send; what they
send can only slow down each other.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from typing import Protocol

SLICE_SECONDS = 0.002


class Waiting(Protocol):
    """A connection with lines to answer, as the scheduler sees it."""

    def answer_one(self) -> bool:
        """Answer the next line; say whether another may be answered right after it."""
        ...


class Scheduler:
    """The queue of unprivileged connections with lines to answer, served by uid in turn."""

    def __init__(self, budget: float = SLICE_SECONDS) -> None:
        self.budget = budget
        self._by_uid: OrderedDict[int, deque[Waiting]] = OrderedDict()
        self._queued: set[Waiting] = set()
        self._slice: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._queued)

    def is_queued(self, connection: Waiting) -> bool:
        return connection in self._queued

    def ready(self, uid: int, connection: Waiting) -> None:
        """`connection` (of `uid`) has a line it may be answered; serve it in its turn."""
        if connection not in self._queued:
            self._queued.add(connection)
            self._by_uid.setdefault(uid, deque()).append(connection)
        self._schedule()

    def forget(self, connection: Waiting) -> None:
        """The connection is gone, or may not be answered now; it leaves the queue."""
        if connection not in self._queued:
            return
        self._queued.discard(connection)
        for uid, queue in list(self._by_uid.items()):
            if connection in queue:
                queue.remove(connection)
                if not queue:
                    del self._by_uid[uid]
                break

    def run_slice(self) -> None:
        """Answer lines, one per uid in turn, until the budget of this slice is spent."""
        self._slice = None
        deadline = time.perf_counter() + self.budget
        while self._by_uid:
            uid, queue = self._by_uid.popitem(last=False)
            connection = queue.popleft()
            self._queued.discard(connection)
            more = connection.answer_one()
            if more and connection not in self._queued:
                self._queued.add(connection)
                queue.append(connection)
            if queue:
                self._by_uid[uid] = queue  # to the back: the other uids go first
            if time.perf_counter() >= deadline:
                break
        self._schedule()

    def _schedule(self) -> None:
        if self._by_uid and self._slice is None:
            loop = asyncio.get_running_loop()
            self._slice = loop.call_at(loop.time(), self.run_slice)

    def cancel(self) -> None:
        if self._slice is not None:
            self._slice.cancel()
            self._slice = None
