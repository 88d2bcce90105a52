"""Migration: files written by Debian's real google-authenticator command, and users.oath."""

from __future__ import annotations

import base64
import binascii
import pwd
import secrets
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from support.cli import run_cli, twofactl
from support.daemon import Daemon
from support.oath import CodeSource, oathtool
from support.pam import pam_service, pamtester
from support.users import TestUser, throwaway_user

pytestmark = pytest.mark.integration


def google_authenticator(user: TestUser, *options: str) -> Path:
    """Run the real google-authenticator as `user`, non-interactively; return its file."""
    subprocess.run(
        [
            "runuser",
            "-u",
            user.name,
            "--",
            "google-authenticator",
            "-f",
            "-q",
            "-C",
            "-Q",
            "NONE",
            *options,
        ],
        check=True,
        capture_output=True,
        cwd="/",
    )
    return Path(user.home) / ".google_authenticator"


def test_google_authenticator_files_are_imported_and_work(hook_daemon: Daemon) -> None:
    with (
        throwaway_user() as totp_user,
        throwaway_user() as hotp_user,
        throwaway_user() as none_user,
    ):
        totp_file = google_authenticator(
            totp_user, "-t", "-d", "-w", "3", "-r", "3", "-R", "30", "-e", "5"
        )
        google_authenticator(hotp_user, "-c", "-w", "3", "-u", "-e", "2")
        before = totp_file.read_bytes(), totp_file.stat().st_mtime
        lines = totp_file.read_text().splitlines()
        secret, scratch = lines[0], [line for line in lines if line.isdigit() and len(line) == 8]
        assert len(scratch) == 5

        done = twofactl(
            hook_daemon.socket,
            "import",
            "google-authenticator",
            totp_user.name,
            hotp_user.name,
            none_user.name,
            "--json",
        )
        report = {row["user"]: row for row in done.json()}
        assert done.returncode == 0
        assert report[totp_user.name]["result"] == "imported"
        assert report[totp_user.name]["recovery_codes"] == 5
        assert report[hotp_user.name]["result"] == "skipped"
        assert "counter-based (HOTP)" in report[hotp_user.name]["reason"]
        assert report[none_user.name]["result"] == "skipped"
        assert "does not exist" in report[none_user.name]["reason"]
        assert (totp_file.read_bytes(), totp_file.stat().st_mtime) == before  # untouched

        code = oathtool(secret, time.time())
        assert twofactl(hook_daemon.socket, "verify", totp_user.name, code).returncode == 0
        assert twofactl(hook_daemon.socket, "verify", totp_user.name, scratch[2]).returncode == 0
        assert twofactl(hook_daemon.socket, "verify", totp_user.name, scratch[2]).returncode == 1

        again = twofactl(
            hook_daemon.socket, "import", "google-authenticator", totp_user.name, "--json"
        )
        assert again.returncode == 0 and again.json()[0]["result"] == "unchanged"
        google_authenticator(totp_user, "-t", "-d", "-w", "3", "-r", "3", "-R", "30", "-e", "5")
        other_key = twofactl(
            hook_daemon.socket, "import", "google-authenticator", totp_user.name, "--json"
        )
        assert other_key.returncode == 1
        assert other_key.json()[0]["result"] == "skipped"
        assert "--replace" in other_key.json()[0]["reason"]
        replaced = twofactl(
            hook_daemon.socket,
            "import",
            "google-authenticator",
            totp_user.name,
            "--replace",
            "--json",
        )
        assert replaced.json()[0]["result"] == "imported"
        assert (
            twofactl(hook_daemon.socket, "status", totp_user.name, "--json").json()[0][
                "recovery_codes_left"
            ]
            == 5
        )


def test_the_window_and_the_codes_already_used_come_along(hook_daemon: Daemon) -> None:
    """-w 17 accepts 8 steps either side; DISALLOW_REUSE names the steps already used."""
    with throwaway_user() as person:
        path = google_authenticator(person, "-t", "-d", "-w", "17", "-r", "3", "-R", "30")
        secret = path.read_text().splitlines()[0]
        used = oathtool(secret, time.time())
        lines = ["auth required pam_google_authenticator.so", "account required pam_permit.so"]
        with pam_service("twofa-ga", lines) as service:
            assert pamtester(service, person.name, [used]).ok
        assert '" DISALLOW_REUSE ' in path.read_text()  # the step it just took

        done = twofactl(hook_daemon.socket, "import", "google-authenticator", person.name)
        assert done.returncode == 0, done.stderr
        replay = twofactl(hook_daemon.socket, "verify", person.name, used)
        assert replay.returncode == 1 and "replayed" in replay.stdout + replay.stderr
        ahead = oathtool(secret, time.time() + 6 * 30)
        assert twofactl(hook_daemon.socket, "verify", person.name, ahead).returncode == 0


def test_all_users_under_a_home_root_and_words_for_people(hook_daemon: Daemon) -> None:
    with throwaway_user() as one:
        google_authenticator(one, "-t", "-d", "-w", "3", "-u", "-e", "1")
        done = twofactl(
            hook_daemon.socket, "import", "google-authenticator", "--home-root", "/home"
        )
        assert done.returncode == 0, done.stderr
        assert f"{one.name}: imported" in done.stdout
        assert "The old files are untouched." in done.stdout


