"""YAML text to a validated Policy, or every error in it with its line and column.

The YAML is composed into nodes (which keep their positions) and walked by hand, so
an error can say where it is and what was expected, unknown keys are caught (a misspelt
`gruops:` must not silently widen a rule), and nothing is applied unless all of it is
valid.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.scanner import ScannerError

from pam_twofa import vocabulary as v
from pam_twofa.errors import INVALID_POLICY, TwofaError
from pam_twofa.protocol import (
    BAD_REQUEST,
    MAX_WINDOW,
    ProtocolError,
    validate_service,
    validate_user,
)

from .lockout import LockoutPolicy
from .policy import ACTIONS, LOCAL, Network, Policy, Rule
from .totp import ALGORITHMS, TotpParams

MAX_POLICY_BYTES = v.MAX_POLICY_BYTES
MAX_NODES = 20_000  # bounds the walk, whatever aliases may multiply
MAX_DEPTH = 32  # collections inside collections; a policy needs five
MAX_RULE_NAME = 64  # rule names travel in every status line and audit event
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


@dataclass(frozen=True)
class Problem:
    line: int
    column: int
    path: str
    message: str

    def format(self, source: str) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{source}:{self.line}:{self.column}: {where}{self.message}"


MAX_SHOWN = 50  # problems listed; 50 of the longest still fit in a protocol message


class PolicyError(TwofaError):
    """A policy that cannot be used; `problems` lists every error found, in file order."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = sorted(problems, key=lambda p: (p.line, p.column))
        super().__init__(INVALID_POLICY, "\n".join(self.messages))

    @property
    def messages(self) -> list[str]:
        """Every problem, up to MAX_SHOWN: a reply carrying them must fit in one message."""
        shown = [problem.format(self.source) for problem in self.problems[:MAX_SHOWN]]
        hidden = len(self.problems) - len(shown)
        return shown + ([f"{self.source}: ... and {hidden} more"] if hidden else [])


class _Invalid(Exception):
    """One value is wrong; the walker records it and carries on with the rest."""


