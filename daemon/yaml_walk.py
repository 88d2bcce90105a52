"""Walking YAML nodes by hand: each value checked where it stands, every problem kept.

PyYAML's own loading would give plain values and lose where they were; the walker
takes the composed nodes, so a problem says its line, column and path, an unknown key
is caught, and one wrong value does not hide the next.  The loader bounds what a file
can make the daemon do (depth, node count) before any of it is walked.  The policy's
schema, which says what each key must hold, is policy_file's.
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

from pam_twofa.errors import ProtocolError

from .policy import LOCAL, Network

MAX_NODES = 20_000  # bounds the walk, whatever aliases may multiply
MAX_DEPTH = 32  # collections inside collections; a policy needs five
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


class Invalid(Exception):
    """One value is wrong; the walker records it and carries on with the rest."""


class Walker:
    """Converts nodes to values, recording a Problem for each one that does not fit.

    Each converter raises Invalid after recording, so its caller skips that value and
    goes on; TooBig ends the walk of a file with more than MAX_NODES values.
    """

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
            raise TooBig
        if not isinstance(node, ScalarNode):
            self.problem(node, path, f"expected a single value, not a {_kind(node)}")
            raise Invalid
        try:
            return self._constructor.construct_object(node)
        except ConstructorError as exc:
            self.problem(node, path, f"unreadable value: {brief(exc.problem)}")
            raise Invalid from None
        except Exception:
            # SafeConstructor trusts a scalar that looks like its type, or is tagged as
            # one: a date that is none (2020-13-45), `!!int abc`, `!!bool maybe`, more
            # digits than int() reads.  Each fails with whatever its conversion raises.
            what = node.tag.rsplit(":", 1)[-1]
            self.problem(node, path, f"unreadable value: {show(node.value)} is not a valid {what}")
            raise Invalid from None

    def mapping(
        self, node: Node, path: str, schema: dict[str, Callable[[Node, str], Any]]
    ) -> dict[str, Any]:
        """Check a mapping's keys against `schema` and convert each value it has."""
        self._visited += 1
        if not isinstance(node, MappingNode):
            if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
                return {}
            self.problem(node, path, f"expected a mapping of {', '.join(schema)}")
            raise Invalid
        result: dict[str, Any] = {}
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            where = f"{path}.{key}" if path else str(key)
            if key not in schema:
                self.problem(
                    key_node, path, f"unknown key {show(key)}; expected one of {', '.join(schema)}"
                )
                continue
            if key in seen:
                self.problem(key_node, path, f"{show(key)} is given twice")
                continue
            seen.add(key)
            try:
                result[key] = schema[key](value_node, where)
            except Invalid:
                continue
        return result

    def sequence(self, node: Node, path: str, item: Callable[[Node, str], Any]) -> tuple[Any, ...]:
        """A list; a single value stands for a list of one."""
        self._visited += 1
        if isinstance(node, ScalarNode):
            return (item(node, f"{path}[0]"),)
        if not isinstance(node, SequenceNode):
            self.problem(node, path, "expected a list")
            raise Invalid
        values = []
        failed = False
        for index, child in enumerate(node.value):
            try:
                values.append(item(child, f"{path}[{index}]"))
            except Invalid:
                failed = True
        if failed:
            raise Invalid
        return tuple(values)

    # --- typed values ------------------------------------------------------------

    def string(self, node: Node, path: str) -> str:
        value = self.scalar(node, path)
        if not isinstance(value, str) or not value:
            self.problem(node, path, f"expected text, not {show(value)}")
            raise Invalid
        return value

    def label(self, limit: int) -> Callable[[Node, str], str]:
        """A name shown in messages and replies: one printable line, bounded."""

        def convert(node: Node, path: str) -> str:
            value = self.string(node, path)
            if len(value) > limit or not value.isprintable():
                self.problem(node, path, f"expected 1 to {limit} printable characters on one line")
                raise Invalid
            return value

        return convert

    def choice(self, options: tuple[str, ...]) -> Callable[[Node, str], str]:
        def convert(node: Node, path: str) -> str:
            value = self.scalar(node, path)
            if value not in options:
                self.problem(node, path, f"{show(value)} is not one of {', '.join(options)}")
                raise Invalid
            return str(value)

        return convert

    def integer(self, low: int, high: int) -> Callable[[Node, str], int]:
        def convert(node: Node, path: str) -> int:
            value = self.scalar(node, path)
            if type(value) is not int or not low <= value <= high:
                self.problem(
                    node, path, f"expected a whole number from {low} to {high}, not {show(value)}"
                )
                raise Invalid
            return value

        return convert

    def boolean(self, node: Node, path: str) -> bool:
        value = self.scalar(node, path)
        if not isinstance(value, bool):
            self.problem(node, path, f"expected true or false, not {show(value)}")
            raise Invalid
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
                    f"{show(value)} is not a duration; write it with a unit: 30s, 15m, 1h",
                )
                raise Invalid
            hours, minutes, seconds = (int(g or 0) for g in match.groups())
            total = hours * 3600 + minutes * 60 + seconds
            if not low <= total <= high:
                self.problem(
                    node, path, f"{show(value)} is out of range ({human(low)} to {human(high)})"
                )
                raise Invalid
            return total

        return convert

    def name(self, check: Callable[[object, str], str], what: str) -> Callable[[Node, str], str]:
        def convert(node: Node, path: str) -> str:
            value = self.scalar(node, path)
            try:
                return check(value, path)
            except ProtocolError:
                self.problem(node, path, f"{show(value)} is not a valid {what}")
                raise Invalid from None

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
                    node, path, f"{show(value)} has host bits set; did you mean {network}?"
                )
            else:
                self.problem(node, path, f"{show(value)} is not an IP network (or '{LOCAL}')")
            raise Invalid from None
        return _unmapped(network)


_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _unmapped(network: Network) -> Network:
    """::ffff:10.0.0.0/104 as 10.0.0.0/8: remote addresses are matched as IPv4 too."""
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED):
        mapped = network.network_address.ipv4_mapped
        assert mapped is not None
        return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
    return network


class TooBig(Exception):
    pass


class Loader(yaml.SafeLoader):
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


def show(value: object, limit: int = 60) -> str:
    """A value quoted for a message, shortened: errors must fit in one reply."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def brief(message: str | None, limit: int = 160) -> str:
    """One of PyYAML's messages, shortened: they quote a tag or an alias whole."""
    text = message or ""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def position(text: str, offset: int) -> tuple[int, int]:
    """Line and column, from 1, of the character at `offset`."""
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "mapping"
    return "list" if isinstance(node, SequenceNode) else "value"


def human(seconds: int) -> str:
    if seconds == 0:
        return "0s"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"
