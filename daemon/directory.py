"""Who is who: user and group lookups through NSS, so LDAP and SSSD accounts count too."""

from __future__ import annotations

import grp
import os
import pwd
from typing import Protocol


class Directory(Protocol):
    def uid_of(self, user: str) -> int | None: ...

    def groups_of(self, user: str) -> frozenset[str]: ...

    def name_of(self, uid: int) -> str | None: ...


class SystemDirectory:
    """The machine's own accounts, as `getent passwd` and `id` would show them."""

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