class _Walker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self._constructor = SafeConstructor()
        self._visited = 0

    def problem(self, node: Node, path: str, message: str) -> None:
        mark = node.start_mark
        self.problems.append(Problem(mark.line + 1, mark.column + 1, path, message))

    def scalar(self, node: Node, path: str) -> Any:
        self._visited += 1
        if self._visited > MAX_NODES:
            raise _TooBig
        if not isinstance(node, ScalarNode):
            self.problem(node, path, f"expected a single value, not a {_kind(node)}")
            raise _Invalid
        try:
            return self._constructor.construct_object(node)
        except ConstructorError as exc:
            self.problem(node, path, f"unreadable value: {_brief(exc.problem)}")
            raise _Invalid from None
        except Exception:
            # SafeConstructor trusts a scalar that looks like its type, or is tagged as
            # one: a date that is none (2020-13-45), `!!int abc`, `!!bool maybe`, more
            # digits than int() reads.  Each fails with whatever its conversion raises.
            what = node.tag.rsplit(":", 1)[-1]
            self.problem(node, path, f"unreadable value: {_show(node.value)} is not a valid {what}")
            raise _Invalid from None

    def mapping(
        self, node: Node, path: str, schema: dict[str, Callable[[Node, str], Any]]
    ) -> dict[str, Any]:
        """Check a mapping's keys against `schema` and convert each value it has."""
        self._visited += 1
        if not isinstance(node, MappingNode):
            if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
                return {}
            self.problem(node, path, f"expected a mapping of {', '.join(schema)}")
            raise _Invalid
        result: dict[str, Any] = {}
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            where = f"{path}.{key}" if path else str(key)
            if key not in schema:
                self.problem(
                    key_node, path, f"unknown key {_show(key)}; expected one of {', '.join(schema)}"
                )
                continue
            if key in seen:
                self.problem(key_node, path, f"{_show(key)} is given twice")
                continue
            seen.add(key)
            try:
                result[key] = schema[key](value_node, where)
            except _Invalid:
                continue
        return result

    def sequence(self, node: Node, path: str, item: Callable[[Node, str], Any]) -> tuple[Any, ...]:
        """A list; a single value stands for a list of one."""
        self._visited += 1
        if isinstance(node, ScalarNode):
            return (item(node, f"{path}[0]"),)
        if not isinstance(node, SequenceNode):
            self.problem(node, path, "expected a list")
            raise _Invalid
        values = []
        failed = False
        for index, child in enumerate(node.value):
            try:
                values.append(item(child, f"{path}[{index}]"))
            except _Invalid:
                failed = True
        if failed:
            raise _Invalid
        return tuple(values)

    # --- typed values ------------------------------------------------------------

    def string(self, node: Node, path: str) -> str:
        value = self.scalar(node, path)
        if not isinstance(value, str) or not value:
            self.problem(node, path, f"expected text, not {_show(value)}")
            raise _Invalid
        return value

    def label(self, limit: int) -> Callable[[Node, str], str]:
        """A name shown in messages and replies: one printable line, bounded."""

        def convert(node: Node, path: str) -> str:
            value = self.string(node, path)
            if len(value) > limit or not value.isprintable():
                self.problem(node, path, f"expected 1 to {limit} printable characters on one line")
                raise _Invalid
            return value

        return convert

    def choice(self, options: tuple[str, ...]) -> Callable[[Node, str], str]:
        def convert(node: Node, path: str) -> str:
            value = self.scalar(node, path)
            if value not in options:
                self.problem(node, path, f"{_show(value)} is not one of {', '.join(options)}")
                raise _Invalid
            return str(value)

        return convert

    def integer(self, low: int, high: int) -> Callable[[Node, str], int]:
        def convert(node: Node, path: str) -> int:
            value = self.scalar(node, path)
            if type(value) is not int or not low <= value <= high:
                self.problem(
                    node, path, f"expected a whole number from {low} to {high}, not {_show(value)}"
                )
                raise _Invalid
            return value

        return convert

    def boolean(self, node: Node, path: str) -> bool:
        value = self.scalar(node, path)
        if not isinstance(value, bool):
            self.problem(node, path, f"expected true or false, not {_show(value)}")
            raise _Invalid
        return value

    def duration(self, low: int, high: int) -> Callable[[Node, str], int]:
        """Seconds from `30s`, `15m`, `1h`, `1h30m`; a bare number has no unit and is refused."""

        def convert(node: Node, path: str) -> int:
            value = self.scalar(node, path)
            match = _DURATION.fullmatch(value) if isinstance(value, str) else None
            if not match or not any(match.groups()):
                self.problem(
                    node,
                    path,
                    f"{_show(value)} is not a duration; write it with a unit: 30s, 15m, 1h",
                )
                raise _Invalid
            hours, minutes, seconds = (int(g or 0) for g in match.groups())
            total = hours * 3600 + minutes * 60 + seconds
            if not low <= total <= high:
                self.problem(
                    node, path, f"{_show(value)} is out of range ({_human(low)} to {_human(high)})"
                )
                raise _Invalid
            return total

        return convert

    def name(self, check: Callable[[object, str], str], what: str) -> Callable[[Node, str], str]:
        def convert(node: Node, path: str) -> str:
            value = self.scalar(node, path)
            try:
                return check(value, path)
            except ProtocolError:
                self.problem(node, path, f"{_show(value)} is not a valid {what}")
                raise _Invalid from None

        return convert

    def network(self, node: Node, path: str) -> Network | str:
        value = self.scalar(node, path)
        if value == LOCAL:
            return LOCAL
        try:
            network = ipaddress.ip_network(str(value), strict=True)
        except ValueError as exc:
            if "host bits set" in str(exc):
                network = ipaddress.ip_network(str(value), strict=False)
                self.problem(
                    node, path, f"{_show(value)} has host bits set; did you mean {network}?"
                )
            else:
                self.problem(node, path, f"{_show(value)} is not an IP network (or '{LOCAL}')")
            raise _Invalid from None
        return _unmapped(network)


_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _unmapped(network: Network) -> Network:
    """::ffff:10.0.0.0/104 as 10.0.0.0/8: remote addresses are matched as IPv4 too."""
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED):
        mapped = network.network_address.ipv4_mapped
        assert mapped is not None
        return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
    return network


