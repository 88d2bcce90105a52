"""Who may ask for what, decided from the peer's uid as the kernel reports it (SO_PEERCRED).

Root (the PAM stack runs as root) may do everything.  Members of the administrators'
groups may manage any account but not make login decisions.  Everyone else may act only
on their own account, and must prove it with a code where that could weaken it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pam_twofa import protocol as p
from pam_twofa.protocol import Request

from .directory import Directory

ROOT = "root"
ADMIN = "admin"
SELF = "self"
ANYONE = "anyone"

OPEN_OPERATIONS = frozenset({"ping"})
ROOT_OPERATIONS = frozenset({"verify"})
ADMIN_OPERATIONS = frozenset({"list", "unlock"})
OWN_ACCOUNT_OPERATIONS = frozenset(
    {
        "check",
        "enroll.begin",
        "enroll.confirm",
        "status",
        "disable",
        "recovery.regenerate",
        "resync",
        "policy.explain",
        "secret.show",
    }
)


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int


class AccessDenied(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = p.UNAUTHORIZED
        self.message = message


def is_admin(uid: int, directory: Directory, admin_groups: frozenset[str]) -> bool:
    name = directory.name_of(uid)
    return name is not None and bool(directory.groups_of(name) & admin_groups)


def authorize(
    peer: Peer, request: Request, directory: Directory, admin_groups: frozenset[str]
) -> str:
    """The role in which `peer` may make `request`, or AccessDenied."""
    if peer.uid == 0:
        return ROOT
    if request.op in OPEN_OPERATIONS:
        return ANYONE
    if request.op in ROOT_OPERATIONS:
        raise AccessDenied(f"{request.op} is reserved to root (the PAM stack)")
    target = request.fields.get("user")
    if (
        request.op in OWN_ACCOUNT_OPERATIONS
        and target is not None
        and directory.uid_of(target) == peer.uid
    ):
        return SELF
    if is_admin(peer.uid, directory, admin_groups):
        return ADMIN
    if request.op in ADMIN_OPERATIONS:
        raise AccessDenied(f"{request.op} needs an administrator")
    raise AccessDenied("you may act only on your own account")
