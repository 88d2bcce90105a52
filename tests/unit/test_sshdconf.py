"""sshd's settings as `sshd -T` prints them: the first value of a keyword stands."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pam_twofa.cli import sshdconf


def test_the_first_value_of_a_keyword_stands() -> None:
    text = (
        "usepam yes\nport 22\nport 2222\nauthenticationmethods publickey,keyboard-interactive:pam\n"
    )
    assert sshdconf.parse_settings(text) == {
        "usepam": "yes",
        "port": "22",
        "authenticationmethods": "publickey,keyboard-interactive:pam",
    }


def _program(tmp_path: Path, body: str) -> str:
    path = tmp_path / "sshd"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_a_failing_sshd_is_refused_with_its_last_words(tmp_path: Path) -> None:
    binary = _program(
        tmp_path, 'echo "first" >&2; echo "/etc/ssh/x line 3: Bad option" >&2; exit 255\n'
    )
    with pytest.raises(sshdconf.Refused) as refused:
        sshdconf.effective_settings(binary)
    assert refused.value.reason == "/etc/ssh/x line 3: Bad option"


def test_a_silent_failure_says_so(tmp_path: Path) -> None:
    with pytest.raises(sshdconf.Refused, match="no output"):
        sshdconf.effective_settings(_program(tmp_path, "exit 1\n"))


def test_the_configuration_named_is_passed_with_f(tmp_path: Path) -> None:
    binary = _program(tmp_path, 'echo "args $*"\n')
    assert sshdconf.effective_settings(binary, "/etc/ssh/other")["args"] == "-T -f /etc/ssh/other"
    assert sshdconf.effective_settings(binary)["args"] == "-T"


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("ssh-keygen") or not os.path.isdir("/run/sshd"),
    reason="the real sshd -T runs as root, with its privilege separation directory",
)
def test_the_real_sshd_reports_a_drop_in_s_settings(tmp_path: Path) -> None:
    key = tmp_path / "host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    config = tmp_path / "sshd_config"
    config.write_text(
        f"HostKey {key}\nUsePAM yes\nKbdInteractiveAuthentication yes\n"
        "AuthenticationMethods publickey,keyboard-interactive:pam\n"
    )
    settings = sshdconf.effective_settings("/usr/sbin/sshd", str(config))
    assert settings["usepam"] == "yes"
    assert settings["kbdinteractiveauthentication"] == "yes"
    assert settings["authenticationmethods"] == "publickey,keyboard-interactive:pam"