class _TooBig(Exception):
    pass


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing collections nested more than MAX_DEPTH deep.

    Its scanner looks at every open `[` and `{` again at each token, so its time grows
    with the square of the depth (2,000 brackets took over a second, and the daemon
    answers nobody meanwhile); its composer recurses once per level, into
    RecursionError.  Both are stopped at the first level too many.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        if self.flow_level >= MAX_DEPTH:
            raise ScannerError(None, None, f"more than {MAX_DEPTH} nested [ or {{", self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self._depth >= MAX_DEPTH:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise ComposerError(None, None, f"nested more than {MAX_DEPTH} deep", mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _show(value: object, limit: int = 60) -> str:
    """A value quoted for a message, shortened: errors must fit in one reply."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _brief(message: str | None, limit: int = 160) -> str:
    """One of PyYAML's messages, shortened: they quote a tag or an alias whole."""
    text = message or ""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _position(text: str, offset: int) -> tuple[int, int]:
    """Line and column, from 1, of the character at `offset`."""
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "mapping"
    return "list" if isinstance(node, SequenceNode) else "value"


def _human(seconds: int) -> str:
    if seconds == 0:
        return "0s"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def _group_name(value: object, path: str) -> str:
    """Looser than a user name: directory groups such as 'domain admins' have spaces."""
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= 256
        or not value.isprintable()
        or value != value.strip()
        or ":" in value
        or "," in value
    ):
        raise ProtocolError(BAD_REQUEST, "not a group name")
    return value


def _rule(walker: _Walker, node: Node, path: str) -> Rule:
    users = walker.name(validate_user, "user name")
    groups = walker.name(_group_name, "group name")
    services = walker.name(validate_service, "PAM service name")

    def listed(item: Callable[[Node, str], Any]) -> Callable[[Node, str], tuple[Any, ...]]:
        def convert(node: Node, path: str) -> tuple[Any, ...]:
            values = walker.sequence(node, path, item)
            if not values:
                # `groups: []` would match nobody and `not_from: []` exclude nothing:
                # either way the rule would not do what its key says.
                walker.problem(
                    node, path, "an empty list matches nothing; list a value or remove the key"
                )
                raise _Invalid
            return values

        return convert

    fields = walker.mapping(
        node,
        path,
        {
            "name": walker.label(MAX_RULE_NAME),
            "users": listed(users),
            "groups": listed(groups),
            "services": listed(services),
            "from": listed(walker.network),
            "not_users": listed(users),
            "not_services": listed(services),
            "not_groups": listed(groups),
            "not_from": listed(walker.network),
            "action": walker.choice(ACTIONS),
        },
    )
    if "action" not in fields:
        walker.problem(node, path, f"a rule needs an action: {', '.join(ACTIONS)}")
        raise _Invalid
    return Rule(
        name=fields.get("name", path),
        action=fields["action"],
        line=node.start_mark.line + 1,
        users=fields.get("users"),
        groups=fields.get("groups"),
        services=fields.get("services"),
        from_=fields.get("from"),
        not_users=fields.get("not_users"),
        not_services=fields.get("not_services"),
        not_groups=fields.get("not_groups"),
        not_from=fields.get("not_from"),
    )


def _rules(walker: _Walker, node: Node, path: str) -> tuple[Rule, ...]:
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return ()
    rules = walker.sequence(node, path, lambda n, p: _rule(walker, n, p))
    seen: dict[str, int] = {}
    for rule in rules:
        if rule.name in seen:
            walker.problems.append(
                Problem(
                    rule.line,
                    1,
                    path,
                    f"two rules are named {rule.name!r} (lines {seen[rule.name]} and {rule.line})",
                )
            )
        seen[rule.name] = rule.line
    return rules


def _issuer(walker: _Walker, node: Node, path: str) -> str:
    value = walker.string(node, path)
    if ":" in value or len(value) > 64 or not value.isprintable():
        walker.problem(node, path, "expected up to 64 printable characters without ':'")
        raise _Invalid
    return value


def parse(text: str, source: str = "policy.yaml") -> Policy:
    """Validate `text` whole; return the Policy or raise PolicyError with every problem."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_POLICY_BYTES:
        raise PolicyError(source, [Problem(1, 1, "", f"larger than {MAX_POLICY_BYTES} bytes")])
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = _brief(" ".join(filter(None, (exc.context, exc.problem))))
        raise PolicyError(
            source, [Problem(line, column, "", f"not valid YAML: {problem}")]
        ) from None
    except yaml.reader.ReaderError as exc:
        line, column = _position(text, exc.position)
        what = (
            f"the character U+{exc.character:04X}"
            if exc.encoding == "unicode"
            else f"the byte 0x{exc.character:02x}"
        )
        raise PolicyError(
            source, [Problem(line, column, "", f"not valid YAML: {what} is not allowed")]
        ) from None
    except yaml.YAMLError as exc:
        message = _brief(str(exc).splitlines()[0])
        raise PolicyError(source, [Problem(1, 1, "", f"not valid YAML: {message}")]) from None
    walker = _Walker()
    if root is None:
        return Policy(source=source)  # an empty file: every key takes its default
    try:
        policy = _policy(walker, root, source)
    except _Invalid:
        policy = None
    except _TooBig:
        walker.problems.append(Problem(1, 1, "", f"more than {MAX_NODES} values"))
        policy = None
    except RecursionError:
        walker.problems.append(Problem(1, 1, "", "nested too deeply"))
        policy = None
    if walker.problems or policy is None:
        raise PolicyError(source, walker.problems or [Problem(1, 1, "", "not a policy")])
    return policy


def _policy(walker: _Walker, root: Node, source: str) -> Policy:
    defaults = Policy()
    group_name = walker.name(_group_name, "group name")

    def group_list(node: Node, path: str) -> tuple[str, ...]:
        return walker.sequence(node, path, group_name)

    top = walker.mapping(
        root,
        "",
        {
            "issuer": lambda n, p: _issuer(walker, n, p),
            "totp": lambda n, p: _totp(walker, n, p),
            "default": walker.choice(ACTIONS),
            "rules": lambda n, p: _rules(walker, n, p),
            "enrollment": lambda n, p: walker.mapping(n, p, {"at_login": walker.boolean}),
            "recovery_codes": lambda n, p: walker.mapping(n, p, {"count": walker.integer(4, 20)}),
            "lockout": lambda n, p: _lockout(walker, n, p),
            "admins": lambda n, p: walker.mapping(
                n,
                p,
                {
                    "groups": lambda gn, gp: walker.sequence(
                        gn, gp, walker.name(_group_name, "group name")
                    )
                },
            ),
        },
    )
    totp_fields = top.get("totp", {})
    return Policy(
        source=source,
        issuer=top.get("issuer", defaults.issuer),
        totp=TotpParams(
            algorithm=totp_fields.get("algorithm", defaults.totp.algorithm),
            digits=totp_fields.get("digits", defaults.totp.digits),
            period=totp_fields.get("period", defaults.totp.period),
        ),
        window=totp_fields.get("window", defaults.window),
        default=top.get("default", defaults.default),
        rules=top.get("rules", ()),
        enrollment_at_login=top.get("enrollment", {}).get("at_login", defaults.enrollment_at_login),
        recovery_codes=top.get("recovery_codes", {}).get("count", defaults.recovery_codes),
        lockout=top.get("lockout", defaults.lockout),
        admin_groups=frozenset(top.get("admins", {}).get("groups", defaults.admin_groups)),
    )


def _totp(walker: _Walker, node: Node, path: str) -> dict[str, Any]:
    return walker.mapping(
        node,
        path,
        {
            "algorithm": walker.choice(tuple(ALGORITHMS)),
            "digits": walker.integer(v.MIN_DIGITS, v.MAX_DIGITS),
            "period": walker.duration(v.MIN_PERIOD, v.MAX_PERIOD),
            "window": walker.integer(0, MAX_WINDOW),
        },
    )


def _lockout(walker: _Walker, node: Node, path: str) -> LockoutPolicy:
    defaults = LockoutPolicy()
    fields = walker.mapping(
        node,
        path,
        {
            "after": walker.integer(1, 1000),
            "first": walker.duration(1, 86400),
            "max": walker.duration(1, 7 * 86400),
            "hard_after": walker.integer(1, 1_000_000),
            "forgive_within": walker.duration(0, 86400),
        },
    )
    after = fields.get("after", defaults.after)
    hard_after = fields.get("hard_after", defaults.hard_after)
    first = fields.get("first", defaults.first)
    maximum = fields.get("max", defaults.maximum)
    if hard_after < after:
        walker.problem(node, path, f"hard_after ({hard_after}) must not be below after ({after})")
        raise _Invalid
    if maximum < first:
        walker.problem(
            node,
            path,
            f"max ({_human(int(maximum))}) must not be below first ({_human(int(first))})",
        )
        raise _Invalid
    return LockoutPolicy(
        after=after,
        first=float(first),
        maximum=float(maximum),
        hard_after=hard_after,
        forgive_within=float(fields.get("forgive_within", defaults.forgive_within)),
    )


def load(path: str) -> Policy:
    """Read and validate a policy file; PolicyError for its content, OSError for the file."""
    with open(path, "rb") as policy_file:
        data = policy_file.read(MAX_POLICY_BYTES + 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PolicyError(path, [Problem(line, 1, "", "not valid UTF-8")]) from None
    return parse(text, path)
