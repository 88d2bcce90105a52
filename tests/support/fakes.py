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

    def uid_of(self, user: str) -> int | None:
        entry = self.users.get(user)
        return entry[0] if entry else None

    def name_of(self, uid: int) -> str | None:
        return next((name for name, (u, _) in self.users.items() if u == uid), None)

    def groups_of(self, user: str) -> frozenset[str]:
        entry = self.users.get(user)
        return entry[1] if entry else frozenset()

    def login_users(self) -> list[str]:
        return sorted(self.users)

    def members_of(self, group: str) -> frozenset[str]:
        return frozenset(name for name, (_, groups) in self.users.items() if group in groups)
