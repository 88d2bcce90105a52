"""Root writes and reads a person's files with that person's rights, never where they point it.

`twofactl recovery-codes USER --output FILE` and `twofactl import google-authenticator`
run as root on paths a user can shape: a symbolic link they made, a directory only root
can write, a FIFO or a directory where a file should be. The person must end up with
only what they could have done themselves, and every refusal must leave the old
recovery codes working.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cli import Run, twofactl
from support.daemon import Daemon
from support.enrollment import Enrolled
from support.users import TestUser, throwaway_user

pytestmark = pytest.mark.integration

ROOTS_TEXT = "root's own notes\n"


@pytest.fixture
def root_dir(shared_dir: Path) -> Path:
    """A directory of root's that everyone may read but only root may write, with a file."""
    directory = shared_dir / "roots"
    directory.mkdir(mode=0o755)
    (directory / "notes.txt").write_text(ROOTS_TEXT)
    (directory / "notes.txt").chmod(0o644)
    return directory


def users_symlink(user: TestUser, link: Path, target: Path) -> None:
    """A symbolic link `user` made (owned by them), as `ln -s` run by them would leave it."""
    link.symlink_to(target)
    os.lchown(link, user.uid, user.gid)


def regenerate_to(daemon: Daemon, enrolled: Enrolled, output: Path) -> Run:
    name = enrolled.user.name
    return twofactl(daemon.socket, "recovery-codes", name, "--regenerate", "--output", str(output))


def assert_roots_file_untouched(root_dir: Path) -> None:
    info = (root_dir / "notes.txt").lstat()
    assert stat.S_ISREG(info.st_mode) and (info.st_uid, info.st_gid) == (0, 0)
    assert (root_dir / "notes.txt").read_text() == ROOTS_TEXT
    assert sorted(os.listdir(root_dir)) == ["notes.txt"]  # no temporary file left either


def assert_old_codes_still_work(daemon: Daemon, enrolled: Enrolled) -> None:
    old = enrolled.recovery_codes[0]
    assert twofactl(daemon.socket, "verify", enrolled.user.name, old).returncode == 0


# --- twofactl recovery-codes --output ----------------------------------------------------


def test_a_symlinked_directory_cannot_make_root_replace_its_own_file(
    hook_daemon: Daemon, enrolled: Enrolled, root_dir: Path
) -> None:
    link = Path(enrolled.user.home) / "d"
    users_symlink(enrolled.user, link, root_dir)
    done = regenerate_to(hook_daemon, enrolled, link / "notes.txt")
    assert done.returncode == 1, done.stdout
    assert "Permission denied" in done.stderr and str(link) in done.stderr
    assert "Traceback" not in done.stderr
    assert_roots_file_untouched(root_dir)
    assert_old_codes_still_work(hook_daemon, enrolled)


def test_a_symlink_as_the_file_itself_is_refused(
    hook_daemon: Daemon, enrolled: Enrolled, root_dir: Path
) -> None:
    link = Path(enrolled.user.home) / "notes.txt"
    users_symlink(enrolled.user, link, root_dir / "notes.txt")
    done = regenerate_to(hook_daemon, enrolled, link)
    assert done.returncode == 1, done.stdout
    assert "symbolic link" in done.stderr and str(link) in done.stderr
    assert link.is_symlink() and os.readlink(link) == str(root_dir / "notes.txt")
    assert not [name for name in os.listdir(enrolled.user.home) if name.endswith(".tmp")]
    assert_roots_file_untouched(root_dir)
    assert_old_codes_still_work(hook_daemon, enrolled)


def test_a_directory_the_user_cannot_write_is_refused(
    hook_daemon: Daemon, enrolled: Enrolled, root_dir: Path
) -> None:
    done = regenerate_to(hook_daemon, enrolled, root_dir / "codes.txt")
    assert done.returncode == 1, done.stdout
    assert "Permission denied" in done.stderr and str(root_dir) in done.stderr
    assert_roots_file_untouched(root_dir)
    assert_old_codes_still_work(hook_daemon, enrolled)


