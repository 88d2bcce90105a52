"""A real twofa-mailer, started as its own process on a temporary socket and config."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from support.smtp import PASSWORD, SmtpServer


def password_file(directory: Path, password: str = PASSWORD) -> Path:
    """The relay's password in a file only its owner (root, here) can read."""
    path = directory / "mailer.password"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(descriptor, "w") as written:
        written.write(password + "\n")
    return path


class Mailer:
    """One twofa-mailer process; stopped only by the PID this object started."""

    def __init__(self, directory: Path, config_text: str, socket_dir: Path | None = None) -> None:
        self.config = directory / "mailer.yaml"
        self.config.write_text(config_text)
        self.socket = str((socket_dir or directory) / "mailer.sock")
        self.log = directory / "mailer.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def for_server(cls, directory: Path, server: SmtpServer, *, auth: bool = True) -> Mailer:
        password = password_file(directory) if auth else None
        return cls(directory, server.mailer_config(password))

    def start(self, timeout: float = 15.0) -> Mailer:
        command = [sys.executable, "-m", "twofad.mailer.main", "--config", str(self.config)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*command, "--socket", self.socket], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None:
                raise RuntimeError(f"twofa-mailer exited: {self.log_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"twofa-mailer did not listen: {self.log_text()}")
            time.sleep(0.05)
        return self

    def __enter__(self) -> Mailer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def hand_over(self, message: dict[str, Any] | bytes, timeout: float = 20.0) -> dict[str, Any]:
        """One message over the socket, as twofad hands it; the mailer's answer."""
        line = message if isinstance(message, bytes) else json.dumps(message).encode() + b"\n"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(self.socket)
            sock.sendall(line)
            answer = sock.makefile("rb").readline()
        return dict(json.loads(answer))
