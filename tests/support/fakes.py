"""Stand-ins for the two things the service asks the outside world: time and accounts."""

from __future__ import annotations

from dataclasses import dataclass, field


class Clock:
    """A clock that moves only when a test says so."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Accounts:
    """An NSS in a dict: name -> (uid, groups)."""

    users: dict[str, tuple[int, frozenset[str]]] = field(default_factory=dict)

    def add(self, name: str, uid: int, *groups: str) -> None:
        self.users[name] = (uid, frozenset(groups))

    def _find(self, user: str) -> str | None:
        """The account's own name for `user` as typed: here, only the exact name."""
        return user if user in self.users else None

    def canonical(self, user: str) -> str:
        return self._find(user) or user

    def uid_of(self, user: str) -> int | None:
        name = self._find(user)
        return self.users[name][0] if name is not None else None

    def name_of(self, uid: int) -> str | None:
        return next((name for name, (u, _) in self.users.items() if u == uid), None)

    def groups_of(self, user: str) -> frozenset[str]:
        """Groups as getgrouplist gives them: for the account's own name only."""
        entry = self.users.get(user)
        return entry[1] if entry else frozenset()

    def login_users(self) -> list[str]:
        return sorted(self.users)

    def members_of(self, group: str) -> frozenset[str]:
        return frozenset(name for name, (_, groups) in self.users.items() if group in groups)


class FoldingAccounts(Accounts):
    """An NSS that finds accounts without regard to case, as SSSD (`case_sensitive =
    false`) or winbind: `ALICE` is the account `alice`, and is answered as `alice`.

    Group lists stay keyed by the account's own name, as a group file lists members:
    asking for the groups of `ALICE` finds none, as getgrouplist would not.
    """

    def _find(self, user: str) -> str | None:
        folded = user.casefold()
        return next((name for name in self.users if name.casefold() == folded), None)
