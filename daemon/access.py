"""Who may call which operation, and when a current code must prove it: one table.

Access is decided from the peer's uid as the kernel reports it (SO_PEERCRED).  Every
operation of the protocol has one row in RULES: who may call it, and whether a current
code must be checked before it acts.  The daemon refuses to start if an operation has
no row (check_table), so a new operation cannot slip in open.  The rest of this module
only reads the table; changing who may do what is changing a row.

Root (the PAM stack, and twofactl run as root) may do everything.  Members of the
administrators' groups may manage any account but not make login decisions.  Everyone
else may act only on their own account, and must prove it with a code where that
could weaken it.  An administrator acting on their own account is the account itself,
so proves it like anyone: someone at an administrator's unlocked session cannot strip
that administrator's second factor.
"""

from __future__ import annotations

from dataclasses import dataclass

from pam_twofa import protocol as p
from pam_twofa.errors import TwofaError
from pam_twofa.protocol import Request

from .directory import Directory

# --- roles: who the peer is, for one request ---------------------------------------------

ROOT = "root"  # uid 0
ADMIN = "admin"  # a member of one of the policy's admins.groups
SELF = "self"  # the account the request names is the peer's own
ANYONE = "anyone"  # any local process

# The order in which roles are decided: the first the row allows and the peer holds is
# its role.  SELF comes before ADMIN, so an administrator on their own account needs a
# code where the account itself would.
DECIDED_IN_ORDER = (ROOT, ANYONE, SELF, ADMIN)

# Who may call an operation (root always may).
ROOT_ONLY = frozenset({ROOT})
ADMINS = frozenset({ROOT, ADMIN})
ACCOUNT = frozenset({ROOT, SELF, ADMIN})  # the account itself, or an administrator
EVERYONE = frozenset({ROOT, SELF, ADMIN, ANYONE})

# --- proof: whether a current code of the account is checked before acting ----------------

NEVER = "never"
ON_OWN = "on one's own account"  # when the role is SELF
ALWAYS = "always"  # whoever asks, root too


@dataclass(frozen=True)
class Rule:
    """One operation's row: who may call it, and when a current code is checked first."""

    callers: frozenset[str]
    proof: str


# fmt: off
RULES: dict[str, Rule] = {
    # operation             who may call it   a current code first
    "ping":                 Rule(EVERYONE,    NEVER),
    "check":                Rule(ACCOUNT,     NEVER),
    "verify":               Rule(ROOT_ONLY,   NEVER),   # login decisions are the PAM stack's
    "enroll.begin":         Rule(ACCOUNT,     ON_OWN),  # asked only to replace an active key
    "secret.show":          Rule(ACCOUNT,     ALWAYS),  # the key itself: of whoever asks
    "enroll.confirm":       Rule(ACCOUNT,     NEVER),   # the new key's code is the proof
    "status":               Rule(ACCOUNT,     NEVER),
    "list":                 Rule(ADMINS,      NEVER),
    "disable":              Rule(ACCOUNT,     ON_OWN),  # oneself: not where 2FA is required
    "unlock":               Rule(ADMINS,      NEVER),
    "recovery.regenerate":  Rule(ACCOUNT,     ON_OWN),
    "resync":               Rule(ACCOUNT,     NEVER),   # its two codes are its own proof
    "reload":               Rule(ADMINS,      NEVER),
    "policy.check":         Rule(ADMINS,      NEVER),
    "policy.explain":       Rule(ACCOUNT,     NEVER),
    "import":               Rule(ADMINS,      NEVER),
    "diagnose":             Rule(ADMINS,      NEVER),
    "keys.reseal":          Rule(ADMINS,      NEVER),   # the keys stay the same, sealed anew
    "device.list":          Rule(ACCOUNT,     NEVER),
    "device.add":           Rule(ACCOUNT,     ON_OWN),  # a new key that logs in: prove it first
    "device.rename":        Rule(ACCOUNT,     NEVER),   # a label; every key stays as it was
    "device.remove":        Rule(ACCOUNT,     ON_OWN),  # never the last: that is disable
    "email.set":            Rule(ACCOUNT,     ON_OWN),  # a new way to receive codes: prove it
    "email.confirm":        Rule(ACCOUNT,     NEVER),   # the code mailed is the proof
    "email.remove":         Rule(ACCOUNT,     NEVER),   # one way in fewer
    "email.send":           Rule(ROOT_ONLY,   NEVER),   # at the prompt: the PAM stack's
    "email.test":           Rule(ADMINS,      NEVER),
}
# fmt: on


