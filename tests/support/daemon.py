"""A real twofad, started as its own process on a temporary socket and state directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pam_twofa.client import Client, ClientError


class Daemon:
    """One twofad process; stopped only by the PID this object started."""

    def __init__(self, root: Path, *extra_args: str) -> None:
        self.root = root
        self.socket = str(root / "twofad.sock")
        self.state_dir = root / "state"
        self.key_file = self.state_dir / "twofad.key"
        self.database = self.state_dir / "twofad.db"
        self.log = root / "twofad.log"
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "twofad",
            "--socket",
            self.socket,
            "--state-dir",
            str(self.state_dir),
            *self.extra_args,
        ]

    def start(self, timeout: float = 15.0) -> Daemon:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"twofad exited with {self.proc.returncode}: {self.log_text()}")
            try:
                with Client(self.socket, timeout=1.0) as client:
                    client.request("ping")
                return self
            except ClientError:
                time.sleep(0.05)
        raise RuntimeError(f"twofad did not answer within {timeout} s: {self.log_text()}")

    def client(self, timeout: float = 5.0) -> Client:
        return Client(self.socket, timeout=timeout)

    def request(self, op: str, **fields: object) -> dict[str, object]:
        with self.client() as client:
            return client.request(op, **fields)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, as systemd would; the exit status is returned."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no chance to tidy up, as in a crash."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
