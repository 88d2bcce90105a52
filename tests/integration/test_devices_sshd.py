"""One real SSH login with each device's code: the OpenSSH client against a real sshd on
127.0.0.1, key then code through the hook in pam_python.so; the devices set up with
twofactl, every code computed by oathtool.  The audit event of each login names the
device that matched, never its key; a device removed no longer gets in.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cli import twofactl
from support.daemon import Daemon
from support.enrollment import HOOK, Enrolled
from support.oath import CodeSource, oathtool
from support.pam import PAM_PYTHON
from support.sshd import SshServer, authorize_key, ssh_login

pytestmark = pytest.mark.integration


@pytest.fixture
def sshd(hook_daemon: Daemon) -> Iterator[SshServer]:
    with SshServer(
        [
            f"auth required {PAM_PYTHON} {HOOK} socket={hook_daemon.socket}",
            "account required pam_unix.so",
            "session required pam_permit.so",
        ],
        authentication_methods="publickey,keyboard-interactive:pam",
    ) as server:
        yield server


def add_device(daemon: Daemon, user: str, name: str, digits: int = 6) -> CodeSource:
    """A device added by an administrator and confirmed with oathtool's code for it."""
    added = twofactl(daemon.socket, "device", "add", user, name, "--json")
    assert added.returncode == 0, added.stderr
    secret = added.json()["secret"]
    earlier = time.time() - 30
    code = oathtool(secret, earlier, digits=digits)
    confirmed = twofactl(daemon.socket, "confirm", user, code, "--device", name)
    assert confirmed.returncode == 0, confirmed.stderr
    source = CodeSource(secret)
    source.spend(earlier)
    return source


def test_each_device_logs_in_over_ssh_and_the_audit_names_it(
    sshd: SshServer, hook_daemon: Daemon, enrolled: Enrolled, tmp_path: Path
) -> None:
    name = enrolled.user.name
    identity = authorize_key(enrolled.user, tmp_path)
    sources = {
        "phone": enrolled.codes,
        "tablet": add_device(hook_daemon, name, "tablet"),
        "backup token": add_device(hook_daemon, name, "backup token"),
    }
    for device, source in sources.items():
        login = ssh_login(sshd, enrolled.user, [source.next()], identity=identity)
        assert login.ok and "LOGIN-OK" in login.output, (device, login)
    log = hook_daemon.log_text()
    accepted = re.findall(rf"event=verify user={name} result=accepted .*", log)
    assert len(accepted) == 3
    assert ["device=phone" in accepted[0], "device=tablet" in accepted[1]] == [True, True]
    assert 'device="backup token"' in accepted[2]  # a name with a space stays one field
    for source in sources.values():
        assert source.secret not in log  # never a key

    # The tablet removed: its next code no longer gets in, the others still do.
    removed = twofactl(hook_daemon.socket, "device", "remove", name, "tablet")
    assert removed.returncode == 0, removed.stderr
    refused = ssh_login(sshd, enrolled.user, [sources["tablet"].next()], identity=identity)
    assert refused.returncode == 255 and "Invalid verification code" in refused.output
    again = ssh_login(sshd, enrolled.user, [sources["backup token"].next()], identity=identity)
    assert again.ok, again