def test_the_file_is_the_users_private_file_with_the_codes(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    """Also through a symbolic link of their own to a directory of their own."""
    home = Path(enrolled.user.home)
    real = home / "papers"
    real.mkdir()
    os.chown(real, enrolled.user.uid, enrolled.user.gid)
    users_symlink(enrolled.user, home / "p", real)
    done = regenerate_to(hook_daemon, enrolled, home / "p" / "codes.txt")
    assert done.returncode == 0, done.stderr
    written = real / "codes.txt"
    info = written.lstat()
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    assert (info.st_uid, info.st_gid) == (enrolled.user.uid, enrolled.user.gid)
    assert os.listdir(real) == ["codes.txt"]
    codes = [line.strip() for line in written.read_text().splitlines() if line.startswith("    ")]
    assert len(codes) == 8
    name = enrolled.user.name
    assert twofactl(hook_daemon.socket, "verify", name, codes[3]).returncode == 0
    assert twofactl(hook_daemon.socket, "verify", name, enrolled.recovery_codes[0]).returncode == 1


# --- twofactl import google-authenticator ------------------------------------------------


@pytest.fixture
def with_a_key() -> Iterator[TestUser]:
    """An account with a plain, valid .google_authenticator made by the real command."""
    with throwaway_user() as user:
        subprocess.run(
            ["runuser", "-u", user.name, "--", "google-authenticator"]
            + ["-f", "-q", "-C", "-Q", "NONE", "-t", "-d", "-w", "3", "-u", "-e", "1"],
            check=True,
            capture_output=True,
            cwd="/",
        )
        yield user


def import_report(daemon: Daemon, *args: str) -> tuple[int, dict[str, dict[str, object]]]:
    done = twofactl(daemon.socket, "import", "google-authenticator", *args, "--json")
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, {str(row["user"]): row for row in done.json()}


def enrolled_state(daemon: Daemon, user: str) -> str:
    return str(twofactl(daemon.socket, "status", user, "--json").json()[0]["state"])


def test_a_directory_or_a_fifo_in_place_of_the_file_is_skipped_and_the_others_imported(
    hook_daemon: Daemon, with_a_key: TestUser
) -> None:
    """Neither stops the import with a traceback, nor waits for a writer to the FIFO."""
    with throwaway_user() as with_a_directory, throwaway_user() as with_a_fifo:
        directory = Path(with_a_directory.home) / ".google_authenticator"
        directory.mkdir()
        os.chown(directory, with_a_directory.uid, with_a_directory.gid)
        fifo = Path(with_a_fifo.home) / ".google_authenticator"
        os.mkfifo(fifo, 0o600)
        os.chown(fifo, with_a_fifo.uid, with_a_fifo.gid)
        odd = (with_a_directory.name, with_a_fifo.name)
        returncode, report = import_report(hook_daemon, *odd, with_a_key.name)
        assert returncode == 0
        for name in odd:
            assert report[name]["result"] == "skipped"
            assert "not a regular file" in str(report[name]["reason"])
        assert report[with_a_key.name]["result"] == "imported"


def test_a_symlinked_home_component_reaches_only_what_the_user_can_read(
    hook_daemon: Daemon, shared_dir: Path, with_a_key: TestUser
) -> None:
    """Homes restored into a directory the person may write: they can swap in a link.

    The link points at a directory only root can read, holding a file of theirs (a
    copy root keeps): as themselves they could not read it, so it is not imported.
    """
    user = with_a_key
    restore = shared_dir / "restore"
    restore.mkdir(mode=0o755)
    os.chown(restore, user.uid, user.gid)
    hidden = shared_dir / "root-only"
    hidden.mkdir(mode=0o700)
    copy = hidden / ".google_authenticator"
    shutil.copy2(Path(user.home) / ".google_authenticator", copy)
    os.chown(copy, user.uid, user.gid)
    users_symlink(user, restore / user.name, hidden)

    returncode, report = import_report(hook_daemon, "--home-root", str(restore), user.name)
    assert returncode == 1
    assert report[user.name]["result"] == "skipped"
    assert "Permission denied" in str(report[user.name]["reason"])
    assert enrolled_state(hook_daemon, user.name) != "enabled"

    # The same file where the person can read it is theirs to import.
    os.unlink(restore / user.name)
    (restore / user.name).mkdir()
    os.chown(restore / user.name, user.uid, user.gid)
    shutil.copy2(copy, restore / user.name / ".google_authenticator")
    os.chown(restore / user.name / ".google_authenticator", user.uid, user.gid)
    returncode, report = import_report(hook_daemon, "--home-root", str(restore), user.name)
    assert returncode == 0 and report[user.name]["result"] == "imported"


def test_a_file_the_user_cannot_read_is_not_read_for_them(
    hook_daemon: Daemon, with_a_key: TestUser
) -> None:
    """pam_google_authenticator reads the file as its user; so does the import."""
    path = Path(with_a_key.home) / ".google_authenticator"
    path.chmod(0)
    returncode, report = import_report(hook_daemon, with_a_key.name)
    assert returncode == 1
    assert report[with_a_key.name]["result"] == "skipped"
    assert "Permission denied" in str(report[with_a_key.name]["reason"])


# --- twofactl import oath FILE -----------------------------------------------------------


def test_a_users_oath_file_in_a_persons_directory_is_refused(
    hook_daemon: Daemon, person: TestUser
) -> None:
    """A file of other people's secrets must be root's: one of theirs could name anyone."""
    with throwaway_user() as victim:
        planted = Path(person.home) / "users.oath"
        planted.write_text(f"HOTP/T30 {victim.name} - {'31' * 20}\n")
        os.chown(planted, person.uid, person.gid)
        done = twofactl(hook_daemon.socket, "import", "oath", str(planted))
        assert done.returncode == 1, done.stdout
        assert str(planted) in done.stderr and "Traceback" not in done.stderr
        assert "not owned by root" in done.stderr
        assert enrolled_state(hook_daemon, victim.name) != "enabled"

        # Nor is it read through a link, even one of root's.
        link = Path(hook_daemon.root) / "their-home"
        link.symlink_to(person.home)
        linked = twofactl(hook_daemon.socket, "import", "oath", str(link / "users.oath"))
        assert linked.returncode == 1 and "symbolic link" in linked.stderr
        assert enrolled_state(hook_daemon, victim.name) != "enabled"


def test_a_fifo_as_the_oath_file_is_refused_without_waiting(
    hook_daemon: Daemon, shared_dir: Path
) -> None:
    fifo = shared_dir / "users.oath"
    os.mkfifo(fifo, 0o600)
    done = twofactl(hook_daemon.socket, "import", "oath", str(fifo))
    assert done.returncode == 1 and "not a regular file" in done.stderr
