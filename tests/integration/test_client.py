"""The blocking client against a live daemon: reuse, reconnection, time-outs, clear errors."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from pam_twofa.client import Client, RequestFailed, Unavailable
from support.daemon import Daemon

pytestmark = pytest.mark.integration


def test_several_requests_on_one_connection(daemon: Daemon) -> None:
    with daemon.client() as client:
        client.request("ping")
        connection = client._sock
        for _ in range(20):
            assert client.request("ping")["pong"] is True
        assert client.request("status", user="root")["user"] == "root"
        assert client._sock is connection  # the same connection all along, never renewed


def test_a_connection_the_daemon_closed_while_idle_is_renewed(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path, "--idle-timeout", "1").start()
    try:
        with daemon.client() as client:
            client.request("ping")
            time.sleep(1.6)  # a person reading the prompt for longer than the idle time-out
            assert client.request("check", user="root")["action"] == "skip"
    finally:
        daemon.stop()


def test_errors_are_request_failed_with_the_code(daemon: Daemon) -> None:
    with daemon.client() as client:
        with pytest.raises(RequestFailed) as unknown:
            client.request("status", user="nosuchuser-x")
        assert unknown.value.code == "unknown_user"
        with pytest.raises(RequestFailed) as invalid:
            client.request("status", user="a b")
        assert invalid.value.code == "bad_request"
        assert client.request("ping")["pong"] is True  # the connection is still good


def test_no_daemon_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="cannot reach twofad"):
        Client(str(tmp_path / "nothing.sock")).request("ping")


def test_a_daemon_that_does_not_answer_times_out(tmp_path: Path) -> None:
    path = str(tmp_path / "silent.sock")
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.bind(path)
    silent.listen(4)
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True).start()
    with pytest.raises(Unavailable, match=r"did not answer within 0\.5 s"):
        Client(path, timeout=0.5).request("ping")
    silent.close()


_WRITE_AFTER_THE_DAEMON_CLOSED = """
import signal, socket, sys, threading
from pam_twofa import protocol as p
from pam_twofa.client import Client, Unavailable

# As in login and pamtester, which leave SIGPIPE at its default: death.
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(sys.argv[1])
listener.listen(1)
refusal = p.encode_response(p.error_response(p.BUSY, "twofad is busy"))

def refuse():
    connection, _ = listener.accept()
    connection.sendall(refusal)
    connection.close()

door = threading.Thread(target=refuse)
door.start()
client = Client(sys.argv[1], timeout=2)
client._connect()
door.join()  # the daemon has answered and gone before the request is written
try:
    client.request("ping")
except Unavailable as exc:
    print("unavailable:", exc)
"""


def test_writing_to_a_daemon_that_closed_first_is_unavailable_not_sigpipe(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "-c", _WRITE_AFTER_THE_DAEMON_CLOSED, str(tmp_path / "gone.sock")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, (run.returncode, run.stderr)
    assert run.stdout.startswith("unavailable: twofad is busy"), run.stdout  # and why


class _ClosesOnUnread:
    """A listener that answers a connection's first line, then closes the connection as
    soon as the next line arrives, without reading it (as twofad's idle close does
    when a request lands just then), for the first `closes` connections."""

    def __init__(self, path: str, closes: int) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(8)
        self.closes = closes
        self.lines_read: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        import select

        from pam_twofa import protocol as p

        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                buffer = p.LineBuffer()
                while True:
                    if self.closes and self.lines_read:
                        select.select([connection], [], [], 5)  # the next line is there...
                        self.closes -= 1
                        break  # ... and is never read
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    for line in buffer.feed(chunk):
                        self.lines_read.append(line)
                        request = p.decode_request(line)
                        connection.sendall(p.encode_response(p.Response({}, id=request.id)))

    def close(self) -> None:
        self.listener.close()


def test_a_request_the_daemon_closed_on_unread_is_sent_once_more(tmp_path: Path) -> None:
    server = _ClosesOnUnread(str(tmp_path / "closing.sock"), closes=1)
    try:
        with Client(str(tmp_path / "closing.sock"), timeout=2) as client:
            client.request("ping")
            client.request("verify", user="alice", code="123456")
        ops = [line.split(b'"op":"')[1].split(b'"')[0] for line in server.lines_read]
        assert ops == [b"ping", b"verify"]  # read once: by the second connection
    finally:
        server.close()


def test_a_request_closed_on_twice_is_unavailable(tmp_path: Path) -> None:
    server = _ClosesOnUnread(str(tmp_path / "closing.sock"), closes=5)
    try:
        with Client(str(tmp_path / "closing.sock"), timeout=2) as client:
            client.request("ping")
            with pytest.raises(Unavailable, match="connection to twofad failed"):
                client.request("verify", user="alice", code="123456")
        assert server.closes == 3  # sent twice, never read, never sent a third time
    finally:
        server.close()


def test_a_code_sent_as_the_idle_close_lands_is_answered(tmp_path: Path) -> None:
    """The hook keeps one connection from `check` to `verify`; a person who types the
    code just as the daemon closes the idle connection still gets an answer, never
    "unavailable" (which fail=open would let in)."""
    idle = 0.1
    daemon = Daemon(tmp_path, "--idle-timeout", str(idle)).start()
    outcomes: dict[str, int] = {}
    try:
        for attempt in range(150):
            delay = idle - 0.003 + (attempt % 30) * 0.0002  # around the close, both sides
            with daemon.client() as client:
                client.request("check", user="nosuchuser-idle", service="sshd")
                time.sleep(delay)
                try:
                    reply = client.request("verify", user="nosuchuser-idle", code="000000")
                    outcome = str(reply["result"])
                except Unavailable:
                    outcome = "unavailable"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    finally:
        daemon.stop()
    assert "unavailable" not in outcomes, outcomes
    assert sum(outcomes.values()) == 150
