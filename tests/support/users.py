"""Throwaway local accounts, created for one test and removed afterwards."""

from __future__ import annotations

import pwd
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class TestUser:
    __test__ = False  # a person, not a test class for pytest to collect

    name: str
    uid: int
    gid: int
    home: str


@contextmanager
def throwaway_user(prefix: str = "tfa", *, groups: tuple[str, ...] = ()) -> Iterator[TestUser]:
    """A fresh account (no password, a home, a shell); deleted on exit, home and all."""
    name = f"{prefix}{secrets.token_hex(4)}"
    command = ["useradd", "--create-home", "--shell", "/bin/bash", "--user-group"]
    if groups:
        command += ["--groups", ",".join(groups)]
    subprocess.run([*command, name], check=True, capture_output=True)
    try:
        entry = pwd.getpwnam(name)
        yield TestUser(name, entry.pw_uid, entry.pw_gid, entry.pw_dir)
    finally:
        subprocess.run(["userdel", "--remove", name], check=False, capture_output=True)


def set_password(user: str, password: str) -> None:
    subprocess.run(["chpasswd"], input=f"{user}:{password}\n", text=True, check=True)
