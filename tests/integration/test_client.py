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
    assert run.stdout.startswith("unavailable:"), run.stdout
