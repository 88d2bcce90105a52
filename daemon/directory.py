"""Who is who: user and group lookups through NSS, so LDAP and SSSD accounts count too.

Every request names its account through NSS first (one account, one name), and NSS
can be slow for a name that is no account: nss-systemd looks for a dozen files before
it says so (80 µs here, against 6 µs for a name in /etc/passwd), SSSD may ask a
server.  So a name's answer is kept for a few seconds, for a bounded number of names:
a burst of logins, or of invented names, costs one lookup a name, and an account made,
renamed or removed is seen within NAME_TTL seconds.
"""

from __future__ import annotations

import grp
import os
import pwd
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

NAME_TTL = 5.0  # seconds a name's account (or its absence) is remembered
NAMES_KEPT = 4096  # names remembered at most: invented ones cannot grow the process


class Directory(Protocol):
    def canonical(self, user: str) -> str: ...

    def uid_of(self, user: str) -> int | None: ...

    def groups_of(self, user: str) -> frozenset[str]: ...

    def name_of(self, uid: int) -> str | None: ...

    def login_users(self) -> list[str]: ...

    def members_of(self, group: str) -> frozenset[str]: ...


class _RecentAccounts:
    """getpwnam's answers for the last NAMES_KEPT names, each for NAME_TTL seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._kept: OrderedDict[str, tuple[float, pwd.struct_passwd | None]] = OrderedDict()
        self._lock = threading.Lock()  # store-bound requests ask from worker threads too

    def lookup(self, user: str) -> pwd.struct_passwd | None:
        now = self._clock()
        with self._lock:
            kept = self._kept.get(user)
            if kept is not None and kept[0] > now:
                self._kept.move_to_end(user)
                return kept[1]
        try:
            entry: pwd.struct_passwd | None = pwd.getpwnam(user)
        except KeyError:
            entry = None
        with self._lock:
            self._kept[user] = (now + NAME_TTL, entry)
            self._kept.move_to_end(user)
            while len(self._kept) > NAMES_KEPT:
                self._kept.popitem(last=False)
        return entry


class SystemDirectory:
    """The machine's own accounts, as `getent passwd` and `id` would show them."""

    def __init__(self) -> None:
        self._accounts = _RecentAccounts()

    def canonical(self, user: str) -> str:
        """The account's own name (pw_name) for a name as typed; an unknown name as typed.

        SSSD (`case_sensitive = false`) and winbind find `ALICE` as the account `alice`:
        state, policy and access must all be about `alice`, whichever way it was typed.
        """
        entry = self._accounts.lookup(user)
        return entry.pw_name if entry is not None else user

    def uid_of(self, user: str) -> int | None:
        entry = self._accounts.lookup(user)
        return entry.pw_uid if entry is not None else None

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
