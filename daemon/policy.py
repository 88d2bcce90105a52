"""The policy in force: who must give a code, for which service, from where.

A Policy is a validated, immutable value (see policy_file for how YAML becomes one).
Deciding is pure: the caller hands in the user's groups lazily, since looking them up
through NSS may cost a round trip to LDAP that most rules never need.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from .lockout import LockoutPolicy
from .totp import TotpParams

REQUIRED = "required"
OPTIONAL = "optional"
EXEMPT = "exempt"
ACTIONS = (REQUIRED, OPTIONAL, EXEMPT)

# A `from` entry that stands for "no remote host": a login at the console, su, sudo.
LOCAL = "local"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Origin:
    """Where a login comes from: a parsed address, or none for a local login.

    A remote host PAM gives as a name rather than an address matches no `from`
    network and every `not_from`: an unverifiable origin is never trusted.
    """

    rhost: str | None
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None

    @classmethod
    def parse(cls, rhost: str | None) -> Origin:
        if rhost is None:
            return cls(None, None)
        try:
            address = ipaddress.ip_address(rhost.split("%", 1)[0])
        except ValueError:
            return cls(rhost, None)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:192.0.2.1 is 192.0.2.1
        return cls(rhost, address)

    @property
    def local(self) -> bool:
        return self.rhost is None

    def within(self, networks: tuple[Network | str, ...]) -> bool:
        for network in networks:
            if network == LOCAL:
                if self.local:
                    return True
            elif (
                self.address is not None
                and not isinstance(network, str)
                and self.address.version == network.version
                and self.address in network
            ):
                return True
        return False


@dataclass(frozen=True)
class Rule:
    """One entry of `rules:`; every condition present must hold, any list item may match."""

    name: str
    action: str
    line: int = 0
    users: tuple[str, ...] | None = None
    groups: tuple[str, ...] | None = None
    services: tuple[str, ...] | None = None
    from_: tuple[Network | str, ...] | None = None
    not_users: tuple[str, ...] | None = None
    not_services: tuple[str, ...] | None = None
    not_groups: tuple[str, ...] | None = None
    not_from: tuple[Network | str, ...] | None = None
    email: bool | None = None  # emailed codes for the logins it decides; None: the policy's
    file: str | None = None  # the drop-in it is written in; None: the policy's own file

    def matches(
        self,
        user: str,
        groups: Callable[[], frozenset[str]],
        service: str | None,
        origin: Origin,
    ) -> bool:
        # The cheap conditions first: groups may cost an NSS round trip.
        if self.users is not None and user not in self.users:
            return False
        if self.not_users is not None and user in self.not_users:
            return False
        if self.services is not None and service not in self.services:
            return False
        if self.not_services is not None and service in self.not_services:
            return False
        if self.from_ is not None and not origin.within(self.from_):
            return False
        if self.not_from is not None and origin.within(self.not_from):
            return False
        return self._matches_groups(groups)

    def matches_person(self, user: str, groups: Callable[[], frozenset[str]]) -> bool:
        """Whether the rule is about this user, for some service and place at least."""
        if self.users is not None and user not in self.users:
            return False
        if self.not_users is not None and user in self.not_users:
            return False
        return self._matches_groups(groups)

    def _matches_groups(self, groups: Callable[[], frozenset[str]]) -> bool:
        if self.groups is not None and not groups() & set(self.groups):
            return False
        return not (self.not_groups is not None and groups() & set(self.not_groups))

    @property
    def covers_every_login(self) -> bool:
        """No service or place condition: for a user it matches, it decides every login."""
        return (
            self.services is None
            and self.not_services is None
            and self.from_ is None
            and self.not_from is None
        )


@dataclass(frozen=True)
class EmailPolicy:
    """Codes by email ("Lost phone?"): off unless switched on, and capped per account.

    NIST SP 800-63B (5.1.3.1) does not accept email as an out-of-band authenticator:
    a mailbox is reached with a password, often the same one.  So it is an option for
    appliances whose people expect it, off by default, and a rule can keep it from
    the accounts that matter most (administrators).
    """

    allowed: bool = False  # for the logins no rule with `email:` decides
    per_hour: int = 3  # codes mailed to one account within an hour
    per_day: int = 5  # ... and within a day
    valid_for: float = 600.0  # seconds a code works

    def sends_allowed(self, sent: tuple[float, ...], now: float) -> float | None:
        """None if one more may be sent now, else the seconds until one may."""
        hour = sorted(t for t in sent if now - 3600 < t <= now)
        day = sorted(t for t in sent if now - 86400 < t <= now)
        waits = []
        if len(hour) >= self.per_hour:
            waits.append(hour[len(hour) - self.per_hour] + 3600 - now)
        if len(day) >= self.per_day:
            waits.append(day[len(day) - self.per_day] + 86400 - now)
        return max(waits) if waits else None


@dataclass(frozen=True)
class Decision:
    action: str
    rule: str  # the rule's name, or "default"
    line: int | None  # where the rule is written, None for the default
    email: bool = False  # whether a code may be asked for by email at this login
    file: str | None = None  # the drop-in the rule is written in; None: the policy's file

    def where(self, source: str) -> str | None:
        return f"{self.file or source}:{self.line}" if self.line else None


@dataclass(frozen=True)
class Policy:
    """The whole policy; its defaults are the shipped config/policy.yaml."""

    source: str = "<built-in>"
    issuer: str = "%h"
    totp: TotpParams = field(default_factory=TotpParams)
    window: int = 1
    default: str = OPTIONAL
    rules: tuple[Rule, ...] = ()
    enrollment_at_login: bool = True
    recovery_codes: int = 8
    lockout: LockoutPolicy = field(default_factory=LockoutPolicy)
    admin_groups: frozenset[str] = frozenset({"sudo"})
    email: EmailPolicy = field(default_factory=EmailPolicy)
    # `include:` as written: glob patterns, relative to the file's directory, naming the
    # drop-ins whose rules follow the file's own (see policy_file.with_dropins).
    includes: tuple[str, ...] = ()

    def decide(
        self,
        user: str,
        groups: Callable[[], frozenset[str]],
        service: str | None = None,
        rhost: str | None = None,
    ) -> Decision:
        """The first rule that matches decides; none matching, the default does."""
        origin = Origin.parse(rhost)
        groups = _once(groups)
        for rule in self.rules:
            if rule.matches(user, groups, service, origin):
                email = self.email.allowed if rule.email is None else rule.email
                allowed = email and rule.action != EXEMPT
                return Decision(rule.action, rule.name, rule.line, allowed, rule.file)
        return Decision(
            self.default, "default", None, self.email.allowed and self.default != EXEMPT
        )

    def required_somewhere(
        self, user: str, groups: Callable[[], frozenset[str]]
    ) -> Decision | None:
        """The rule (or the default) requiring a code of `user` for some login, if any.

        Some service or place: sudo only, SSH from one network only. A rule about the
        user that covers every login ends the search, as it would end every decision.
        """
        groups = _once(groups)
        for rule in self.rules:
            if not rule.matches_person(user, groups):
                continue
            if rule.action == REQUIRED:
                return Decision(rule.action, rule.name, rule.line, file=rule.file)
            if rule.covers_every_login:
                return None
        return Decision(self.default, "default", None) if self.default == REQUIRED else None

    @property
    def issuer_name(self) -> str:
        return self.issuer.replace("%h", socket.gethostname())

    def equivalent(self, other: Policy) -> bool:
        """Same behaviour, wherever each was read from (line numbers aside)."""
        return _comparable(self) == _comparable(other)


def _comparable(policy: Policy) -> tuple[object, ...]:
    rules = tuple(
        (
            r.name,
            r.action,
            r.users,
            r.groups,
            r.services,
            r.from_,
            r.not_users,
            r.not_services,
            r.not_groups,
            r.not_from,
            r.email,
        )
        for r in policy.rules
    )
    return (
        policy.issuer,
        policy.totp,
        policy.window,
        policy.default,
        rules,
        policy.enrollment_at_login,
        policy.recovery_codes,
        policy.lockout,
        policy.admin_groups,
        policy.email,
    )


def _once(lookup: Callable[[], frozenset[str]]) -> Callable[[], frozenset[str]]:
    """Look the groups up at most once per decision, and only if a rule asks."""
    cache: list[frozenset[str]] = []

    def groups() -> frozenset[str]:
        if not cache:
            cache.append(lookup())
        return cache[0]

    return groups


# Used to ask "what if this user logged in over SSH from somewhere we know nothing of?"
UNKNOWN_REMOTE = "unknown-remote-host"
LOGIN_SITUATIONS = (("sshd", UNKNOWN_REMOTE), ("login", None))
