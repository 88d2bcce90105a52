"""Several hosts' twofad on one PostgreSQL store: one enrollment, every rule held across
them, and the database's outage answered as `unavailable` and survived without a restart.

Each "host" is a real twofad process with its own socket and state directory, sharing
the database and the key file, as a fleet's hosts do; the database is a real
PostgreSQL server started for the test (tests/support/postgres.py), reached over
127.0.0.1 with the password in a libpq password file only; codes come from oathtool.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pam_twofa import protocol as p
from pam_twofa.client import RequestFailed
from support.daemon import Daemon
from support.enrollment import enroll_at_step
from support.oath import oathtool
from support.postgres import Cluster, Database

PERIOD = 30


def host(root: Path, name: str, store: str, key_file: Path) -> Daemon:
    (root / name).mkdir(exist_ok=True)
    return Daemon(root / name, "--store", store, "--key-file", str(key_file)).start()


@pytest.fixture
def fleet(tmp_path: Path, postgres_database: Database) -> Iterator[tuple[Daemon, Daemon]]:
    key_file = tmp_path / "fleet.key"
    first = host(tmp_path, "a", postgres_database.uri, key_file)  # makes the key
    second = host(tmp_path, "b", postgres_database.uri, key_file)
    yield first, second
    for daemon in (first, second):
        if daemon.alive():
            daemon.stop()


def refused(daemon: Daemon, op: str, **fields: object) -> RequestFailed:
    with pytest.raises(RequestFailed) as caught:
        daemon.request(op, **fields)
    return caught.value


def test_one_enrollment_serves_every_host(fleet: tuple[Daemon, Daemon]) -> None:
    a, b = fleet
    secret, step, _ = enroll_at_step(a, "root")
    assert b.request("status", user="root")["state"] == "enabled"
    code = oathtool(secret, (step + 1) * PERIOD)
    assert b.request("verify", user="root", code=code)["result"] == p.ACCEPTED
    seen = a.request("status", user="root")  # the last login, seen from the other host
    assert seen["last_host"] == socket.gethostname() and seen["last_success"]
    assert "event=verify user=root result=accepted" in b.log_text()
    assert f"host={socket.gethostname()}" in b.log_text()


def test_a_code_used_on_one_host_is_refused_on_the_next(fleet: tuple[Daemon, Daemon]) -> None:
    a, b = fleet
    secret, step, _ = enroll_at_step(a, "root")
    code = oathtool(secret, (step + 1) * PERIOD)
    assert a.request("verify", user="root", code=code)["result"] == p.ACCEPTED
    assert b.request("verify", user="root", code=code)["result"] == p.REPLAYED
    earlier = oathtool(secret, step * PERIOD)  # the step the set-up spent, on either host
    assert b.request("verify", user="root", code=earlier)["result"] == p.REPLAYED


def test_twenty_logins_with_one_code_split_across_two_hosts_get_in_once(
    fleet: tuple[Daemon, Daemon],
) -> None:
    """Ten connections on each host, all ready, all sending the same code at once:
    exactly one login gets in."""
    a, b = fleet
    secret, step, _ = enroll_at_step(a, "root")
    code = oathtool(secret, (step + 1) * PERIOD)
    clients = [(a, b)[i % 2].client() for i in range(20)]
    for client in clients:
        client.request("ping")  # connected and ready before the race starts
    barrier = threading.Barrier(len(clients))
    results: list[object] = [None] * len(clients)

    def race(index: int) -> None:
        barrier.wait()
        results[index] = clients[index].request("verify", user="root", code=code)["result"]

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for client in clients:
        client.close()
    assert results.count(p.ACCEPTED) == 1
    # the rest are replays, each counted as a failure, so the lock-out ends them early
    assert set(results) - {p.ACCEPTED} <= {p.REPLAYED, p.LOCKED}


def test_a_recovery_code_works_once_across_the_fleet(fleet: tuple[Daemon, Daemon]) -> None:
    a, b = fleet
    _, _, recovery_codes = enroll_at_step(a, "root")
    first = a.request("verify", user="root", code=recovery_codes[0])
    assert (first["result"], first["method"]) == (p.ACCEPTED, "recovery")
    assert b.request("verify", user="root", code=recovery_codes[0])["result"] == p.REPLAYED
    assert b.request("status", user="root")["recovery_codes_left"] == len(recovery_codes) - 1


def test_failures_on_every_host_add_up_to_one_lock_out(fleet: tuple[Daemon, Daemon]) -> None:
    """Wrong codes alternating between hosts count as on one host: the lock comes after
    as many as one host allows, and then holds on every host."""
    a, b = fleet
    enroll_at_step(a, "root")
    results = []
    for attempt in range(8):
        daemon = (a, b)[attempt % 2]
        wrong = "000000" if attempt % 2 else "999999"
        results.append(daemon.request("verify", user="root", code=wrong)["result"])
    rejected = results.count(p.REJECTED)
    assert results == [p.REJECTED] * rejected + [p.LOCKED] * (8 - rejected)
    assert 0 < rejected < 8
    for daemon in fleet:
        status = daemon.request("status", user="root")
        assert (status["failures"], status["locked"]) == (rejected, True)


def test_the_database_down_is_unavailable_and_its_return_needs_no_restart(
    tmp_path: Path, postgres_cluster: Callable[[], Cluster]
) -> None:
    cluster = postgres_cluster().start()
    database = cluster.new_database()
    daemon = host(tmp_path, "a", database.uri, tmp_path / "fleet.key")
    try:
        secret, step, _ = enroll_at_step(daemon, "root")
        cluster.kill()
        began = time.monotonic()
        error = refused(daemon, "check", user="root", service="sshd")
        took = time.monotonic() - began
        print(f"check with the database down answered {error.code} after {took:.2f} s")
        assert error.code == p.UNAVAILABLE
        assert daemon.request("ping")["pong"] is True  # what needs no store still answers
        explained = daemon.request("policy.explain", user="root", service="sshd")
        assert explained["state"] is None and explained["action"]
        cluster.start()
        code = oathtool(secret, (step + 1) * PERIOD)  # the next step: inside the window
        assert daemon.request("verify", user="root", code=code)["result"] == p.ACCEPTED
        assert daemon.alive()
        log = daemon.log_text()
        assert "check not answered" in log and secret not in log and code not in log
    finally:
        if daemon.alive():
            daemon.stop()


def test_a_password_in_the_store_url_stops_the_start_and_is_never_shown(
    tmp_path: Path, postgres_database: Database
) -> None:
    url = postgres_database.uri.replace("@", ":hunter2@", 1)
    (tmp_path / "a").mkdir()
    daemon = Daemon(tmp_path / "a", "--store", url)
    with pytest.raises(RuntimeError) as caught:
        daemon.start(timeout=10)
    assert "password" in str(caught.value) and "hunter2" not in str(caught.value)


def test_a_host_started_while_the_database_is_down_serves_once_it_is_up(
    tmp_path: Path, postgres_cluster: Callable[[], Cluster]
) -> None:
    cluster = postgres_cluster().start()
    database = cluster.new_database()
    key_file = tmp_path / "fleet.key"
    first = host(tmp_path, "a", database.uri, key_file)
    enroll_at_step(first, "root")
    first.stop()
    cluster.stop()
    shutil.rmtree(tmp_path / "a")
    second = host(tmp_path, "b", database.uri, key_file)
    try:
        assert refused(second, "status", user="root").code == p.UNAVAILABLE
        cluster.start()
        assert second.request("status", user="root")["state"] == "enabled"
    finally:
        second.stop()


def test_a_database_that_stops_answering_is_unavailable_in_bounded_time_and_stalls_no_one(
    tmp_path: Path, postgres_cluster: Callable[[], Cluster]
) -> None:
    """The server frozen (SIGSTOP): no refusal comes, only silence.  The check waiting on
    it is answered `unavailable` by the daemon's own bound, and a ping sent meanwhile
    is answered at once."""
    cluster = postgres_cluster().start()
    database = cluster.new_database()
    daemon = host(tmp_path, "a", database.uri, tmp_path / "fleet.key")
    try:
        enroll_at_step(daemon, "root")
        cluster.freeze()
        outcome: list[object] = []

        def check() -> None:
            try:
                outcome.append(daemon.request("check", user="root"))
            except RequestFailed as exc:
                outcome.append(exc.code)

        began = time.monotonic()
        waiting = threading.Thread(target=check)
        waiting.start()
        time.sleep(0.3)
        assert daemon.request("ping")["pong"] is True
        pinged = time.monotonic() - began
        waiting.join(10)
        took = time.monotonic() - began
        print(f"frozen database: ping answered at {pinged:.2f} s, check {outcome} at {took:.2f} s")
        assert outcome == [p.UNAVAILABLE]
        cluster.thaw()
        assert daemon.request("status", user="root")["state"] == "enabled"
    finally:
        cluster.thaw()
        if daemon.alive():
            daemon.stop()
