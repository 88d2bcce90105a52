"""A person's files: opened before their content exists, written whole or not at all, and
written or read with that person's rights."""

import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pam_twofa.cli.asuser import Person
from pam_twofa.cli.files import FileRefused, PrivateFile, read_callers_file, read_own_file


def test_commit_writes_a_private_file_and_leaves_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "codes.txt"
    opened = PrivateFile(str(target))
    assert not target.exists()  # nothing at the target until the content is there
    opened.commit("one\ntwo\n")
    assert target.read_text() == "one\ntwo\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["codes.txt"]


def test_discard_leaves_no_temporary_file(tmp_path: Path) -> None:
    opened = PrivateFile(str(tmp_path / "codes.txt"))
    assert len(os.listdir(tmp_path)) == 1  # the temporary file, created with its mode
    opened.discard()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["codes.csv", "missing-dir/codes.txt"])
def test_refused_before_anything_is_created(tmp_path: Path, name: str) -> None:
    with pytest.raises(FileRefused):
        PrivateFile(str(tmp_path / name))
    assert os.listdir(tmp_path) == []


def test_a_symbolic_link_as_the_target_is_refused(tmp_path: Path) -> None:
    """The rename would replace the link rather than write where it points: say so."""
    (tmp_path / "elsewhere.txt").write_text("kept\n")
    (tmp_path / "codes.txt").symlink_to(tmp_path / "elsewhere.txt")
    with pytest.raises(FileRefused, match="symbolic link"):
        PrivateFile(str(tmp_path / "codes.txt"))
    assert sorted(os.listdir(tmp_path)) == ["codes.txt", "elsewhere.txt"]
    assert (tmp_path / "elsewhere.txt").read_text() == "kept\n"


# --- as someone else: root writing and reading for a person, with their rights -----------

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="acting as another user needs root")


@pytest.fixture
def nobody() -> Person:
    return Person.named("nobody")


@pytest.fixture
def reachable() -> Iterator[Path]:
    """A root-owned directory every user may enter (tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="twofa-unit-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def theirs(reachable: Path, nobody: Person) -> Path:
    path = reachable / "theirs"
    path.mkdir()
    os.chown(path, nobody.uid, nobody.gid)
    return path


def children() -> set[int]:
    """This process's children, live or zombie, from every one of its threads."""
    found: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        with open(task / "children") as listed:
            found.update(int(pid) for pid in listed.read().split())
    return found


@pytest.fixture(autouse=True)
def children_before() -> Iterator[None]:
    """What was running before the test (a test database server of the session's)."""
    global BEFORE
    BEFORE = children()
    yield


BEFORE: set[int] = set()


def no_child_left() -> bool:
    """Every process the test's code started has been waited for: none left, not even
    as a zombie (a child that exited but was never reaped)."""
    return not children() - BEFORE


@as_root
def test_root_writes_a_persons_file_as_them(theirs: Path, nobody: Person) -> None:
    opened = PrivateFile(str(theirs / "codes.txt"), nobody)
    (temporary,) = os.listdir(theirs)  # proven writable: created by them, with its mode
    assert os.stat(theirs / temporary).st_uid == nobody.uid
    opened.commit("one\ntwo\n")
    info = (theirs / "codes.txt").stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (
        nobody.uid,
        nobody.gid,
        0o600,
    )
    assert (theirs / "codes.txt").read_text() == "one\ntwo\n"  # not the room reserved
    assert os.listdir(theirs) == ["codes.txt"]
    assert no_child_left()


@as_root
def test_root_cannot_write_for_a_person_where_they_cannot(reachable: Path, nobody: Person) -> None:
    with pytest.raises(FileRefused, match="Permission denied"):
        PrivateFile(str(reachable / "codes.txt"), nobody)
    assert os.listdir(reachable) == []
    assert no_child_left()


@as_root
def test_discard_removes_the_persons_temporary_file(theirs: Path, nobody: Person) -> None:
    opened = PrivateFile(str(theirs / "codes.txt"), nobody)
    assert len(os.listdir(theirs)) == 1
    opened.discard()
    assert os.listdir(theirs) == []
    assert no_child_left()