class AccessTableError(Exception):
    """RULES and the protocol disagree: the daemon must not start."""


def check_table() -> None:
    """Every protocol operation has exactly one sound row, or AccessTableError.

    Run at import and when a Server is made, so a daemon whose table misses an
    operation stops at start-up instead of answering it some default way.
    """
    problems = [f"{op}: no row" for op in sorted(set(p.OPERATIONS) - set(RULES))]
    problems += [f"{op}: not an operation" for op in sorted(set(RULES) - set(p.OPERATIONS))]
    for op, rule in sorted(RULES.items()):
        if ROOT not in rule.callers or not rule.callers <= set(DECIDED_IN_ORDER):
            problems.append(f"{op}: callers must include root and be among {DECIDED_IN_ORDER}")
        if rule.proof not in (NEVER, ON_OWN, ALWAYS):
            problems.append(f"{op}: unknown proof {rule.proof!r}")
        if rule.proof == ON_OWN and SELF not in rule.callers:
            problems.append(f"{op}: a code on one's own account, but the account may not call it")
        if rule.proof != NEVER and "code" not in p.OPERATIONS.get(op, {}):
            problems.append(f"{op}: a code is needed but the request cannot carry one")
    if problems:
        raise AccessTableError("access table: " + "; ".join(problems))


check_table()


# --- deciding one request ----------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int


@dataclass(frozen=True)
class Grant:
    """What a request may do: the role it is made in, and whether a code must prove it."""

    role: str
    needs_proof: bool


class AccessDenied(TwofaError):
    """A peer asking for what its role may not do."""

    def __init__(self, message: str) -> None:
        super().__init__(p.UNAUTHORIZED, message)


def is_admin(uid: int, directory: Directory, admin_groups: frozenset[str]) -> bool:
    name = directory.name_of(uid)
    return name is not None and bool(directory.groups_of(name) & admin_groups)


def _holds(
    role: str, peer: Peer, request: Request, directory: Directory, admin_groups: frozenset[str]
) -> bool:
    if role == ROOT:
        return peer.uid == 0
    if role == ANYONE:
        return True
    if role == SELF:
        target = request.fields.get("user")
        return target is not None and directory.uid_of(target) == peer.uid
    return is_admin(peer.uid, directory, admin_groups)


def _needs_proof(rule: Rule, role: str) -> bool:
    return rule.proof == ALWAYS or (rule.proof == ON_OWN and role == SELF)


def _refusal(op: str, rule: Rule) -> AccessDenied:
    if SELF in rule.callers:
        return AccessDenied("you may act only on your own account")
    if ADMIN in rule.callers:
        return AccessDenied(f"{op} needs an administrator")
    return AccessDenied(f"{op} is reserved to root (the PAM stack)")


def authorize(
    peer: Peer, request: Request, directory: Directory, admin_groups: frozenset[str]
) -> Grant:
    """The role in which `peer` may make `request` and whether a code must prove it, or
    AccessDenied."""
    rule = RULES[request.op]
    for role in DECIDED_IN_ORDER:
        if role in rule.callers and _holds(role, peer, request, directory, admin_groups):
            return Grant(role, _needs_proof(rule, role))
    raise _refusal(request.op, rule)
