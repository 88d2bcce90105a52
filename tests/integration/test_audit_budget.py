"""One unprivileged user asking for their own status in a loop cannot flood the log."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.daemon import Daemon
from support.users import throwaway_user

pytestmark = pytest.mark.integration

ASKS = 3000

# Runs as the user: one connection, every request written at once, every answer read.
_ASK_STATUS = r"""
import socket, sys
user, path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
line = b'{"v":1,"op":"status","user":"%s","id":1}\n' % user.encode()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.sendall(line * count)
received = b""
while received.count(b"\n") < count:
    chunk = s.recv(65536)
    if not chunk:
        break
    received += chunk
print(sum(1 for reply in received.splitlines() if b'"ok":true' in reply))
"""


def test_a_users_own_reads_are_logged_up_to_a_budget_and_summarised(shared_dir: Path) -> None:
    daemon = Daemon(shared_dir).start()
    try:
        with throwaway_user("tfq") as user:
            asked = subprocess.run(
                [sys.executable, "-c", _ASK_STATUS, user.name, daemon.socket, str(ASKS)],
                user=user.uid,
                group=user.gid,
                extra_groups=[],
                capture_output=True,
                text=True,
                timeout=120,
                cwd="/tmp",
            )
            assert asked.returncode == 0, asked.stderr
            assert int(asked.stdout) == ASKS  # every one answered
            enrolled = daemon.request("enroll.begin", user=user.name)  # root: always logged
            assert enrolled["user"] == user.name
    finally:
        daemon.stop()
    log = daemon.log_text()
    logged = log.count(f"event=status user={user.name}")
    left_out = sum(
        int(count)
        for count in re.findall(
            rf"event=audit result=rate_limited peer_uid={user.uid} left_out=(\d+)", log
        )
    )
    assert logged + left_out == ASKS
    assert logged < 100, f"{logged} status lines for one user's loop"
    assert f"event=enroll.begin user={user.name} result=ok" in log