@as_root
def test_if_the_caller_dies_the_temporary_file_goes_too(theirs: Path, nobody: Person) -> None:
    """The writing child sees its pipe close: nothing is left half done."""
    pid = os.fork()
    if pid == 0:
        try:
            PrivateFile(str(theirs / "codes.txt"), nobody)
        finally:
            os._exit(0)  # no commit, no discard
    os.waitpid(pid, 0)
    deadline = time.monotonic() + 10
    while os.listdir(theirs) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert os.listdir(theirs) == []


@as_root
@pytest.mark.parametrize(
    ("make", "reason"),
    [
        ("directory", "not a regular file"),
        ("fifo", "not a regular file"),
        ("device", "not a regular file"),
        ("symlink", "symbolic link"),
        ("huge", "larger than 65536 bytes"),
        ("unreadable", "Permission denied"),
        ("roots", "not owned by its user"),
        ("missing", "does not exist"),
    ],
)
def test_a_persons_odd_file_is_refused_with_the_reason(
    theirs: Path, nobody: Person, make: str, reason: str
) -> None:
    path = theirs / "file"
    if make == "directory":
        path.mkdir()
    elif make == "fifo":
        os.mkfifo(path)
    elif make == "device":
        try:
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero's numbers
        except PermissionError:
            pytest.skip("no CAP_MKNOD here")
    elif make == "symlink":
        path.symlink_to("/etc/shadow")
    elif make == "huge":
        with open(path, "wb") as handle:
            handle.truncate(1 << 30)
    elif make == "unreadable":
        path.write_text("secret\n")
        path.chmod(0)
    elif make == "roots":
        path.write_text("secret\n")
    if make not in ("missing", "roots"):
        os.lchown(path, nobody.uid, nobody.gid)
    with pytest.raises(FileRefused, match=reason):
        read_own_file(str(path), nobody, 64 * 1024)
    assert no_child_left()


@as_root
def test_a_persons_file_is_read_as_them(theirs: Path, nobody: Person, reachable: Path) -> None:
    path = theirs / "file"
    path.write_text("theirs\n")
    os.chown(path, nobody.uid, nobody.gid)
    assert read_own_file(str(path), nobody, 64 * 1024) == b"theirs\n"
    # Through a link of theirs into a directory they cannot enter: refused, as for them.
    hidden = reachable / "hidden"
    hidden.mkdir(mode=0o700)
    (hidden / "file").write_text("theirs too\n")
    os.chown(hidden / "file", nobody.uid, nobody.gid)
    (theirs / "door").symlink_to(hidden)
    os.lchown(theirs / "door", nobody.uid, nobody.gid)
    with pytest.raises(FileRefused, match="Permission denied"):
        read_own_file(str(theirs / "door" / "file"), nobody, 64 * 1024)


@as_root
def test_a_callers_file_is_read_only_if_root_or_they_hold_the_whole_path(
    reachable: Path, theirs: Path, nobody: Person
) -> None:
    mine = reachable / "users.oath"
    mine.write_text("HOTP/T30 x - 00\n")
    assert read_callers_file(str(mine), 1024) == b"HOTP/T30 x - 00\n"
    with pytest.raises(FileRefused, match="larger than 4 bytes"):
        read_callers_file(str(mine), 4)

    (theirs / "users.oath").write_text("HOTP/T30 x - 00\n")
    with pytest.raises(FileRefused, match=f"the directory {theirs} is not owned by root"):
        read_callers_file(str(theirs / "users.oath"), 1024)

    planted = reachable / "planted.oath"
    planted.write_text("HOTP/T30 x - 00\n")
    os.chown(planted, nobody.uid, nobody.gid)
    with pytest.raises(FileRefused, match=r"planted\.oath is not owned by root"):
        read_callers_file(str(planted), 1024)

    (reachable / "link").symlink_to(reachable)
    with pytest.raises(FileRefused, match=f"{reachable}/link is a symbolic link"):
        read_callers_file(str(reachable / "link" / "users.oath"), 1024)
    (reachable / "users-link.oath").symlink_to(mine)
    with pytest.raises(FileRefused, match="symbolic link"):
        read_callers_file(str(reachable / "users-link.oath"), 1024)

    os.mkfifo(reachable / "fifo.oath")
    with pytest.raises(FileRefused, match="not a regular file"):
        read_callers_file(str(reachable / "fifo.oath"), 1024)
