"""Operations that wait on a store elsewhere, run on worker threads, each bounded in time.

With the state in SQLite on the host, an operation takes well under a millisecond and
runs on the event loop.  With it in a database across the network, one operation can
wait for seconds (a failover, a lost link); on the event loop that would stall every
other login, even the ones that need no database.  So those operations run here:

- a few worker threads (one connection of the pool each);
- root's jobs (the PAM stack's logins) are taken before anyone else's, and one worker
  is kept for them: a local user whose requests keep the database busy cannot make a
  login wait behind them (and, under fail=open, time out into a login let in);
- every job has a deadline: a job still waiting when it passes is not started, and a
  job that runs past it is answered `unavailable` (the hook's fail= choice), never
  waited for without end;
- an unprivileged user's queue is short: past it, they are told `busy`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pam_twofa import errors

STORE_DEADLINE = 2.0  # seconds a request may wait for the store before `unavailable`
WORKERS = 4
QUEUED_PER_UID = 16  # an unprivileged uid's jobs waiting at once, beyond which: busy


class Unanswered(errors.TwofaError):
    """The store did not answer in time; the request may or may not have been done."""

    def __init__(self) -> None:
        super().__init__(
            errors.UNAVAILABLE, "the state database did not answer in time; try again shortly"
        )


@dataclass
class _Job:
    uid: int
    deadline: float
    work: Callable[[], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


class StoreRunner:
    """Worker threads for store-bound jobs: root's first, everyone's within a deadline."""

    def __init__(
        self,
        workers: int = WORKERS,
        deadline: float = STORE_DEADLINE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if workers < 2:
            raise ValueError("at least two workers: one is kept for root's requests")
        self.deadline = deadline
        self._monotonic = monotonic
        self._roots: deque[_Job] = deque()  # the PAM stack's: taken first, in order
        self._others: deque[_Job] = deque()  # everyone else's, in the order they came
        self._lock = threading.Condition()
        self._queued_by_uid: dict[int, int] = {}
        self._unprivileged_running = 0
        self._unprivileged_limit = workers - 1
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"twofad-store-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, uid: int, work: Callable[[], Any]) -> asyncio.Future[Any]:
        """Run `work()` on a worker; the future holds its result, or `Unanswered` if the
        deadline passed first, or `TwofaError(busy)` if `uid` has too many queued."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        deadline = self._monotonic() + self.deadline
        with self._lock:
            if uid != 0 and self._queued_by_uid.get(uid, 0) >= QUEUED_PER_UID:
                future.set_exception(
                    errors.TwofaError(errors.BUSY, "too many requests waiting; try again later")
                )
                return future
            self._queued_by_uid[uid] = self._queued_by_uid.get(uid, 0) + 1
            job = _Job(uid, deadline, work, future, loop)
            (self._roots if uid == 0 else self._others).append(job)
            self._lock.notify_all()
        timer = loop.call_at(loop.time() + self.deadline, _time_out, future)
        future.add_done_callback(lambda _: timer.cancel())
        return future

    def stop(self, wait: float = 0.0) -> None:
        """No new job starts; the threads end once their current job returns, which is
        waited for up to `wait` seconds (a store closed under a running job is not safe)."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        for thread in self._threads:
            thread.join(wait)

    # --- the workers -----------------------------------------------------------------

    def _next(self) -> _Job | None:
        with self._lock:
            while True:
                if self._stopping:
                    return None
                job = self._take()
                if job is not None:
                    return job
                self._lock.wait()

    def _take(self) -> _Job | None:
        """The first job this worker may run: root's always; others' while a worker is free."""
        if self._roots:
            job = self._roots.popleft()
        elif self._others and self._unprivileged_running < self._unprivileged_limit:
            job = self._others.popleft()
            self._unprivileged_running += 1
        else:
            return None
        self._queued_by_uid[job.uid] -= 1
        if not self._queued_by_uid[job.uid]:
            del self._queued_by_uid[job.uid]
        return job

    def _work(self) -> None:
        while (job := self._next()) is not None:
            try:
                if self._monotonic() >= job.deadline:
                    outcome: tuple[bool, Any] = (False, Unanswered())
                else:
                    outcome = (True, job.work())
            except BaseException as exc:  # handed to the loop, which answers it
                outcome = (False, exc)
            finally:
                if job.uid != 0:
                    with self._lock:
                        self._unprivileged_running -= 1
                        self._lock.notify_all()
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits now
                job.loop.call_soon_threadsafe(_settle, job.future, outcome)


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.done():
        return  # answered `unavailable` already
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _time_out(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(Unanswered())
