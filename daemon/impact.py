"""What a policy means for real accounts: each user's state, and who it would lock out.

These answer the administrator's questions before and after an edit: who becomes
required, who of them has not set up an app yet, and, above all, whether at least
one administrator could still log in.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from typing import TypeVar

from pam_twofa.vocabulary import DISABLED, ENABLED, INCOMPLETE, LOCKED

from . import lockout
from .directory import Directory
from .policy import LOGIN_SITUATIONS, REQUIRED, Decision, Policy
from .store import UserRow

Situations = Iterable[tuple[str, "str | None"]]  # (PAM service, remote host)


def _decisions(
    policy: Policy, user: str, directory: Directory, situations: Situations = LOGIN_SITUATIONS
) -> list[Decision]:
    """The decisions for `user` in each situation; by default over SSH from an unknown
    host, and at the console."""
    return [
        policy.decide(user, lambda: directory.groups_of(user), service, rhost)
        for service, rhost in situations
    ]


def requirement(policy: Policy, user: str, directory: Directory) -> Decision:
    """The decision that requires a code of `user` somewhere, else the SSH one.

    SSH and the console first, the logins people think of; then any other service or
    place (sudo only, one network only), which makes the user just as required.
    """
    decisions = _decisions(policy, user, directory)
    found = next((d for d in decisions if d.action == REQUIRED), None)
    if found is None:
        found = policy.required_somewhere(user, lambda: directory.groups_of(user))
    return found or decisions[0]


def state_of(row: UserRow | None, required: bool, now: float) -> str:
    if row is not None and row.active:
        return LOCKED if lockout.retry_after(row.lock, now) is not None else ENABLED
    return INCOMPLETE if required else DISABLED


RowOf = Callable[[str], "UserRow | None"]
T = TypeVar("T")


def candidates(stored: Iterable[str], directory: Directory) -> list[str]:
    """Every name a listing covers, sorted: those we hold and those who can log in."""
    return sorted(set(stored) | set(directory.login_users()))


def page(
    names: list[str], after: str | None, limit: int, pick: Callable[[str], T | None]
) -> tuple[list[T], str | None]:
    """Up to `limit` entries picked from the names after `after`, and the next cursor.

    A cursor (the last name given) rather than an offset, so that a user enrolled or
    removed between two pages neither repeats nor hides another. Names `pick` passes
    over cost one look each, and each name is looked at on one page only.
    """
    start = bisect.bisect_right(names, after) if after is not None else 0
    picked: list[T] = []
    for index in range(start, len(names)):
        entry = pick(names[index])
        if entry is None:
            continue
        picked.append(entry)
        if len(picked) == limit:
            return picked, names[index] if index + 1 < len(names) else None
    return picked, None


def administrators(policy: Policy, directory: Directory) -> list[str]:
    members: set[str] = {"root"}
    for group in policy.admin_groups:
        members |= directory.members_of(group)
    return sorted(members)


# Addresses outside any network an administrator is likely to name (RFC 5737, 3849).
_ELSEWHERE = ("192.0.2.1", "198.51.100.1", "203.0.113.1", "2001:db8::1")


def ssh_origins(policy: Policy) -> list[str]:
    """Where an SSH login may come from, as far as the policy can tell them apart.

    One address inside each network a rule names, and some outside them all: sshd
    hands PAM an address, so a rule's networks are all that can split the logins.
    """
    origins = {
        str(network.network_address)
        for rule in policy.rules
        for network in (*(rule.from_ or ()), *(rule.not_from or ()))
        if not isinstance(network, str)
    }
    return sorted(origins) + [address for address in _ELSEWHERE if address not in origins]


def lockout_risk(policy: Policy, row_of: RowOf, directory: Directory) -> str | None:
    """Why no administrator could log in under `policy`, or None if one could.

    An administrator is shut out when every way in (SSH from anywhere, console)
    requires a code they have no app for, and they would not be offered the set-up
    at login.
    """
    if policy.enrollment_at_login:
        return None
    ways_in = [("sshd", origin) for origin in ssh_origins(policy)] + [("login", None)]
    admins = administrators(policy, directory)
    for admin in admins:
        row = row_of(admin)
        if row is not None and row.active:
            return None
        if any(d.action != REQUIRED for d in _decisions(policy, admin, directory, ways_in)):
            return None
    return (
        f"no administrator could log in: {', '.join(admins)} "
        f"{'is' if len(admins) == 1 else 'are'} required for sshd and login, not enrolled, "
        "and enrollment.at_login is false; enroll an administrator first, "
        "or apply anyway with --force"
    )
