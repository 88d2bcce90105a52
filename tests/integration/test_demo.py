"""`make demo` as a person would use it: start, log in twice over SSH, Ctrl-C, nothing left."""

from __future__ import annotations

import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.oath import oathtool
from support.pam import run_in_pty

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.skipif(not _port_free(2222), reason="127.0.0.1:2222 is in use")
def test_demo_enrolls_then_asks_for_codes_and_cleans_up() -> None:
    demo = subprocess.Popen(
        [sys.executable, str(REPO / "tools" / "demo.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        shown = ""
        while "Press Ctrl-C" not in shown:
            line = demo.stdout.readline()  # type: ignore[union-attr]
            assert line, f"demo ended early:\n{shown}"
            shown += line
        password = re.search(r"password:\s+(\S+)", shown).group(1)  # type: ignore[union-attr]
        command = re.search(r"^\s+(ssh -p 2222 .*)$", shown, re.M).group(1)  # type: ignore[union-attr]
        argv = [*command.split(), "echo", "DEMO-OK"]
        secret: dict[str, float | str] = {}

        def code_from_screen(output: str) -> str:
            key = re.search(r"Key: ((?:[A-Z2-7]{4} ?){8})", output)
            assert key, output
            secret["key"] = key.group(1).replace(" ", "")
            secret["at"] = time.time()
            return oathtool(str(secret["key"]), float(secret["at"]))

        first = run_in_pty(argv, [password, code_from_screen, ""], env={"LC_ALL": "C.UTF-8"})
        assert first.ok and "DEMO-OK" in first.output, first
        later_code = oathtool(str(secret["key"]), float(secret["at"]) + 30)
        second = run_in_pty(argv, [password, later_code])
        assert second.ok and "DEMO-OK" in second.output, second
        assert second.prompts[-1].strip().endswith("Verification code:")
    finally:
        demo.send_signal(signal.SIGINT)
        rest = demo.communicate(timeout=30)[0]
    assert demo.returncode == 0, rest
    assert "Stopping the demo." in rest
    assert not Path("/etc/pam.d/sshd-twofa-demo").exists()
    with pytest.raises(KeyError):
        pwd.getpwnam("twofa-demo")
    assert not os.path.exists("/home/twofa-demo")
    assert _port_free(2222)
