"""Who is who: user and group lookups through NSS, so LDAP and SSSD accounts count too."""

from __future__ import annotations

import grp
import os
import pwd
from typing import Protocol


class Directory(Protocol):
    def canonical(self, user: str) -> str: ...

    def uid_of(self, user: str) -> int | None: ...

    def groups_of(self, user: str) -> frozenset[str]: ...

    def name_of(self, uid: int) -> str | None: ...

    def login_users(self) -> list[str]: ...

    def members_of(self, group: str) -> frozenset[str]: ...


class SystemDirectory:
    """The machine's own accounts, as `getent passwd` and `id` would show them."""

    def canonical(self, user: str) -> str:
        """The account's own name (pw_name) for a name as typed; an unknown name as typed.

        SSSD (`case_sensitive = false`) and winbind find `ALICE` as the account `alice`:
        state, policy and access must all be about `alice`, whichever way it was typed.
        """
        try:
            return pwd.getpwnam(user).pw_name
        except KeyError:
            return user

    def uid_of(self, user: str) -> int | None:
        try:
            return pwd.getpwnam(user).pw_uid
        except KeyError:
            return None

    def name_of(self, uid: int) -> str | None:
        try:
            return pwd.getpwuid(uid).pw_name
        except KeyError:
            return None

    def groups_of(self, user: str) -> frozenset[str]:
        """Primary and supplementary groups, the way the login would get them."""
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            return frozenset()
        names = set()
        for gid in os.getgrouplist(user, entry.pw_gid):
            try:
                names.add(grp.getgrgid(gid).gr_name)
            except KeyError:
                continue
        return frozenset(names)

    def login_users(self) -> list[str]:
        """Accounts that can log in: those whose shell is a real one from /etc/shells."""
        shells = _login_shells()
        return sorted({entry.pw_name for entry in pwd.getpwall() if entry.pw_shell in shells})

    def members_of(self, group: str) -> frozenset[str]:
        """Members listed in the group and users whose primary group it is, by account name.

        A directory may list a member as `Alice` for the account `alice`.
        """
        try:
            entry = grp.getgrnam(group)
        except KeyError:
            return frozenset()
        primary = {user.pw_name for user in pwd.getpwall() if user.pw_gid == entry.gr_gid}
        return frozenset(self.canonical(member) for member in entry.gr_mem) | primary


def _login_shells() -> frozenset[str]:
    try:
        with open("/etc/shells", encoding="utf-8") as shells:
            listed = {line.strip() for line in shells if line.strip().startswith("/")}
    except OSError:
        listed = {"/bin/sh", "/bin/bash", "/usr/bin/bash", "/usr/bin/sh"}
    return frozenset(shell for shell in listed if not shell.endswith(("nologin", "false")))