def test_every_account_is_found_in_its_own_home_wherever_that_is(
    hook_daemon: Daemon,
) -> None:
    name = f"tfs{secrets.token_hex(3)}"
    home = f"/srv/{name}-home"
    subprocess.run(
        ["useradd", "--create-home", "--home-dir", home, "--shell", "/bin/bash", name],
        check=True,
        capture_output=True,
    )
    try:
        entry = pwd.getpwnam(name)
        elsewhere = TestUser(name, entry.pw_uid, entry.pw_gid, home)
        google_authenticator(elsewhere, "-t", "-d", "-w", "3", "-u", "-e", "1")
        found = twofactl(hook_daemon.socket, "import", "google-authenticator", "--json")
        assert found.returncode == 0, found.stderr
        assert {"user": name, "result": "imported"}.items() <= next(
            row for row in found.json() if row["user"] == name
        ).items()
        # --home-root looks only in DIR/USER: /home has no such directory for this account.
        rooted = twofactl(
            hook_daemon.socket, "import", "google-authenticator", "--home-root", "/home", name
        )
        assert rooted.returncode == 1 and "does not exist" in rooted.stdout
    finally:
        subprocess.run(["userdel", "--remove", name], check=False, capture_output=True)


def test_a_symlinked_file_is_refused(hook_daemon: Daemon) -> None:
    with throwaway_user() as sneaky:
        link = Path(sneaky.home) / ".google_authenticator"
        link.symlink_to("/etc/shadow")
        done = twofactl(hook_daemon.socket, "import", "google-authenticator", sneaky.name, "--json")
        assert done.returncode == 1
        row = done.json()[0]
        assert row["result"] == "skipped" and "symbolic link" in row["reason"]
        assert "root:" not in done.stdout


def test_a_users_oath_file(hook_daemon: Daemon, tmp_path: Path) -> None:
    with throwaway_user() as six, throwaway_user() as eight, throwaway_user() as counter:
        key6, key8 = (
            binascii.hexlify(b"12345678901234567890").decode(),
            "3132333435363738393031323334353637383930",
        )
        oath = tmp_path / "users.oath"
        oath.write_text(
            "# pam_oath users\n"
            f"HOTP/T30 {six.name} - {key6}\n"
            f"HOTP/T60/8 {eight.name} - {key8} 0\n"
            f"HOTP {counter.name} - {key6}\n"
            "HOTP/T30 nosuchuser-x - 00\n"
        )
        done = twofactl(hook_daemon.socket, "import", "oath", str(oath), "--json")
        report = {row["user"]: row for row in done.json()}
        assert report[six.name]["result"] == "imported"
        assert report[eight.name]["result"] == "imported"
        assert (
            report[counter.name]["result"] == "skipped"
            and "counter-based" in report[counter.name]["reason"]
        )
        assert report["nosuchuser-x"]["result"] == "skipped"
        b32 = base64.b32encode(binascii.unhexlify(key8)).decode()
        code8 = oathtool(b32, time.time(), digits=8, period=60)
        assert twofactl(hook_daemon.socket, "verify", eight.name, code8).returncode == 0
        code6 = oathtool(base64.b32encode(b"12345678901234567890").decode(), time.time())
        assert twofactl(hook_daemon.socket, "verify", six.name, code6).returncode == 0
        rerun = twofactl(hook_daemon.socket, "import", "oath", str(oath), "--json").json()
        results = {row["user"]: row["result"] for row in rerun}
        assert results[six.name] == results[eight.name] == "unchanged"
        assert results[counter.name] == results["nosuchuser-x"] == "skipped"


def test_an_80_bit_key_is_shown_again_as_a_uri_its_codes_match(
    hook_daemon: Daemon, tmp_path: Path
) -> None:
    """pam_oath's keys (and older google-authenticator files) are often 80 bits.

    pyotp 2.12 refuses keys under 112 bits; the imported key must still be shown again
    (`twofa show-qr`) for a second device, in a URI whose codes the daemon accepts.
    """
    with throwaway_user() as person:
        key = secrets.token_hex(10)  # 20 hex digits: 80 bits
        oath = tmp_path / "users.oath"
        oath.write_text(f"HOTP/T30 {person.name} - {key}\n")
        done = twofactl(hook_daemon.socket, "import", "oath", str(oath), "--json")
        assert done.returncode == 0, done.stderr
        assert done.json()[0]["result"] == "imported"
        codes = CodeSource(base64.b32encode(bytes.fromhex(key)).decode())

        shown = run_cli(
            "user", hook_daemon.socket, "show-qr", "--code", codes.next(), "--json", user=person.uid
        )
        assert shown.returncode == 0, shown.stderr
        data = shown.json()
        assert data["secret"] == codes.secret
        uri = urllib.parse.urlsplit(data["uri"])
        query = urllib.parse.parse_qs(uri.query)
        assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
        assert urllib.parse.unquote(uri.path).endswith(f":{person.name}")
        assert query["secret"] == [codes.secret] and query["issuer"]
        assert not {"algorithm", "digits", "period"} & query.keys()  # SHA1, 6, 30: the defaults
        assert "█" in data["qr"]

        # A second device set up from the URI alone: the daemon takes its code.
        from_uri = CodeSource(query["secret"][0])
        from_uri.last_step = codes.last_step
        words = run_cli(
            "user", hook_daemon.socket, "show-qr", "--code", from_uri.next(), user=person.uid
        )
        assert words.returncode == 0, words.stderr
        assert data["uri"] in words.stdout and "internal" not in words.stdout + words.stderr
