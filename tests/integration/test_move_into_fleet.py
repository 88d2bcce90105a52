"""`twofad --move-to URL`: a host's own SQLite state moved into the fleet's PostgreSQL
store, each account with its key, its spent time steps and its recovery codes; an
account the store already has under another key left alone and reported.

Real twofad processes, a real SQLite file and a real PostgreSQL server; codes come
from oathtool.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pam_twofa import protocol as p
from support.daemon import Daemon
from support.enrollment import enroll_at_step
from support.oath import oathtool
from support.postgres import Database
from support.users import throwaway_user

PERIOD = 30


def move(state_dir: Path, key: Path, url: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "twofad", "--state-dir", str(state_dir)]
    command += ["--key-file", str(key), "--move-to", url]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_a_hosts_accounts_move_into_the_fleet_with_their_spent_steps_and_codes(
    tmp_path: Path, postgres_database: Database
) -> None:
    key = tmp_path / "fleet.key"
    (tmp_path / "host").mkdir()
    (tmp_path / "fleet").mkdir()
    with throwaway_user() as person:
        host = Daemon(tmp_path / "host", "--key-file", str(key)).start()
        fleet = Daemon(
            tmp_path / "fleet", "--store", postgres_database.uri, "--key-file", str(key)
        ).start()
        try:
            secret, step, recovery = enroll_at_step(host, "root")
            used = oathtool(secret, (step + 1) * PERIOD)
            assert host.request("verify", user="root", code=used)["result"] == p.ACCEPTED
            assert host.request("verify", user="root", code=recovery[0])["result"] == p.ACCEPTED
            enroll_at_step(host, person.name)  # on this host
            enroll_at_step(fleet, person.name)  # and, with another key, in the fleet already
            host.stop()

            moved = move(host.state_dir, key, postgres_database.uri)
            assert moved.returncode == 0, moved.stderr
            assert "  root: moved" in moved.stdout
            assert f"  {person.name}: left alone: the store has another key" in moved.stdout
            assert secret not in moved.stdout + moved.stderr

            # the used code and the used recovery code stay used; the rest work
            assert fleet.request("verify", user="root", code=used)["result"] == p.REPLAYED
            # a spent recovery code is not moved at all: refused like any wrong code
            assert fleet.request("verify", user="root", code=recovery[0])["result"] == (p.REJECTED)
            assert fleet.request("verify", user="root", code=recovery[1])["result"] == (p.ACCEPTED)
            assert fleet.request("status", user="root")["state"] == "enabled"

            again = move(host.state_dir, key, postgres_database.uri)  # run twice: safe
            assert again.returncode == 0 and "  root: already there" in again.stdout
        finally:
            for daemon in (host, fleet):
                if daemon.alive():
                    daemon.stop()


def test_a_store_sealed_with_a_key_this_host_lacks_is_refused_before_anything_moves(
    tmp_path: Path, postgres_database: Database
) -> None:
    (tmp_path / "host").mkdir()
    (tmp_path / "fleet").mkdir()
    fleet = Daemon(
        tmp_path / "fleet", "--store", postgres_database.uri, "--key-file", str(tmp_path / "f.key")
    ).start()
    host = Daemon(tmp_path / "host", "--key-file", str(tmp_path / "h.key")).start()
    try:
        enroll_at_step(fleet, "root")
        enroll_at_step(host, "root")
    finally:
        fleet.stop()
        host.stop()
    moved = move(host.state_dir, tmp_path / "h.key", postgres_database.uri)
    assert moved.returncode == 1
    assert "key file does not belong to the database" in moved.stderr
