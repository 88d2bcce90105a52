"""A fleet's store failing over under a running twofad: the primary dies, the synchronous
standby is promoted, and the same twofad process goes on with every rule intact.

A real primary and a real synchronous streaming standby (tests/support/postgres.py), a
real twofad whose --store is one libpq URI naming both hosts with
``target_session_attrs=read-write``, so libpq takes whichever of them accepts writes.
While there is none (the primary dead, the standby not yet promoted) a request that
needs the store is answered `unavailable` at once; after the promotion the time step and
the recovery code spent on the old primary stay spent, because a synchronous standby had
them before the primary answered.  Codes come from oathtool.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pam_twofa import protocol as p
from pam_twofa.client import RequestFailed
from support.daemon import Daemon
from support.enrollment import enroll
from support.postgres import Cluster, Database, both_hosts_uri

pytestmark = pytest.mark.integration


def timed_refusal(daemon: Daemon, op: str, **fields: object) -> str:
    """The error code `op` is answered with (a hang would be the client's timeout instead)."""
    began = time.monotonic()
    with pytest.raises(RequestFailed) as caught:
        daemon.request(op, **fields)
    print(f"{op} with no writable host answered {caught.value.code} in "
          f"{time.monotonic() - began:.2f} s")  # fmt: skip
    return caught.value.code


def test_the_same_twofad_goes_on_after_the_standby_is_promoted(
    tmp_path: Path, postgres_cluster: Callable[[], Cluster]
) -> None:
    primary = postgres_cluster().start()
    database = primary.new_database()
    standby = primary.standby()
    (tmp_path / "a").mkdir()
    daemon = Daemon(
        tmp_path / "a", "--store", both_hosts_uri(database, standby),
        "--key-file", str(tmp_path / "fleet.key"),
    ).start()  # fmt: skip
    try:
        codes, recovery_codes = enroll(daemon, "root")
        used = codes.next()
        assert daemon.request("verify", user="root", code=used)["result"] == p.ACCEPTED
        spent = daemon.request("verify", user="root", code=recovery_codes[0])
        assert (spent["result"], spent["method"]) == (p.ACCEPTED, "recovery")

        primary.kill()
        fresh = codes.next()  # never sent while a database could take it
        assert timed_refusal(daemon, "verify", user="root", code=fresh) == p.UNAVAILABLE
        assert timed_refusal(daemon, "status", user="root") == p.UNAVAILABLE
        assert daemon.request("ping")["pong"] is True

        began = time.monotonic()
        standby.promote()
        print(f"standby promoted in {time.monotonic() - began:.2f} s")
        began = time.monotonic()
        replayed = daemon.request("verify", user="root", code=used)
        print(f"first request after the promotion answered in {time.monotonic() - began:.2f} s")
        assert replayed["result"] == p.REPLAYED
        again = daemon.request("verify", user="root", code=recovery_codes[0])
        assert again["result"] == p.REPLAYED
        # The verify answered `unavailable` wrote nothing: its code is still unspent.
        accepted = daemon.request("verify", user="root", code=fresh)
        assert (accepted["result"], accepted["method"]) == (p.ACCEPTED, "totp")
        status = daemon.request("status", user="root")
        assert status["state"] == "enabled"
        assert status["recovery_codes_left"] == len(recovery_codes) - 1
        assert Database(standby, database.schema).execute("SELECT name FROM users") == [("root",)]

        assert daemon.alive()  # the same process throughout: no restart
        log = daemon.log_text()
        assert "verify not answered" in log
        assert "internal error" not in log
        for secret in (used, fresh, recovery_codes[0]):
            assert secret not in log
    finally:
        if daemon.alive():
            daemon.stop()
        standby.destroy()
