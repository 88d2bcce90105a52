"""Several devices per person, through the real twofad and the real commands.

twofa runs as the person themself (a throwaway unprivileged account), twofactl as root
or as another person; every code comes from oathtool. A login decision is either the
verify the PAM stack sends (as root, through the daemon or `twofactl verify`) or a real
PAM authentication through pam_python.so and the hook, driven by pamtester.

Each device's codes come from a CodeSource, which hands out the current and the next
time step without waiting: a test spends at most two codes of any one device, so none
of them sleeps for a new step.
"""

from __future__ import annotations

import re
import shlex
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pam_twofa.client import RequestFailed
from support.cli import Run, run_cli, twofactl
from support.daemon import Daemon
from support.enrollment import HOOK, Enrolled
from support.oath import CodeSource, oathtool
from support.pam import PAM_PYTHON, pam_service, pamtester, run_in_pty
from support.users import TestUser, throwaway_user

pytestmark = pytest.mark.integration

# What each command's --json prints (README "Several devices"; the wire contract).
LIST_KEYS = {"user", "devices", "max_devices"}
DEVICE_KEYS = {
    "name",
    "state",
    "added_at",
    "confirmed_at",
    "last_used",
    "algorithm",
    "digits",
    "period",
    "renews",
}
TWOFA_ADD_KEYS = {"user", "device", "secret", "uri", "qr", "qr_image"}  # as `twofa enroll --json`
TWOFACTL_ADD_KEYS = TWOFA_ADD_KEYS | {"issuer", "algorithm", "digits", "period"}
CONFIRM_KEYS = {"user", "device", "state"}
RENAME_KEYS = {"user", "device", "renamed_from"}
REMOVE_KEYS = {"user", "removed", "devices_left"}

DATE = r"\d{4}-\d\d-\d\d \d\d:\d\d"  # how the tables print a moment

# Names a device may not have: each is refused with one clear line, and nothing changes.
BAD_NAMES = {
    "empty": "",
    "33 characters": "x" * 33,
    "a tab": "tab\tlet",
    "an escape sequence": "a\x1b[2Jb",
    "a newline": "two\nlines",
    "a DEL": "del\x7f",
    "a leading space": " tablet",
    "a trailing space": "tablet ",
    "a direction override": "pad\u202eevil",
}


# --------------------------------------------------------------------------- helpers


def twofa(daemon: Daemon, enrolled: Enrolled, *args: str) -> Run:
    """`twofa ARGS` as the enrolled person themself."""
    return run_cli("user", daemon.socket, *args, user=enrolled.user.uid)


def verify(daemon: Daemon, user: str, code: str) -> dict[str, object]:
    """The login decision the PAM stack asks for (root)."""
    return daemon.request("verify", user=user, code=code, service="sshd", rhost="127.0.0.1")


