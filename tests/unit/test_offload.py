"""Store-bound work on worker threads: root's first, one worker kept for root, every
job within its deadline; and the server answering through them, in order, with
`unavailable` when the store does not answer and what needs no store still answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from pam_twofa import errors
from pam_twofa import protocol as p
from support.exchange import exchange
from twofad.access import Peer
from twofad.audit import Audit
from twofad.offload import QUEUED_PER_UID, StoreRunner, Unanswered
from twofad.server import Server
from twofad.service import Service

ROOT = Peer(pid=1, uid=0, gid=0)
BOB = Peer(pid=2, uid=1001, gid=1001)  # no administrator


@pytest.fixture
def runner() -> Iterator[StoreRunner]:
    runner = StoreRunner(workers=2, deadline=0.5)
    yield runner
    runner.stop(wait=10)  # before the store closes: no job may still be using it


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_a_job_runs_on_a_worker_and_its_result_comes_back(runner: StoreRunner) -> None:
    async def go() -> Any:
        return await runner.submit(1000, lambda: threading.current_thread().name)

    assert run(go()).startswith("twofad-store-")


def test_what_a_job_raises_comes_back_raised(runner: StoreRunner) -> None:
    def broken() -> None:
        raise KeyError("gone")

    async def go() -> None:
        with pytest.raises(KeyError):
            await runner.submit(0, broken)

    run(go())


def test_one_worker_is_kept_for_root(runner: StoreRunner) -> None:
    """A user's job holding a worker: the next user job waits, root's runs at once."""
    release = threading.Event()
    order: list[str] = []

    def held() -> None:
        release.wait(5)
        order.append("held")

    async def go() -> None:
        first = runner.submit(1000, held)
        second = runner.submit(1001, lambda: order.append("user"))
        await asyncio.sleep(0.05)
        assert order == []  # the second user job waits for the first worker
        await runner.submit(0, lambda: order.append("root"))
        assert order == ["root"]
        release.set()
        await first
        await second

    run(go())
    assert order == ["root", "held", "user"]


def test_a_job_past_its_deadline_is_answered_unavailable_and_a_waiting_one_never_starts(
    runner: StoreRunner,
) -> None:
    release = threading.Event()
    started: list[str] = []

    async def go() -> None:
        stuck = [runner.submit(0, lambda: release.wait(5)) for _ in range(2)]
        late = runner.submit(0, lambda: started.append("late"))
        for future in (*stuck, late):
            with pytest.raises(Unanswered) as caught:
                await future
            assert caught.value.code == errors.UNAVAILABLE and caught.value.ours
        release.set()
        await asyncio.sleep(0.1)  # the workers come free and find the late job expired

    run(go())
    assert started == []


def test_a_user_with_too_many_jobs_waiting_is_told_busy(runner: StoreRunner) -> None:
    release = threading.Event()

    async def go() -> None:
        running = runner.submit(1000, lambda: release.wait(5))
        await asyncio.sleep(0.05)  # taken by a worker: what follows waits in the queue
        waiting = [running] + [
            runner.submit(1000, lambda: release.wait(5)) for _ in range(QUEUED_PER_UID)
        ]
        with pytest.raises(errors.TwofaError) as caught:
            await runner.submit(1000, lambda: None)
        assert caught.value.code == errors.BUSY
        assert await runner.submit(0, lambda: "root still gets in") == "root still gets in"
        release.set()
        await asyncio.gather(*waiting, return_exceptions=True)

    run(go())


# --- the server through a runner ----------------------------------------------------------


class SlowStore:
    """The service's store, made to hang while `stalled` is set: a database out of reach.

    Its one SQLite connection serves one transaction at a time, as a connection of the
    PostgreSQL pool does: a worker released from its stall finishes before the next
    worker's transaction begins.
    """

    def __init__(self, store: Any) -> None:
        self._store = store
        self._one_at_a_time = threading.Lock()
        self.stalled = threading.Event()
        self.released = threading.Event()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self._one_at_a_time, self._store.transaction():
            yield

    def __getattr__(self, name: str) -> Any:
        if self.stalled.is_set():
            self.released.wait(5)
        return getattr(self._store, name)


@pytest.fixture
def slow(service: Service) -> Iterator[SlowStore]:
    slow = SlowStore(service.context.store)
    service.context.store = slow  # type: ignore[assignment]
    yield slow
    slow.stalled.clear()
    slow.released.set()  # a worker still stalled goes on, and ends


def ask(server: Server, peer: Peer, *lines: bytes) -> list[p.Response]:
    async def go() -> list[p.Response]:
        replies = []
        for line in lines:
            answer = server._respond(peer, line.rstrip(b"\n"))
            if isinstance(answer, asyncio.Future):
                answer = await answer
            replies.append(answer[0])
        return replies

    return run(go())


def served(service: Service, runner: StoreRunner) -> tuple[Server, io.StringIO]:
    log = io.StringIO()
    return Server(service, Audit(stream=log), runner=runner), log


def test_through_a_runner_the_answers_are_the_same(service: Service, runner: StoreRunner) -> None:
    server, _ = served(service, runner)
    status = ask(server, ROOT, p.encode_request("status", user="bob"))[0]
    assert status.ok and status.data["state"] == "disabled"
    refused = ask(server, BOB, p.encode_request("status", user="alice"))[0]
    assert refused.code == p.UNAUTHORIZED


def test_a_store_out_of_reach_is_unavailable_and_ping_and_explain_still_answer(
    service: Service, runner: StoreRunner, slow: SlowStore
) -> None:
    server, log = served(service, runner)
    slow.stalled.set()
    check, ping, explain = ask(
        server,
        ROOT,
        p.encode_request("check", user="alice", service="sshd"),
        p.encode_request("ping"),
        p.encode_request("policy.explain", user="alice", service="sshd"),
    )
    assert check.code == p.UNAVAILABLE
    assert ping.ok
    assert explain.ok and explain.data["state"] is None and explain.data["action"]
    assert "check not answered" in log.getvalue()
    slow.stalled.clear()
    slow.released.set()
    again = ask(server, ROOT, p.encode_request("check", user="alice", service="sshd"))[0]
    assert again.ok  # the store back: answered again, no restart


def test_a_connection_gets_its_replies_in_order_when_some_wait_for_the_store(
    service: Service, runner: StoreRunner
) -> None:

    server, _ = served(service, runner)

    payload = b"".join(
        p.encode_request("status" if i % 2 else "ping", id=i, user="bob" if i % 2 else None)
        for i in range(10)
    )
    replies = exchange(server, payload)
    assert [r.id for r in replies] == list(range(10))
    assert all(r.ok for r in replies)
