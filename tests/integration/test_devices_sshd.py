"""One real SSH login with each device's code: the OpenSSH client against a real sshd on
127.0.0.1, key then code through the hook in pam_python.so. The person is a real
unprivileged account whose devices an administrator sets up with twofactl (enroll with
`--device phone`, then `device add`), each confirmed and each login answered with a
code oathtool computes from that device's own key. The audit event of each login names
the device that matched, never its key; a device removed no longer gets in.

One daemon, one person and one sshd serve the whole module: the tests run in order, the
last one removes a device.
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.cli import twofactl
from support.daemon import Daemon
from support.enrollment import HOOK
from support.oath import CodeSource, oathtool
from support.pam import PAM_PYTHON, Conversation
from support.sshd import SshServer, authorize_key, ssh_login
from support.users import TestUser, throwaway_user

pytestmark = pytest.mark.integration

# The order they are set up and logged in with; a name with a space among them, since
# the audit line must keep it one field.
DEVICES = ("phone", "tablet", "backup token")


@dataclass
class Site:
    daemon: Daemon
    sshd: SshServer
    person: TestUser
    identity: Path
    codes: dict[str, CodeSource]  # device name -> its key's unspent codes

    def login(self, device: str) -> Conversation:
        """An SSH login with the next code of `device`'s key."""
        code = self.codes[device].next()
        return ssh_login(self.sshd, self.person, [code], identity=self.identity)


def ctl(daemon: Daemon, *args: str) -> dict[str, Any]:
    """`twofactl ARGS --json` as root, which must succeed; its answer."""
    done = twofactl(daemon.socket, *args, "--json")
    assert done.returncode == 0, (args, done.stderr)
    answer: dict[str, Any] = done.json()
    return answer


def confirmed(daemon: Daemon, user: str, device: str, shown: dict[str, Any]) -> CodeSource:
    """Confirm the pending `device` with oathtool's code of the key twofactl showed.

    The code is the previous step's (still inside the window), so the current and the
    next step are left for logins without waiting.
    """
    assert shown["device"] == device, shown
    source = CodeSource(str(shown["secret"]))
    earlier = time.time() - 30
    answer = ctl(daemon, "confirm", user, oathtool(source.secret, earlier), "--device", device)
    assert (answer["device"], answer["state"]) == (device, "active"), answer
    source.spend(earlier)
    first = device == DEVICES[0]  # recovery codes come with the first device only
    assert ("recovery_codes" in answer and bool(answer["recovery_codes"])) == first, answer
    return source


def set_up_devices(daemon: Daemon, user: str) -> dict[str, CodeSource]:
    """The first device by `enroll --device`, the others by `device add`, all confirmed."""
    first, *others = DEVICES
    codes = {first: confirmed(daemon, user, first, ctl(daemon, "enroll", user, "--device", first))}
    for name in others:
        codes[name] = confirmed(daemon, user, name, ctl(daemon, "device", "add", user, name))
    assert len({source.secret for source in codes.values()}) == len(DEVICES)  # a key each
    return codes


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = Path(tempfile.mkdtemp(prefix="twofa-test-", dir="/tmp"))
    root.chmod(0o755)
    policy = root / "policy.yaml"
    policy.write_text("default: optional\n")
    daemon = Daemon(root, "--policy", str(policy)).start()
    try:
        with (
            throwaway_user() as person,
            SshServer(
                [
                    f"auth required {PAM_PYTHON} {HOOK} socket={daemon.socket}",
                    "account required pam_unix.so",
                    "session required pam_permit.so",
                ],
                authentication_methods="publickey,keyboard-interactive:pam",
            ) as sshd,
        ):
            identity = authorize_key(person, tmp_path_factory.mktemp("keys"))
            codes = set_up_devices(daemon, person.name)
            yield Site(daemon, sshd, person, identity, codes)
    finally:
        if daemon.alive():
            daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


def verify_events(site: Site) -> list[dict[str, str]]:
    """The daemon's audit events of the person's logins, oldest first, as fields."""
    events = []
    for line in site.daemon.log_text().splitlines():
        if "event=verify " not in line:
            continue  # other lines are not logfmt (the daemon's own notes)
        fields = dict(word.split("=", 1) for word in shlex.split(line) if "=" in word)
        if fields.get("event") == "verify" and fields.get("user") == site.person.name:
            events.append(fields)
    return events


def test_each_device_logs_in_over_ssh_and_the_audit_names_it(site: Site) -> None:
    for device in DEVICES:
        login = site.login(device)
        assert login.ok and "LOGIN-OK" in login.output, (device, login)
    events = verify_events(site)
    assert [(e["result"], e.get("device")) for e in events] == [
        ("accepted", device) for device in DEVICES
    ]
    assert 'device="backup token"' in site.daemon.log_text()  # quoted, one field
    logs = site.daemon.log_text() + site.sshd.log_text()
    for device, source in site.codes.items():
        assert source.secret not in logs, device  # never a key


def test_a_removed_device_no_longer_logs_in(site: Site) -> None:
    name = site.person.name
    removed = ctl(site.daemon, "device", "remove", name, "tablet")
    assert (removed["removed"], removed["devices_left"]) == ("tablet", 2), removed
    listed = ctl(site.daemon, "device", "list", name)
    assert sorted(d["name"] for d in listed["devices"]) == ["backup token", "phone"]

    before = len(verify_events(site))
    refused = site.login("tablet")  # a fresh code of the removed key
    assert refused.returncode == 255 and "LOGIN-OK" not in refused.output, refused
    assert "Invalid verification code" in refused.output
    again = site.login("phone")  # the others still get in
    assert again.ok and "LOGIN-OK" in again.output, again
    events = verify_events(site)[before:]
    assert [(e["result"], e.get("device")) for e in events] == [
        ("rejected", None),
        ("accepted", "phone"),
    ]
    assert site.codes["tablet"].secret not in site.daemon.log_text()
