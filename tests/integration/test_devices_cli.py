"""Several devices per person, through the real twofad and the real commands: twofa run
as the person themself (a throwaway unprivileged account), twofactl as root; every code
from oathtool, every login decision a verify to the daemon as the PAM stack sends it.
"""

from __future__ import annotations

import re
import time

import pytest

from support.cli import Run, run_cli, twofactl
from support.daemon import Daemon
from support.enrollment import Enrolled
from support.oath import CodeSource, oathtool
from support.users import throwaway_user

pytestmark = pytest.mark.integration


def twofa(daemon: Daemon, enrolled: Enrolled, *args: str) -> Run:
    return run_cli("user", daemon.socket, *args, user=enrolled.user.uid)


def verify(daemon: Daemon, user: str, code: str) -> dict[str, object]:
    return daemon.request("verify", user=user, code=code, service="sshd", rhost="127.0.0.1")


def devices(daemon: Daemon, enrolled: Enrolled) -> dict[str, str]:
    listed = twofa(daemon, enrolled, "device", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return {d["name"]: d["state"] for d in listed.json()["devices"]}


def add_device(daemon: Daemon, enrolled: Enrolled, name: str, proof: str) -> CodeSource:
    """`twofa device add NAME` with `proof`, confirmed with a code of the new key."""
    added = twofa(daemon, enrolled, "device", "add", name, "--code", proof, "--json")
    assert added.returncode == 0, added.stderr
    shown = added.json()
    assert shown["device"] == name and f"secret={shown['secret']}" in shown["uri"]
    assert shown["secret"] != enrolled.codes.secret  # a key of its own
    source = CodeSource(shown["secret"])
    earlier = time.time() - 30
    confirm = ("confirm", "--device", name, oathtool(source.secret, earlier), "--json")
    confirmed = twofa(daemon, enrolled, *confirm)
    assert confirmed.returncode == 0, confirmed.stderr
    assert confirmed.json()["device"] == name and "recovery_codes" not in confirmed.json()
    source.spend(earlier)
    return source


def test_the_first_device_is_the_phone_and_status_shows_it(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    assert devices(hook_daemon, enrolled) == {"phone": "active"}
    status = twofa(hook_daemon, enrolled, "status", "--json").json()
    [phone] = status["devices"]
    assert phone["name"] == "phone" and phone["added_at"] and "secret" not in phone
    words = twofa(hook_daemon, enrolled, "status")
    assert "phone" in words.stdout and "devices" in words.stdout


def test_enroll_names_the_first_device(hook_daemon: Daemon) -> None:
    with throwaway_user() as someone:
        begun = run_cli(
            "user", hook_daemon.socket, "enroll", "--device", "Pixel 8", "--json", user=someone.uid
        )
        assert begun.returncode == 0, begun.stderr
        assert begun.json()["device"] == "Pixel 8"
        code = oathtool(begun.json()["secret"], time.time())
        done = run_cli("user", hook_daemon.socket, "confirm", code, "--json", user=someone.uid)
        assert done.returncode == 0 and len(done.json()["recovery_codes"]) == 8


def test_a_device_added_with_a_code_works_beside_the_first(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    name = enrolled.user.name
    refused = twofa(hook_daemon, enrolled, "device", "add", "tablet", "--code", "000000")
    assert refused.returncode == 1 and devices(hook_daemon, enrolled) == {"phone": "active"}
    # Pending until a code from it confirms it: its codes do not log in yet.
    added = twofa(
        hook_daemon, enrolled, "device", "add", "tablet", "--code", enrolled.codes.next(), "--json"
    )
    assert added.returncode == 0, added.stderr
    tablet_key = added.json()["secret"]
    assert devices(hook_daemon, enrolled) == {"phone": "active", "tablet": "pending"}
    assert verify(hook_daemon, name, oathtool(tablet_key, time.time()))["result"] == "rejected"
    earlier = time.time() - 30
    confirmed = twofa(
        hook_daemon, enrolled, "confirm", "--device", "tablet", oathtool(tablet_key, earlier)
    )
    assert confirmed.returncode == 0, confirmed.stderr
    assert "tablet is now active" in confirmed.stdout
    tablet = CodeSource(tablet_key)
    tablet.spend(earlier)
    # Both make codes that log in; the same step from each device is two codes.
    phone_code = enrolled.codes.next()
    step = enrolled.codes.last_step
    tablet_code = oathtool(tablet_key, step * 30)
    first = verify(hook_daemon, name, phone_code)
    assert (first["result"], first["device"]) == ("accepted", "phone")
    second = verify(hook_daemon, name, tablet_code)
    assert (second["result"], second["device"]) == ("accepted", "tablet")
    assert verify(hook_daemon, name, tablet_code)["result"] == "replayed"  # once per device
    assert verify(hook_daemon, name, phone_code)["result"] == "replayed"
    listed = twofa(hook_daemon, enrolled, "device", "list").stdout
    assert "tablet" in listed and "phone" in listed


def test_rename_and_its_refusals(hook_daemon: Daemon, enrolled: Enrolled) -> None:
    add_device(hook_daemon, enrolled, "tablet", enrolled.codes.next())
    clash = twofa(hook_daemon, enrolled, "device", "rename", "tablet", "PHONE")
    assert clash.returncode == 1 and "device_exists" in clash.stderr
    unknown = twofa(hook_daemon, enrolled, "device", "rename", "watch", "wrist")
    assert unknown.returncode == 1 and "unknown_device" in unknown.stderr
    assert devices(hook_daemon, enrolled) == {"phone": "active", "tablet": "active"}
    renamed = twofa(hook_daemon, enrolled, "device", "rename", "tablet", "work tablet", "--json")
    assert renamed.returncode == 0, renamed.stderr
    assert renamed.json()["renamed_from"] == "tablet"
    assert devices(hook_daemon, enrolled) == {"phone": "active", "work tablet": "active"}


@pytest.mark.parametrize(
    "bad", ["", "x" * 33, "tab\tlet", " tablet", "tablet ", "rtl\u202eevil"], ids=repr
)
def test_a_bad_name_is_refused_clearly_and_changes_nothing(
    hook_daemon: Daemon, enrolled: Enrolled, bad: str
) -> None:
    refused = twofa(hook_daemon, enrolled, "device", "add", bad, "--code", "123456")
    assert refused.returncode != 0 and "device" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1  # one clear line, no traceback
    assert devices(hook_daemon, enrolled) == {"phone": "active"}
    assert twofa(hook_daemon, enrolled, "status", "--json").json()["failures"] == 0


def test_a_removed_device_no_longer_logs_in_and_the_last_one_stays(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    name = enrolled.user.name
    tablet = add_device(hook_daemon, enrolled, "tablet", enrolled.codes.next())
    removed = twofa(
        hook_daemon, enrolled, "device", "remove", "phone", "--code", tablet.next(), "--json"
    )
    assert removed.returncode == 0, removed.stderr
    assert removed.json() == {"user": name, "removed": "phone", "devices_left": 1}
    assert verify(hook_daemon, name, enrolled.codes.next())["result"] == "rejected"
    last = twofa(hook_daemon, enrolled, "device", "remove", "tablet", "--code", tablet.next())
    assert last.returncode == 1 and "last_device" in last.stderr and "disable" in last.stderr
    assert devices(hook_daemon, enrolled) == {"tablet": "active"}
    assert verify(hook_daemon, name, tablet.next())["result"] == "accepted"


def test_at_most_five_devices(hook_daemon: Daemon, enrolled: Enrolled) -> None:
    for number in range(2, 6):
        added = twofa(
            hook_daemon, enrolled, "device", "add", f"key {number}", "--code", "x", "--json"
        )
        assert added.returncode == 1  # "x" proves nothing
        root_add = twofactl(
            hook_daemon.socket, "device", "add", enrolled.user.name, f"key {number}", "--json"
        )
        assert root_add.returncode == 0, root_add.stderr
    sixth = twofactl(hook_daemon.socket, "device", "add", enrolled.user.name, "key 6")
    assert sixth.returncode == 1 and "too_many_devices" in sixth.stderr
    assert len(devices(hook_daemon, enrolled)) == 5


def test_the_lost_phone_end_to_end(hook_daemon: Daemon, enrolled: Enrolled) -> None:
    """Phone and tablet set up; the phone is lost: in with a recovery code, the phone
    removed with another, the tablet goes on, a new phone is added with the tablet."""
    name = enrolled.user.name
    tablet = add_device(hook_daemon, enrolled, "tablet", enrolled.codes.next())
    login = verify(hook_daemon, name, enrolled.recovery_codes[0])
    assert (login["result"], login["method"]) == ("accepted", "recovery")
    removed = twofa(
        hook_daemon, enrolled, "device", "remove", "phone", "--code", enrolled.recovery_codes[1]
    )
    assert removed.returncode == 0, removed.stderr
    assert (
        verify(hook_daemon, name, enrolled.codes.next())["result"] == "rejected"
    )  # found by a thief
    assert verify(hook_daemon, name, tablet.next())["result"] == "accepted"
    new_phone = add_device(hook_daemon, enrolled, "new phone", tablet.next())
    assert verify(hook_daemon, name, new_phone.next())["result"] == "accepted"
    assert devices(hook_daemon, enrolled) == {"tablet": "active", "new phone": "active"}
    status = twofa(hook_daemon, enrolled, "status", "--json").json()
    assert status["recovery_codes_left"] == len(enrolled.recovery_codes) - 2


def test_administrators_manage_devices_without_a_code(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    name = enrolled.user.name
    ctl = hook_daemon.socket
    added = twofactl(ctl, "device", "add", name, "token", "--json")
    assert added.returncode == 0, added.stderr
    key = added.json()["secret"]
    confirmed = twofactl(ctl, "confirm", name, oathtool(key, time.time()), "--device", "token")
    assert confirmed.returncode == 0, confirmed.stderr
    listed = twofactl(ctl, "device", "list", name, "--json")
    assert [d["name"] for d in listed.json()["devices"]] == ["phone", "token"]
    assert twofactl(ctl, "device", "rename", name, "token", "yubikey").returncode == 0
    assert twofactl(ctl, "device", "remove", name, "phone").returncode == 0
    shown = twofactl(ctl, "status", name)
    assert "yubikey" in shown.stdout and re.search(r"\byubikey\b", shown.stdout)


def test_a_person_cannot_touch_another_persons_devices(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    with throwaway_user() as mallory:
        for args in (
            ("device", "list", enrolled.user.name),
            ("device", "remove", enrolled.user.name, "phone", "--code", "123456"),
        ):
            tried = run_cli("ctl", hook_daemon.socket, *args, user=mallory.uid)
            assert tried.returncode != 0 and "unauthorized" in tried.stderr
    assert devices(hook_daemon, enrolled) == {"phone": "active"}
