"""A real pgbouncer in front of a test PostgreSQL server, in transaction pooling mode.

Debian's ``pgbouncer`` package (its system service is never started: each test runs a
process of its own) with a configuration in a temporary directory:

- ``pool_mode = transaction``: a server connection is a client's only from BEGIN to
  COMMIT, then the next client's, and in this mode pgbouncer resets nothing between
  them (``server_reset_query`` is for session pooling), so whatever a client leaves on
  a server session (a SET, a named prepared statement) the next client meets;
- ``default_pool_size`` server connections at most (1 by default: every client's every
  transaction on the one same server session, so such leftovers cannot hide);
- clients authenticate with SCRAM against ``auth_file`` (the role's password there,
  which pgbouncer also uses to log in to the server), so twofad's password again comes
  from its libpq password file alone;
- loopback only, no Unix socket, no pid file; the log in the directory.

pgbouncer refuses to run as root, so it runs as the PostgreSQL server's own user, and
is stopped through the PID it started (SIGINT: at once, clients cut).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
from typing import Any

from support.postgres import DBNAME, ROLE, Cluster, free_port, owned_tempdir, owner

PGBOUNCER = "/usr/sbin/pgbouncer"


class Pgbouncer:
    """One pgbouncer process in front of `cluster`'s database, on 127.0.0.1:port."""

    def __init__(self, cluster: Cluster, *, pool_size: int = 1) -> None:
        self.cluster = cluster
        self.root = owned_tempdir("twofa-pgbouncer-")
        self.config = self.root / "pgbouncer.ini"
        self.userlist = self.root / "userlist.txt"
        self.log = self.root / "pgbouncer.log"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        user = owner()
        # The password pgbouncer checks clients against and logs in to the server with.
        self.userlist.touch(mode=0o600)
        self.userlist.write_text(f'"{ROLE}" "{cluster.password}"\n')
        self.config.write_text(
            "[databases]\n"
            f"{DBNAME} = host=127.0.0.1 port={cluster.port} dbname={DBNAME}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = scram-sha-256\n"
            f"auth_file = {self.userlist}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {pool_size}\n"
            "min_pool_size = 0\n"
            "reserve_pool_size = 0\n"
            "max_client_conn = 100\n"
            "server_reset_query_always = 0\n"
        )
        for path in (self.config, self.userlist):
            os.chown(path, user.pw_uid, user.pw_gid)

    def uri(self, **query: str) -> str:
        """A libpq URI of the database through this pgbouncer (password: the passfile)."""
        params = urllib.parse.urlencode({"passfile": str(self.cluster.passfile), **query})
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{DBNAME}?{params}"

    def start(self, timeout: float = 15.0) -> Pgbouncer:
        user = owner()
        extra: dict[str, Any] = {}
        if os.geteuid() == 0:
            extra = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        command = [PGBOUNCER, str(self.config)]
        setpriv = shutil.which("setpriv")
        if setpriv:  # a test run killed outright stops it too (exec: the same PID)
            command = [setpriv, "--pdeathsig", "INT", "--", *command]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.root, **extra,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"pgbouncer exited with {self.proc.returncode}: {self.log_text()}"
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"pgbouncer did not listen within {timeout} s: {self.log_text()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
