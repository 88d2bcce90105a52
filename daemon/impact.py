"""What a policy means for real accounts: each user's state, and who it would lock out.

These answer the administrator's questions before and after an edit: who becomes
required, who of them has not set up an app yet, and, above all, whether at least
one administrator could still log in.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import lockout
from .directory import Directory
from .policy import LOGIN_SITUATIONS, REQUIRED, Decision, Policy
from .store import UserRow

ENABLED = "enabled"
DISABLED = "disabled"
INCOMPLETE = "incomplete"
LOCKED = "locked"
STATES = (ENABLED, DISABLED, INCOMPLETE, LOCKED)


def _decisions(policy: Policy, user: str, directory: Directory) -> list[Decision]:
    """The decisions for `user` over SSH from an unknown host, and at the console."""
    return [
        policy.decide(user, lambda: directory.groups_of(user), service, rhost)
        for service, rhost in LOGIN_SITUATIONS
    ]


def requirement(policy: Policy, user: str, directory: Directory) -> Decision:
    """The decision that requires a code of `user` somewhere, else the SSH one."""
    decisions = _decisions(policy, user, directory)
    return next((d for d in decisions if d.action == REQUIRED), decisions[0])


def state_of(row: UserRow | None, required: bool, now: float) -> str:
    if row is not None and row.active:
        held = lockout.LockState(row.failures, row.locked_until, bool(row.hard_locked))
        return LOCKED if lockout.retry_after(held, now) is not None else ENABLED
    return INCOMPLETE if required else DISABLED


@dataclass(frozen=True)
class Assessment:
    user: str
    state: str
    decision: Decision


def assess(
    policy: Policy,
    rows: dict[str, UserRow],
    directory: Directory,
    now: float,
    users: list[str] | None = None,
) -> list[Assessment]:
    """The state of every user we know or the machine can log in, under `policy`."""
    names = users if users is not None else sorted(set(rows) | set(directory.login_users()))
    assessed = []
    for name in names:
        decision = requirement(policy, name, directory)
        state = state_of(rows.get(name), decision.action == REQUIRED, now)
        assessed.append(Assessment(name, state, decision))
    return assessed


def administrators(policy: Policy, directory: Directory) -> list[str]:
    members: set[str] = {"root"}
    for group in policy.admin_groups:
        members |= directory.members_of(group)
    return sorted(members)


def lockout_risk(policy: Policy, rows: dict[str, UserRow], directory: Directory) -> str | None:
    """Why no administrator could log in under `policy`, or None if one could.

    An administrator is shut out when every way in (SSH, console) requires a code they
    have no app for, and they would not be offered the set-up at login.
    """
    if policy.enrollment_at_login:
        return None
    admins = administrators(policy, directory)
    for admin in admins:
        row = rows.get(admin)
        if row is not None and row.active:
            return None
        if any(d.action != REQUIRED for d in _decisions(policy, admin, directory)):
            return None
    return (
        f"no administrator could log in: {', '.join(admins)} "
        f"{'is' if len(admins) == 1 else 'are'} required for sshd and login, not enrolled, "
        "and enrollment.at_login is false; enroll an administrator first, "
        "or apply anyway with --force"
    )
