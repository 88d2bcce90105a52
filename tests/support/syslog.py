"""What a PAM module writes to syslog, received by the test itself.

The hook logs with syslog(3), which sends one datagram per message to /dev/log.  A
test that must see those lines listens there itself:

- where nothing listens at /dev/log (a container without journald or rsyslog), the
  receiver binds /dev/log for the test's duration and removes it afterwards;
- where a system logger owns /dev/log, the receiver binds a socket of its own in a
  temporary directory, and the program under test runs in a mount namespace of its own
  in which that socket is bind-mounted over /dev/log (`Syslog.wrap`): the machine's
  logger is neither replaced nor sent the test's lines.

Lines are kept as syslog(3) sends them: ``<PRI>TIMESTAMP TAG[PID]: TEXT``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

DEV_LOG = Path("/dev/log")


class Syslog:
    """A listening syslog socket and the lines it has received."""

    def __init__(self, sock: socket.socket, path: Path, private: bool) -> None:
        self._sock = sock
        self.path = path
        self.private = private  # True: only programs run through wrap() reach it
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._receive, name="syslog", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while True:
            try:
                datagram = self._sock.recv(65536)
            except OSError:
                return  # closed
            with self._lock:
                self._lines.append(datagram.decode("utf-8", "replace").rstrip("\0\n"))

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """`argv` run so that its syslog(3) reaches this receiver."""
        if not self.private:
            return list(argv)
        script = 'mount --bind "$0" /dev/log && exec "$@"'
        return ["unshare", "--mount", "--propagation", "private", "--",
                "/bin/sh", "-c", script, str(self.path), *argv]  # fmt: skip

    def lines(self, tag: str) -> list[str]:
        """The texts of the messages with syslog tag `tag`, in the order they came."""
        marker = f" {tag}["
        with self._lock:
            received = list(self._lines)
        texts = []
        for line in received:
            at = line.find(marker)
            if at >= 0:
                texts.append(line[line.index("]: ", at) + 3 :])
        return texts

    def wait_for(self, tag: str, text: str, timeout: float = 5.0) -> list[str]:
        """The `tag` messages once one holds `text` (a datagram is delivered, not instant)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            texts = self.lines(tag)
            if any(text in line for line in texts):
                return texts
            time.sleep(0.02)
        return self.lines(tag)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(2)


@contextlib.contextmanager
def syslog_receiver() -> Iterator[Syslog]:
    """Receive syslog lines for the block: at /dev/log if free, else in a namespace."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    private = os.path.lexists(DEV_LOG)
    directory = Path(tempfile.mkdtemp(prefix="twofa-syslog-")) if private else None
    path = directory / "log" if directory else DEV_LOG
    try:
        sock.bind(str(path))
    except OSError:
        sock.close()
        raise
    receiver = Syslog(sock, path, private)
    try:
        yield receiver
    finally:
        receiver.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        if directory:
            shutil.rmtree(directory, ignore_errors=True)