def listing(daemon: Daemon, enrolled: Enrolled) -> dict[str, Any]:
    """`twofa device list --json`, which must succeed, with its documented keys."""
    listed = twofa(daemon, enrolled, "device", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    data: dict[str, Any] = listed.json()
    assert set(data) == LIST_KEYS and data["user"] == enrolled.user.name
    for device in data["devices"]:
        assert set(device) >= DEVICE_KEYS and "secret" not in device
    return data


def devices(daemon: Daemon, enrolled: Enrolled) -> dict[str, str]:
    """Each device's name and state, in the order the account lists them."""
    return {d["name"]: d["state"] for d in listing(daemon, enrolled)["devices"]}


def refused(done: Run, code: str) -> str:
    """A refusal as both commands print one: exit 1, nothing on stdout, one line on
    stderr that ends with the error code. Its text, for further checks."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr  # one line, no traceback
    assert done.stderr.rstrip().endswith(f"[{code}]"), done.stderr
    return done.stderr


def secret_in(text: str) -> str:
    """The key in the otpauth:// URI a set-up screen prints."""
    found = re.search(r"otpauth://totp/\S*[?&]secret=([A-Z2-7]+)", text)
    assert found, text
    return found.group(1)


def printed_command(text: str, intro: str, code: str) -> list[str]:
    """The command a screen tells the person to run next (after `intro`), with CODE
    filled in: its words after the program's name."""
    found = re.search(re.escape(intro) + r" (.+)$", text, re.MULTILINE)
    assert found, text
    words = shlex.split(found.group(1))
    return [code if word == "CODE" else word for word in words[1:]]


def add_device(daemon: Daemon, enrolled: Enrolled, name: str, proof: str) -> CodeSource:
    """`twofa device add NAME --code PROOF --json`, confirmed with the new key's code
    for the previous step (still in the window, and leaving the next two unspent)."""
    added = twofa(daemon, enrolled, "device", "add", name, "--code", proof, "--json")
    assert added.returncode == 0, added.stderr
    shown = added.json()
    assert set(shown) == TWOFA_ADD_KEYS
    assert (shown["user"], shown["device"]) == (enrolled.user.name, name)
    assert secret_in(shown["uri"]) == shown["secret"] != enrolled.codes.secret  # its own key
    source = CodeSource(shown["secret"])
    earlier = time.time() - 30
    confirmed = twofa(
        daemon, enrolled, "confirm", "--device", name, oathtool(source.secret, earlier), "--json"
    )
    assert confirmed.returncode == 0, confirmed.stderr
    assert confirmed.json() == {"user": enrolled.user.name, "device": name, "state": "active"}
    source.spend(earlier)
    return source


def as_person(person: TestUser, *args: str) -> list[str]:
    """argv running `twofa ARGS` as `person`, for a terminal of its own (run_in_pty)."""
    return [
        "setpriv",
        f"--reuid={person.uid}",
        f"--regid={person.gid}",
        "--clear-groups",
        sys.executable,
        "-m",
        "pam_twofa.cli.user",
        *args,
    ]


@pytest.fixture
def login_service(hook_daemon: Daemon) -> Iterator[str]:
    """A PAM service asking for a code through the hook: a real login's decision."""
    stack = [
        f"auth required {PAM_PYTHON} {HOOK} socket={hook_daemon.socket}",
        "account required pam_permit.so",
    ]
    with pam_service("twofa-test", stack) as name:
        yield name


# --------------------------------------------------------------------------- the first device


def test_the_first_device_is_the_phone_listed_with_when_added_and_last_used(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    data = listing(hook_daemon, enrolled)
    assert data["max_devices"] == 5
    [phone] = data["devices"]
    assert (phone["name"], phone["state"], phone["renews"]) == ("phone", "active", False)
    assert (phone["algorithm"], phone["digits"], phone["period"]) == ("SHA1", 6, 30)
    assert phone["added_at"] <= phone["confirmed_at"] and phone["last_used"] is None
    words = twofa(hook_daemon, enrolled, "status").stdout
    assert re.search(r"^\s+NAME\s+STATE\s+ADDED\s+LAST USED$", words, re.MULTILINE), words
    assert re.search(rf"^\s+phone\s+active\s+{DATE}\s+-$", words, re.MULTILINE), words

    login = verify(hook_daemon, enrolled.user.name, enrolled.codes.next())
    assert (login["result"], login["device"]) == ("accepted", "phone")
    status = twofa(hook_daemon, enrolled, "status", "--json").json()
    [used] = status["devices"]
    assert used["last_used"] is not None and used["last_used"] >= phone["confirmed_at"]
    assert status["devices"] == listing(hook_daemon, enrolled)["devices"]
    words = twofa(hook_daemon, enrolled, "status").stdout
    assert re.search(rf"^\s+phone\s+active\s+{DATE}\s+{DATE}$", words, re.MULTILINE), words
    plain = twofa(hook_daemon, enrolled, "device", "list").stdout
    assert plain.startswith(f"Devices of {enrolled.user.name}: 1 of at most 5\n"), plain


def test_enroll_names_the_first_device(hook_daemon: Daemon, person: TestUser) -> None:
    def me(*args: str) -> Run:
        return run_cli("user", hook_daemon.socket, *args, user=person.uid)

    refused(me("enroll", "--device", " Pixel 8"), "bad_request")
    assert me("status", "--json").json()["enrollment"] == "none"  # nothing was begun
    begun = me("enroll", "--device", "Pixel 8")
    assert begun.returncode == 0, begun.stderr
    assert "twofa confirm --device 'Pixel 8' CODE" in begun.stdout
    pending = me("device", "list", "--json").json()["devices"]
    assert [(d["name"], d["state"]) for d in pending] == [("Pixel 8", "pending")]
    code = oathtool(secret_in(begun.stdout), time.time())
    confirm = printed_command(begun.stdout, "switch it on with:", code)
    done = me(*confirm, "--json")
    assert done.returncode == 0, done.stderr
    shown = done.json()
    assert set(shown) == CONFIRM_KEYS | {"recovery_codes"}
    assert (shown["device"], shown["state"], len(shown["recovery_codes"])) == (
        "Pixel 8",
        "active",
        8,
    )
    active = me("device", "list", "--json").json()["devices"]
    assert [(d["name"], d["state"]) for d in active] == [("Pixel 8", "active")]


# --------------------------------------------------------------------------- adding one


def test_a_device_added_with_a_recovery_code_is_pending_until_a_code_of_its_own_confirms_it(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    name = enrolled.user.name
    no_code = twofa(hook_daemon, enrolled, "device", "add", "tablet")  # off a terminal
    assert no_code.returncode == 1 and "a current code is needed" in no_code.stderr
    refused(
        twofa(hook_daemon, enrolled, "device", "add", "tablet", "--code", "000000"), "invalid_code"
    )
    assert devices(hook_daemon, enrolled) == {"phone": "active"}

    added = twofa(
        hook_daemon, enrolled, "device", "add", "tablet", "--code", enrolled.recovery_codes[0]
    )
    assert added.returncode == 0, added.stderr
    assert "a new device, tablet," in added.stdout
    assert (
        "█" in added.stdout and "Key: " in added.stdout and "URI: otpauth://totp/" in added.stdout
    )
    key = secret_in(added.stdout)
    assert key != enrolled.codes.secret
    assert devices(hook_daemon, enrolled) == {"phone": "active", "tablet": "pending"}
    status = twofa(hook_daemon, enrolled, "status", "--json").json()
    assert (status["enrollment"], status["recovery_codes_left"]) == ("active", 7)  # proof spent
    assert re.search(r"\b1 \(\+1 pending\)", twofactl(hook_daemon.socket, "status", name).stdout)

    # Pending: its codes neither log in nor confirm it unless they are its own.
    assert verify(hook_daemon, name, oathtool(key, time.time()))["result"] == "rejected"
    wrong = twofa(hook_daemon, enrolled, "confirm", "--device", "tablet", "000000")
    assert "tablet" in refused(wrong, "invalid_code")
    assert devices(hook_daemon, enrolled) == {"phone": "active", "tablet": "pending"}

    earlier = time.time() - 30
    confirm = printed_command(
        added.stdout, "Then confirm it with a code it shows:", oathtool(key, earlier)
    )
    assert confirm[:3] == ["confirm", "--device", "tablet"]
    confirmed = twofa(hook_daemon, enrolled, *confirm)
    assert confirmed.returncode == 0, confirmed.stderr
    assert "tablet is now active: its codes log in." in confirmed.stdout
    assert "recovery" not in confirmed.stdout.lower()  # a device added brings no new codes
    assert devices(hook_daemon, enrolled) == {"phone": "active", "tablet": "active"}
    tablet = CodeSource(key)
    tablet.spend(earlier)
    login = verify(hook_daemon, name, tablet.next())
    assert (login["result"], login["device"]) == ("accepted", "tablet")


def test_each_time_step_is_accepted_once_per_device(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    name = enrolled.user.name
    tablet = add_device(hook_daemon, enrolled, "tablet", enrolled.codes.next())
    phone_code = enrolled.codes.next()
    step = enrolled.codes.last_step
    tablet_code = oathtool(tablet.secret, step * 30)  # the same time step, the other key
    tablet.spend(step * 30)

    def ctl_verify(code: str) -> tuple[int, Any, Any]:
        done = twofactl(hook_daemon.socket, "verify", name, code, "--json")
        return done.returncode, done.json()["result"], done.json().get("device")

    assert ctl_verify(phone_code) == (0, "accepted", "phone")
    assert ctl_verify(phone_code)[:2] == (1, "replayed")
    assert ctl_verify(tablet_code) == (0, "accepted", "tablet")
    assert ctl_verify(tablet_code)[:2] == (1, "replayed")
    used = {d["name"]: d["last_used"] for d in listing(hook_daemon, enrolled)["devices"]}
    assert None not in used.values(), used

    # A device's own key again: which one must be said when there are several.
    which = twofa(hook_daemon, enrolled, "show-qr", "--code", enrolled.recovery_codes[0])
    assert "name the device" in refused(which, "bad_request")
    shown = twofa(
        hook_daemon,
        enrolled,
        "show-qr",
        "--device",
        "tablet",
        "--code",
        enrolled.recovery_codes[1],
        "--json",
    )
    assert shown.returncode == 0, shown.stderr
    assert (shown.json()["device"], shown.json()["secret"]) == ("tablet", tablet.secret)


def test_on_a_terminal_add_and_remove_ask_for_their_codes(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    keys: dict[str, str] = {}

    def from_the_screen(screen: str) -> str:
        keys["tablet"] = secret_in(screen)
        return oathtool(keys["tablet"], time.time() - 30)

    socket = ("--socket", hook_daemon.socket)
    utf8 = {"LC_ALL": "C.UTF-8"}
    added = run_in_pty(
        as_person(enrolled.user, *socket, "device", "add", "tablet"),
        [enrolled.codes.next(), from_the_screen],
        env=utf8,
    )
    assert added.ok, added
    assert added.prompts_stripped == [
        "Current verification code (or a recovery code):",
        "Enter the code tablet shows, to confirm it:",
    ]
    assert "tablet is now active" in added.output
    assert devices(hook_daemon, enrolled) == {"phone": "active", "tablet": "active"}
    tablet = CodeSource(keys["tablet"])
    tablet.spend(time.time() - 30)

    removed = run_in_pty(
        as_person(enrolled.user, *socket, "device", "remove", "phone"),
        [enrolled.recovery_codes[0]],
        env=utf8,
    )
    assert removed.ok, removed
    assert removed.prompts_stripped == ["Current verification code (or a recovery code):"]
    assert "phone is removed; its codes no longer log in (1 active left)." in removed.output

    # No code for the new one (end of input): it stays pending, and says how to go on.
    unconfirmed = run_in_pty(
        as_person(enrolled.user, *socket, "device", "add", "watch"), [tablet.next()], env=utf8
    )
    assert unconfirmed.returncode == 1, unconfirmed
    assert "watch stays pending until: twofa confirm --device watch CODE" in unconfirmed.output
    assert devices(hook_daemon, enrolled) == {"tablet": "active", "watch": "pending"}


# --------------------------------------------------------------------------- rename, remove


def test_rename_and_its_refusals(hook_daemon: Daemon, enrolled: Enrolled) -> None:
    name = enrolled.user.name
    tablet = add_device(hook_daemon, enrolled, "tablet", enrolled.codes.next())
    for taken in ("phone", "PHONE", "Phone"):
        clash = twofa(hook_daemon, enrolled, "device", "rename", "tablet", taken)
        assert "choose another name" in refused(clash, "device_exists")
    unknown = twofa(hook_daemon, enrolled, "device", "rename", "watch", "wrist")
    assert "`twofa device list`" in refused(unknown, "unknown_device")
    assert devices(hook_daemon, enrolled) == {"phone": "active", "tablet": "active"}

    renamed = twofa(hook_daemon, enrolled, "device", "rename", "tablet", "Work Tablet", "--json")
    assert renamed.returncode == 0, renamed.stderr
    assert renamed.json() == {"user": name, "device": "Work Tablet", "renamed_from": "tablet"}
    assert set(renamed.json()) == RENAME_KEYS
    # Its own name in other letters is no clash: found whatever the case, then respelled.
    recased = twofa(hook_daemon, enrolled, "device", "rename", "work tablet", "work tablet")
    assert recased.returncode == 0, recased.stderr
    assert recased.stdout.strip() == "Work Tablet is now called work tablet."
    assert devices(hook_daemon, enrolled) == {"phone": "active", "work tablet": "active"}
    login = verify(hook_daemon, name, tablet.next())  # the key stayed what it was
    assert (login["result"], login["device"]) == ("accepted", "work tablet")


def test_remove_needs_a_code_and_never_takes_the_last_device(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    name = enrolled.user.name
    tablet = add_device(hook_daemon, enrolled, "tablet", enrolled.codes.next())
    wrong = twofa(hook_daemon, enrolled, "device", "remove", "phone", "--code", "000000")
    refused(wrong, "invalid_code")
    assert devices(hook_daemon, enrolled) == {"phone": "active", "tablet": "active"}

    removed = twofa(
        hook_daemon, enrolled, "device", "remove", "phone", "--code", tablet.next(), "--json"
    )
    assert removed.returncode == 0, removed.stderr
    assert removed.json() == {"user": name, "removed": "phone", "devices_left": 1}
    assert set(removed.json()) == REMOVE_KEYS
    assert verify(hook_daemon, name, enrolled.codes.next())["result"] == "rejected"

    last = twofa(
        hook_daemon, enrolled, "device", "remove", "tablet", "--code", enrolled.recovery_codes[0]
    )
    message = refused(last, "last_device")
    assert "`twofa disable`" in message
    assert message.count("switch two-step verification off") == 1, message  # said once
    by_root = twofactl(hook_daemon.socket, "device", "remove", name, "tablet")
    assert f"`twofactl disable {name}`" in refused(by_root, "last_device")
    assert devices(hook_daemon, enrolled) == {"tablet": "active"}
    login = verify(hook_daemon, name, tablet.next())  # the account still works
    assert (login["result"], login["device"]) == ("accepted", "tablet")


def test_at_most_five_devices_pending_ones_included(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    name = enrolled.user.name
    for number in range(2, 6):
        added = twofactl(hook_daemon.socket, "device", "add", name, f"key {number}", "--json")
        assert added.returncode == 0, added.stderr
    assert list(devices(hook_daemon, enrolled).values()) == ["active"] + ["pending"] * 4

    sixth = twofa(hook_daemon, enrolled, "device", "add", "key 6", "--code", enrolled.codes.next())
    assert "`twofa device remove NAME`" in refused(sixth, "too_many_devices")
    by_root = twofactl(hook_daemon.socket, "device", "add", name, "key 6")
    assert f"`twofactl device remove {name} NAME`" in refused(by_root, "too_many_devices")
    assert len(devices(hook_daemon, enrolled)) == 5
    several = twofa(hook_daemon, enrolled, "confirm", "123456")  # which of four pending?
    assert "--device NAME" in refused(several, "bad_request")

    gone = twofactl(hook_daemon.socket, "device", "remove", name, "key 5", "--json")
    assert gone.returncode == 0 and gone.json()["removed"] == "key 5"
    again = twofa(hook_daemon, enrolled, "device", "add", "key 6", "--code", enrolled.codes.next())
    assert again.returncode == 0, again.stderr
    assert len(devices(hook_daemon, enrolled)) == 5


def test_bad_names_are_refused_clearly_and_change_nothing(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    name = enrolled.user.name
    code = enrolled.codes.next()  # never sent: a name is checked before any code is
    for why, bad in BAD_NAMES.items():
        attempts = {
            "add": twofa(hook_daemon, enrolled, "device", "add", bad, "--code", code),
            "rename to": twofa(hook_daemon, enrolled, "device", "rename", "phone", bad),
            "rename from": twofa(hook_daemon, enrolled, "device", "rename", bad, "tablet"),
            "remove": twofa(hook_daemon, enrolled, "device", "remove", bad, "--code", code),
            "root's add": twofactl(hook_daemon.socket, "device", "add", name, bad),
        }
        for what, done in attempts.items():
            assert "the device name" in refused(done, "bad_request"), (why, what)
        with pytest.raises(RequestFailed) as raw:  # the daemon refuses it too
            hook_daemon.request("device.add", user=name, device=bad)
        assert raw.value.code == "bad_request", why
    assert devices(hook_daemon, enrolled) == {"phone": "active"}
    status = twofa(hook_daemon, enrolled, "status", "--json").json()
    assert (status["failures"], status["recovery_codes_left"]) == (0, 8)
    assert verify(hook_daemon, name, code)["result"] == "accepted"  # the code was not spent

    # The edges that are names: 32 characters; one spelling of é (NFC).
    longest = twofactl(hook_daemon.socket, "device", "add", name, "y" * 32, "--json")
    assert longest.returncode == 0, longest.stderr
    decomposed = twofactl(hook_daemon.socket, "device", "add", name, "Cafe\u0301", "--json")
    assert decomposed.returncode == 0 and decomposed.json()["device"] == "Caf\u00e9"
    assert list(devices(hook_daemon, enrolled)) == ["phone", "y" * 32, "Caf\u00e9"]


# --------------------------------------------------------------------------- a lost phone


def test_the_lost_phone_end_to_end(
    hook_daemon: Daemon, enrolled: Enrolled, login_service: str
) -> None:
    """Phone and tablet set up; the phone is lost: in with a recovery code, the phone
    removed with another, the tablet goes on, a new phone is added with the tablet."""
    name = enrolled.user.name
    tablet = add_device(hook_daemon, enrolled, "tablet", enrolled.codes.next())

    rescued = pamtester(login_service, name, [enrolled.recovery_codes[0]])
    assert rescued.ok, rescued
    assert "Recovery code accepted; 7 left." in rescued.output
    removed = twofa(
        hook_daemon,
        enrolled,
        "device",
        "remove",
        "phone",
        "--code",
        enrolled.recovery_codes[1],
        "--json",
    )
    assert removed.returncode == 0, removed.stderr
    assert removed.json() == {"user": name, "removed": "phone", "devices_left": 1}

    found = pamtester(login_service, name, [enrolled.codes.next()])  # whoever has the phone
    assert not found.ok and "Invalid verification code" in found.output
    assert pamtester(login_service, name, [tablet.next()]).ok

    new_phone = add_device(hook_daemon, enrolled, "new phone", tablet.next())
    assert pamtester(login_service, name, [new_phone.next()]).ok
    assert devices(hook_daemon, enrolled) == {"tablet": "active", "new phone": "active"}
    status = twofa(hook_daemon, enrolled, "status", "--json").json()
    assert status["recovery_codes_left"] == 6


# --------------------------------------------------------------------------- who may


def test_administrators_manage_devices_without_a_code(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    name = enrolled.user.name
    ctl = hook_daemon.socket
    added = twofactl(ctl, "device", "add", name, "token")
    assert added.returncode == 0, added.stderr
    token = CodeSource(secret_in(added.stdout))
    earlier = time.time() - 30
    intro = "Then confirm it with a code it shows:"
    confirm = printed_command(added.stdout, intro, oathtool(token.secret, earlier))
    confirmed = twofactl(ctl, *confirm)
    assert confirmed.returncode == 0, confirmed.stderr
    assert f"token of {name} is now active" in confirmed.stdout
    token.spend(earlier)

    as_json = twofactl(ctl, "device", "add", name, "backup key", "--json")
    assert as_json.returncode == 0, as_json.stderr
    shown = as_json.json()
    assert set(shown) == TWOFACTL_ADD_KEYS and shown["device"] == "backup key"
    assert (shown["algorithm"], shown["digits"], shown["period"]) == ("SHA1", 6, 30)
    code = oathtool(shown["secret"], time.time())
    done = twofactl(ctl, "confirm", name, code, "--device", "backup key", "--json")
    assert done.returncode == 0, done.stderr
    assert done.json() == {"user": name, "device": "backup key", "state": "active"}

    listed = twofactl(ctl, "device", "list", name, "--json").json()
    assert set(listed) == LIST_KEYS
    assert [d["name"] for d in listed["devices"]] == ["phone", "token", "backup key"]
    renamed = twofactl(ctl, "device", "rename", name, "token", "yubikey", "--json")
    assert renamed.json() == {"user": name, "device": "yubikey", "renamed_from": "token"}
    removed = twofactl(ctl, "device", "remove", name, "phone", "--json")
    assert removed.json() == {"user": name, "removed": "phone", "devices_left": 2}
    table = twofactl(ctl, "status", name).stdout
    assert f"Devices of {name}:" in table
    assert re.search(rf"^\s+yubikey\s+active\s+{DATE}\s+-$", table, re.MULTILINE), table
    login = verify(hook_daemon, name, token.next())
    assert (login["result"], login["device"]) == ("accepted", "yubikey")

    with throwaway_user() as newcomer:  # no device yet: enroll comes first
        listed = twofactl(ctl, "device", "list", newcomer.name, "--json").json()
        assert (listed["user"], listed["devices"]) == (newcomer.name, [])
        early = twofactl(ctl, "device", "add", newcomer.name, "tablet")
        refused(early, "not_enrolled")


def test_a_person_cannot_touch_another_persons_devices(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    victim = enrolled.user.name
    code = enrolled.codes.next()
    with throwaway_user() as mallory:
        for args in (
            ("list", victim),
            ("add", victim, "mine", "--code", code),
            ("rename", victim, "phone", "mine"),
            ("remove", victim, "phone", "--code", code),
        ):
            tried = run_cli("ctl", hook_daemon.socket, "device", *args, user=mallory.uid)
            refused(tried, "unauthorized")
        # twofa names no account: it acts on the caller's own, where the code proves nothing.
        own = run_cli("user", hook_daemon.socket, "device", "list", "--json", user=mallory.uid)
        assert (own.json()["user"], own.json()["devices"]) == (mallory.name, [])
        own_add = run_cli(
            "user", hook_daemon.socket, "device", "add", "mine", "--code", code, user=mallory.uid
        )
        refused(own_add, "not_enrolled")
    assert devices(hook_daemon, enrolled) == {"phone": "active"}
    [status] = twofactl(hook_daemon.socket, "status", victim, "--json").json()
    assert (status["failures"], status["strikes"]) == (0, 0)
    assert verify(hook_daemon, victim, code)["result"] == "accepted"  # never spent
