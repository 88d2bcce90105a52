"""The master key file: created private, refused when readable by others, and the only
way to the secrets: a copy of the database without it reveals nothing and verifies nothing.
"""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from pam_twofa import protocol as p
from support.daemon import Daemon
from support.enrollment import enroll_at_step
from support.oath import oathtool

pytestmark = pytest.mark.integration

PERIOD = 30
KEY_BYTES = 32


def database_files(daemon: Daemon) -> dict[str, bytes]:
    """The raw bytes of the database and its WAL and shared-memory files, as a thief gets them."""
    found = {}
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = Path(f"{daemon.database}{suffix}")
        if path.exists():
            found[path.name] = path.read_bytes()
    assert daemon.database.name in found
    return found


def forms_of_secret(secret: str) -> list[bytes]:
    padded = secret + "=" * (-len(secret) % 8)
    raw = base64.b32decode(padded)
    assert len(raw) == 20  # 160 bits
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return [
        secret.encode(),
        secret.lower().encode(),
        grouped.encode(),
        raw,
        raw.hex().encode(),
        base64.b64encode(raw),
    ]


def forms_of_recovery_code(code: str) -> list[bytes]:
    canonical = code.replace("-", "")
    return [code.encode(), code.upper().encode(), canonical.encode(), canonical.upper().encode()]


def enroll(daemon: Daemon, user: str = "root") -> tuple[str, int, list[str]]:
    return enroll_at_step(daemon, user)


def test_first_start_creates_a_private_key(daemon: Daemon) -> None:
    info = os.stat(daemon.key_file)
    assert stat.S_ISREG(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o400
    assert info.st_uid == os.geteuid()
    assert info.st_size == KEY_BYTES
    assert stat.S_IMODE(os.stat(daemon.state_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(daemon.database).st_mode) & 0o077 == 0
    # No temporary file is left behind next to it.
    assert sorted(path.name for path in daemon.state_dir.iterdir() if "key" in path.name) == [
        daemon.key_file.name
    ]


def test_a_restart_keeps_the_key(daemon: Daemon, tmp_path: Path) -> None:
    key = daemon.key_file.read_bytes()
    secret, step, _codes = enroll(daemon)
    assert daemon.stop() == 0
    again = Daemon(tmp_path).start()
    try:
        assert again.key_file.read_bytes() == key
        verified = again.request("verify", user="root", code=oathtool(secret, (step + 1) * PERIOD))
        assert verified["result"] == p.ACCEPTED
    finally:
        again.stop()


@pytest.mark.parametrize("mode", [0o440, 0o404, 0o410], ids=["0440", "0404", "0410"])
def test_a_key_readable_by_others_stops_the_start(tmp_path: Path, mode: int) -> None:
    first = Daemon(tmp_path).start()
    assert first.stop() == 0
    key = first.key_file.read_bytes()
    os.chmod(first.key_file, mode)

    second = Daemon(tmp_path)
    result = subprocess.run(second.command(), capture_output=True, text=True, timeout=30)

    assert result.returncode != 0
    message = result.stderr
    assert str(second.key_file) in message, message
    assert f"{mode:04o}" in message, message  # what is wrong ...
    assert f"chmod 0400 {second.key_file}" in message, message  # ... and how to fix it
    assert not os.path.exists(second.socket), "it must not listen with a bad key"
    # Nothing was "repaired" behind the administrator's back.
    assert stat.S_IMODE(os.stat(second.key_file).st_mode) == mode
    assert second.key_file.read_bytes() == key

    os.chmod(second.key_file, 0o400)  # the fix the message gives works
    fixed = second.start()
    assert fixed.stop() == 0


@pytest.mark.parametrize(
    "content", [b"", b"short", bytes(range(KEY_BYTES + 1))], ids=["empty", "short", "long"]
)
def test_a_key_of_the_wrong_size_stops_the_start(tmp_path: Path, content: bytes) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    key = state / "twofad.key"
    key.write_bytes(content)
    os.chmod(key, 0o400)
    result = subprocess.run(Daemon(tmp_path).command(), capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert str(key) in result.stderr and f"{KEY_BYTES} bytes" in result.stderr
    assert key.read_bytes() == content


def test_the_database_files_hold_no_secret_and_no_recovery_code(daemon: Daemon) -> None:
    secret, step, codes = enroll(daemon)
    # A pending renewal for a second user too, and some use, so the WAL has more in it.
    pending = str(daemon.request("enroll.begin", user="daemon")["secret"])
    used = codes[0]
    assert daemon.request("verify", user="root", code=used)["result"] == p.ACCEPTED
    code = oathtool(secret, (step + 1) * PERIOD)
    assert daemon.request("verify", user="root", code=code)["result"] == p.ACCEPTED

    def assert_nothing_in(files: dict[str, bytes]) -> None:
        everything = b"".join(files.values())
        # The files are the real thing: the user names are there in the clear.
        assert b"root" in everything and b"daemon" in everything
        for name, data in files.items():
            for form in forms_of_secret(secret) + forms_of_secret(pending):
                assert form not in data, f"a form of a secret is in {name}"
            for recovery in codes:
                for form in forms_of_recovery_code(recovery):
                    assert form not in data, f"a recovery code is in {name}"

    while_running = database_files(daemon)  # copied live, WAL and all
    assert any(name.endswith("-wal") for name in while_running)
    assert_nothing_in(while_running)
    assert daemon.stop() == 0
    assert_nothing_in(database_files(daemon))  # after the checkpoint at close


def test_a_copied_database_with_another_key_is_refused_at_start(tmp_path: Path) -> None:
    original = Daemon(tmp_path / "original")
    original.root.mkdir()
    original.start()
    try:
        secret, step, codes = enroll(original)
    finally:
        assert original.stop() == 0

    # The thief's copy: the database files, but a key of its own (created at first start).
    copy = Daemon(tmp_path / "copy")
    copy.state_dir.mkdir(parents=True, mode=0o700)
    for path in original.state_dir.iterdir():
        if path.name.startswith(original.database.name):
            shutil.copy2(path, copy.state_dir / path.name)
    with pytest.raises(RuntimeError, match="the key file does not belong to the database"):
        copy.start(timeout=10)
    assert copy.proc is not None and copy.proc.returncode == 1
    assert secret not in copy.log_text()
    assert copy.key_file.read_bytes() != original.key_file.read_bytes()
    code = oathtool(secret, (step + 1) * PERIOD)

    # The same code was good all along: with its own key the original database takes it.
    original.start()
    try:
        assert original.request("verify", user="root", code=code)["result"] == p.ACCEPTED
        assert original.request("verify", user="root", code=codes[0])["result"] == p.ACCEPTED
    finally:
        original.stop()
