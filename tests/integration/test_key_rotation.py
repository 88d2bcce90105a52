"""Replacing the fleet's key with logins going on: a new key added to every host's ring,
made current, every secret re-sealed, the old key removed; and a host without the key
its database needs refuses to start, saying so, rather than answering "invalid code".

Two real twofad processes share one real PostgreSQL store; the keys are real files
made by `twofactl keys new`; codes come from oathtool.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pam_twofa import protocol as p
from support.cli import twofactl
from support.daemon import Daemon
from support.enrollment import enroll_at_step
from support.oath import oathtool
from support.postgres import Database

PERIOD = 30


class Host:
    """One host of the fleet: its socket and state, its current key and older keys."""

    def __init__(self, root: Path, store: str, key: Path) -> None:
        self.root = root
        self.store = store
        self.key = key
        self.older = root / "older-keys"
        self.older.mkdir(parents=True)
        self.daemon: Daemon | None = None

    def start(self) -> Daemon:
        self.daemon = Daemon(
            self.root,
            "--store",
            self.store,
            "--key-file",
            str(self.key),
            "--older-keys",
            str(self.older),
        ).start()
        return self.daemon

    def restart(self) -> Daemon:
        if self.daemon is not None and self.daemon.alive():
            self.daemon.stop()
        return self.start()

    def stop(self) -> None:
        if self.daemon is not None and self.daemon.alive():
            self.daemon.stop()


def copy_key(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)
    target.chmod(0o400)


def login(daemon: Daemon, code: str) -> str:
    return str(daemon.request("verify", user="root", code=code)["result"])


def test_the_key_is_replaced_across_the_fleet_while_logins_go_on(
    tmp_path: Path, postgres_database: Database
) -> None:
    old_key = tmp_path / "old.key"
    hosts = [Host(tmp_path / name, postgres_database.uri, old_key) for name in ("a", "b")]
    a, b = (host.start() for host in hosts)
    try:
        secret, step, recovery = enroll_at_step(a, "root")
        assert login(b, recovery.pop()) == p.ACCEPTED

        # 1. a new key, added to every host's ring as an older key: nothing changes yet
        new_key = tmp_path / "new.key"
        made = twofactl(a.socket, "keys", "new", str(new_key))
        assert made.returncode == 0, made.stderr
        for host in hosts:
            copy_key(new_key, host.older / "new.key")
            host.restart()
        assert login(hosts[0].daemon, recovery.pop()) == p.ACCEPTED  # type: ignore[arg-type]

        # 2. made current host by host: the old key moves to older-keys
        for host in hosts:
            shutil.move(host.older / "new.key", host.root / "current.key")
            copy_key(old_key, host.older / "old.key")
            host.key = host.root / "current.key"
            daemon = host.restart()
            assert login(daemon, recovery.pop()) == p.ACCEPTED  # sealed with the old key

        # 3. re-sealed once, from any host
        report = twofactl(hosts[1].daemon.socket, "keys", "reseal", "--json")  # type: ignore[union-attr]
        assert report.returncode == 0, report.stderr
        summary = report.json()
        assert (summary["accounts"], summary["resealed"], summary["unreadable"]) == (1, 1, [])
        assert summary["recovery_codes_under_older_keys"] == ["root"]
        regenerated = twofactl(
            hosts[1].daemon.socket, "recovery-codes", "root", "--regenerate", "--json"
        )  # type: ignore[union-attr]
        assert regenerated.returncode == 0, regenerated.stderr
        recovery = list(regenerated.json()["recovery_codes"])
        again = twofactl(hosts[0].daemon.socket, "keys", "reseal", "--json").json()  # type: ignore[union-attr]
        assert (again["resealed"], again["recovery_codes_under_older_keys"]) == (0, [])

        # 4. the old key removed everywhere: every login still works
        for host in hosts:
            (host.older / "old.key").unlink()
            host.restart()
        first, second = (host.daemon for host in hosts)
        assert first is not None and second is not None
        assert login(first, oathtool(secret, (step + 1) * PERIOD)) == p.ACCEPTED
        assert login(second, oathtool(secret, (step + 1) * PERIOD)) == p.REPLAYED
        assert login(second, recovery.pop()) == p.ACCEPTED
    finally:
        for host in hosts:
            host.stop()


def test_a_host_without_the_key_its_database_needs_refuses_to_start(
    tmp_path: Path, postgres_database: Database
) -> None:
    key = tmp_path / "fleet.key"
    first = Host(tmp_path / "a", postgres_database.uri, key)
    first.start()
    try:
        enroll_at_step(first.daemon, "root")  # type: ignore[arg-type]
    finally:
        first.stop()
    stranger = Host(tmp_path / "b", postgres_database.uri, tmp_path / "another.key")
    with pytest.raises(RuntimeError) as caught:
        stranger.start()
    assert "key file does not belong to the database" in str(caught.value)
