"""Socket activation (LISTEN_FDS) and readiness notices (NOTIFY_SOCKET), as systemd does them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pam_twofa.client import Client

pytestmark = pytest.mark.integration


def test_an_inherited_socket_is_served_and_readiness_announced(tmp_path: Path) -> None:
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(str(tmp_path / "activated.sock"))
    listening.listen(16)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(20)

    def as_systemd_would() -> None:  # in the child, before exec: fd 3 and LISTEN_PID
        os.dup2(listening.fileno(), 3)
        os.environ["LISTEN_PID"] = str(os.getpid())

    environment = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    os.environ.update(LISTEN_FDS="1", NOTIFY_SOCKET=str(tmp_path / "notify"))
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "twofad",
                "--socket",
                str(tmp_path / "unused.sock"),
                "--state-dir",
                str(tmp_path / "state"),
            ],
            preexec_fn=as_systemd_would,
            close_fds=False,  # else fd 3, made by dup2 in the child, would be closed again
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    finally:
        os.environ.clear()
        os.environ.update(environment)
    try:
        try:
            ready = notify.recv(4096)
        except TimeoutError:
            proc.kill()
            raise AssertionError(proc.communicate()[0].decode()) from None
        assert ready == b"READY=1"
        with Client(str(tmp_path / "activated.sock")) as client:
            assert client.request("ping")["pong"] is True
        assert not (tmp_path / "unused.sock").exists()  # --socket is ignored when activated
        proc.send_signal(signal.SIGTERM)
        assert notify.recv(4096) == b"STOPPING=1"
        assert proc.wait(15) == 0
        assert (tmp_path / "activated.sock").exists()  # systemd's socket is systemd's to remove
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listening.close()
        notify.close()


def test_a_running_daemon_is_not_displaced(tmp_path: Path) -> None:
    from support.daemon import Daemon

    first = Daemon(tmp_path).start()
    try:
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "twofad",
                "--socket",
                first.socket,
                "--state-dir",
                str(tmp_path / "other"),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 1
        assert "another twofad is already listening" in second.stderr
        assert first.request("ping")["pong"] is True
    finally:
        first.stop()


def test_a_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    from support.daemon import Daemon

    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "twofad.sock"))
    stale.close()  # the file stays, nobody listens: as after a crash
    daemon = Daemon(tmp_path).start()
    try:
        assert daemon.request("ping")["pong"] is True
        assert oct(os.stat(daemon.socket).st_mode & 0o777) == "0o666"
    finally:
        assert daemon.stop() == 0
    assert not Path(daemon.socket).exists()
