"""Policy files: a valid policy's shape, bent, written out in every YAML style.

A policy is first built as a Python structure from the real schema (issuer, totp,
default, rules, enrollment, recovery_codes, lockout, admins) with mostly sensible
values, then bent (any value in any place, misspelt keys), then written as YAML with
random styles (block and flow, plain, quoted, literal and folded scalars), anchors and
aliases (also to a node's own ancestor), tags (standard, unknown, verbatim, unsafe),
merge keys and repeated keys.  Some inputs are whole documents of their own kind: a
billion-laughs expansion, deep nesting, several documents, directives, huge numbers,
odd dates, or the shipped config/policy.yaml with some of its lines changed.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from . import values

ACTIONS = ("required", "optional", "exempt")
TOP_KEYS = (
    "issuer",
    "totp",
    "default",
    "rules",
    "enrollment",
    "recovery_codes",
    "lockout",
    "admins",
)
RULE_KEYS = (
    "name",
    "users",
    "groups",
    "services",
    "from",
    "not_users",
    "not_services",
    "not_groups",
    "not_from",
    "action",
)
NETWORKS = (
    "10.0.0.0/8",
    "192.168.1.0/24",
    "127.0.0.1/32",
    "local",
    "::1/128",
    "2001:db8::/32",
    "::ffff:10.0.0.0/104",
    "::ffff:0:0/96",
    "10.0.0.1/8",
    "300.0.0.0/8",
    "10.0.0.0/33",
    "fe80::/10",
    "0.0.0.0/0",
    "::/0",
    "10.0.0.0",
    "localhost",
)
GROUPS = ("sudo", "wheel", "admins", "domain admins", "staff", "CORP\\admins", "a:b", "a,b", " x")
DURATIONS = ("30s", "15m", "1h", "1h30m", "90s", "0s", "2h", "7d", "1m1s", "30", "s", "1H")
TAGS = (
    "!!str",
    "!!int",
    "!!float",
    "!!bool",
    "!!null",
    "!!timestamp",
    "!!binary",
    "!!set",
    "!!omap",
    "!!pairs",
    "!!seq",
    "!!map",
    "!!merge",
    "!!value",
    "!local",
    "!",
    "!<tag:yaml.org,2002:str>",
    "!<tag:yaml.org,2002:int>",
    "!<!bar>",
    "!!python/object/apply:os.system",
    "!!python/name:os.system",
    "!e%F0%9F%98%80",
    "!%00",
)
ODD_SCALARS = (
    "~",
    "null",
    "Null",
    "",
    "yes",
    "No",
    "on",
    "OFF",
    "y",
    "true",
    "False",
    ".inf",
    "-.Inf",
    ".nan",
    "0x1F",
    "0o17",
    "0b101",
    "017",
    "1_000",
    "+12",
    "1:30",
    "190:20:30",
    "1.5e3",
    "2001-12-14",
    "2001-12-14t21:59:43.10-05:00",
    "2020-13-45",
    "2020-02-30",
    "2020-1-1 25:61:61",
    "9999-12-31T23:59:60Z",
    "0000-01-01",
    "=",
    "<<",
    "!",
    "&",
    "*",
    "|",
    ">",
    "%",
    "@",
    "`",
    "- x",
    "a: b",
    "#",
)
SHIPPED = Path(__file__).resolve().parents[2] / "config" / "policy.yaml"
_shipped_lines: list[str] | None = None


# --- the structure -------------------------------------------------------------------


def _scalar(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.3:
        return rng.choice(ODD_SCALARS)
    if roll < 0.5:
        return rng.choice(values.INTERESTING_INTS)
    if roll < 0.55:
        return _Plain(values.huge_digits(rng))
    if roll < 0.6:
        return rng.random() < 0.5
    if roll < 0.65:
        return None
    return values.text(rng, 20)


def _anything(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 2 or roll < 0.7:
        return _scalar(rng)
    if roll < 0.85:
        return [_anything(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {str(_scalar(rng)): _anything(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def _names(rng: random.Random, pool: tuple[str, ...]) -> Any:
    names = [rng.choice(pool) if rng.random() < 0.8 else values.text(rng, 12) for _ in range(3)]
    roll = rng.random()
    if roll < 0.2:
        return names[0]  # a single value stands for a list of one
    if roll < 0.25:
        return []
    return names[: rng.randint(1, 3)]


def _rule(rng: random.Random, index: int) -> dict[str, Any]:
    rule: dict[str, Any] = {"action": rng.choice(ACTIONS)}
    if rng.random() < 0.7:
        rule["name"] = rng.choice((f"rule-{index}", "admins", "office", values.text(rng, 70)))
    pools = {
        "users": ("root", "alice", "bob", "jo.doe@corp", "CORP\\jo", "-x", "a/b"),
        "groups": GROUPS,
        "services": ("sshd", "login", "su", "sudo", "cockpit", "-x", "a b"),
        "from": NETWORKS,
    }
    for key in RULE_KEYS[1:-1]:
        if rng.random() < 0.3:
            rule[key] = _names(rng, pools[key.removeprefix("not_")])
    return rule


def policy_structure(rng: random.Random) -> dict[str, Any]:
    """The keys of a policy with plausible values: valid more often than not."""
    builders = {
        "issuer": lambda: rng.choice(("%h", "ACME", "a:b", "x" * 65, values.text(rng, 30))),
        "totp": lambda: {
            key: builder()
            for key, builder in {
                "algorithm": lambda: rng.choice(("SHA1", "SHA256", "SHA512", "sha1", "MD5")),
                "digits": lambda: rng.choice((6, 7, 8, 5, 9, "6")),
                "period": lambda: rng.choice(DURATIONS + (30, "30s")),
                "window": lambda: rng.choice((0, 1, 10, 11, -1)),
            }.items()
            if rng.random() < 0.6
        },
        "default": lambda: rng.choice(ACTIONS + ("Required", "none")),
        "rules": lambda: [_rule(rng, i) for i in range(rng.randint(0, 5))],
        "enrollment": lambda: {"at_login": rng.choice((True, False, "yes", 1, None))},
        "recovery_codes": lambda: {"count": rng.choice((4, 8, 20, 3, 21, "8"))},
        "lockout": lambda: {
            key: builder()
            for key, builder in {
                "after": lambda: rng.choice((1, 5, 1000, 0, 1001)),
                "first": lambda: rng.choice(DURATIONS),
                "max": lambda: rng.choice(DURATIONS + ("168h", "169h")),
                "hard_after": lambda: rng.choice((1, 100, 1_000_000, 1_000_001, 2)),
            }.items()
            if rng.random() < 0.6
        },
        "admins": lambda: {"groups": _names(rng, GROUPS)},
    }
    return {key: builders[key]() for key in TOP_KEYS if rng.random() < 0.5}


def bend(rng: random.Random, node: Any, depth: int = 0) -> Any:
    """Replace, drop or misspell a few things anywhere in the structure."""
    if isinstance(node, dict) and node and depth < 4:
        node = dict(node)
        for _ in range(rng.randint(1, 2)):
            key = rng.choice(list(node))
            roll = rng.random()
            if roll < 0.3:
                node[key] = _anything(rng)
            elif roll < 0.4:
                node[values.mutate_text(rng, str(key))] = node.pop(key)
            elif roll < 0.45:
                node[_scalar(rng) if rng.random() < 0.3 else values.text(rng, 8)] = _scalar(rng)
            else:
                node[key] = bend(rng, node[key], depth + 1)
        return node
    if isinstance(node, list) and node and depth < 4:
        node = list(node)
        index = rng.randrange(len(node))
        node[index] = bend(rng, node[index], depth + 1) if rng.random() < 0.7 else _anything(rng)
        return node
    return _anything(rng)


# --- YAML text -----------------------------------------------------------------------


class _Plain(str):
    """Written as it is, unquoted."""


class _Writer:
    """Writes a structure as YAML with random styles, anchors, aliases and tags."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.anchors: list[str] = []
        self.fancy = rng.random() < 0.3  # anchors, tags, merge keys in this document

    def prefix(self) -> tuple[str, str | None]:
        """A tag and anchor to put before a node, and maybe an alias to write instead."""
        rng = self.rng
        if not self.fancy:
            return "", None
        if self.anchors and rng.random() < 0.05:
            return "", "*" + rng.choice(self.anchors)
        if rng.random() < 0.01:
            return "", "*undefined"
        parts = []
        if rng.random() < 0.05:
            parts.append(rng.choice(TAGS))
        if rng.random() < 0.08:
            name = f"a{len(self.anchors)}"
            self.anchors.append(name)  # before the children: an alias may point up
            parts.append("&" + name)
        return ("".join(part + " " for part in parts)), None

    def scalar(self, value: Any) -> str:
        rng = self.rng
        if isinstance(value, _Plain):
            return str(value)
        if value is None:
            return rng.choice(("null", "~", ""))
        if isinstance(value, bool):
            return (
                rng.choice(("true", "True", "yes", "on")) if value else rng.choice(("false", "no"))
            )
        if isinstance(value, int):
            return str(value) if rng.random() < 0.9 else rng.choice((hex(value), f"{value:_}"))
        text = str(value)
        roll = rng.random()
        if roll < 0.5:
            return text  # plain: whatever that makes of it
        if roll < 0.7:
            return "'" + text.replace("'", "''") + "'"
        if roll < 0.95:
            return '"' + "".join(_double_quoted(char, rng) for char in text) + '"'
        return rng.choice(("|", ">", "|-", ">+", "|2")) + "\n  " + text.replace("\n", "\n  ")

    def inline(self, value: Any) -> str:
        tag, alias = self.prefix()
        if alias is not None:
            return alias
        if isinstance(value, dict):
            pairs = [f"{self.inline(key)}: {self.inline(item)}" for key, item in value.items()]
            if self.fancy and self.anchors and self.rng.random() < 0.05:
                pairs.append("<<: *" + self.rng.choice(self.anchors))
            return tag + "{" + ", ".join(pairs) + "}"
        if isinstance(value, list):
            return tag + "[" + ", ".join(self.inline(item) for item in value) + "]"
        return tag + self.scalar(value)

    def block(self, value: Any, indent: int) -> list[str]:
        """Lines for `value` at `indent`; the caller has written the key or dash."""
        pad = " " * indent
        rng = self.rng
        lines: list[str] = []
        if isinstance(value, dict):
            if self.fancy and self.anchors and rng.random() < 0.05:
                lines.append(f"{pad}<<: *{rng.choice(self.anchors)}")
            for key, item in value.items():
                lines.extend(self.entry(f"{pad}{self.inline(key)}:", item, indent))
            if value and rng.random() < 0.01:
                lines.extend(lines[-1:])  # the last key again
        elif isinstance(value, list):
            for item in value:
                lines.extend(self.entry(f"{pad}-", item, indent))
        else:
            lines.append(pad + self.inline(value))
        return lines

    def entry(self, head: str, item: Any, indent: int) -> list[str]:
        if not isinstance(item, dict | list) or not item or self.rng.random() < 0.3:
            return [f"{head} {self.inline(item)}"]
        tag, alias = self.prefix()
        if alias is not None:
            return [f"{head} {alias}"]
        step = self.rng.choice((2, 2, 2, 4, 1)) if not head.endswith("-") else 2
        return [f"{head} {tag}".rstrip(), *self.block(item, indent + step)]


def _double_quoted(char: str, rng: random.Random) -> str:
    code = ord(char)
    if char in '"\\':
        return "\\" + char
    if code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF or rng.random() < 0.02:
        if code <= 0xFF:
            return rng.choice((f"\\x{code:02x}", f"\\u{code:04x}"))
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return char


def write(rng: random.Random, structure: Any) -> str:
    writer = _Writer(rng)
    if rng.random() < 0.15:
        return writer.inline(structure) + "\n"
    return "\n".join(writer.block(structure, 0)) + "\n"


# --- documents of their own kind -----------------------------------------------------


def billion_laughs(rng: random.Random) -> str:
    """Each level an alias list of the one before: 9**9 values if expanded."""
    width = rng.choice((3, 9, 10))
    levels = rng.choice((4, 9, 12))
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        aliases = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} [{aliases}]")
    top = f"*a{levels - 1}"
    where = rng.choice((f"admins: {{groups: {top}}}", f"rules: {top}", f"issuer: {top}"))
    if rng.random() < 0.5:
        lines = [
            f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width) if i else 'lol'}]"
            for i in range(levels)
        ]
        lines = [line.replace(f"x{i}:", "- ", 1) for i, line in enumerate(lines)]
        return "rules:\n" + "\n".join("  " + line for line in lines) + f"\n{where}\n"
    return "\n".join(lines) + f"\n{where}\n"


def deeply_nested(rng: random.Random) -> str:
    depth = rng.choice((50, 100, 300, 1000, 2000, 5000, 20000))
    kind = rng.random()
    if kind < 0.25:
        return "rules: " + "[" * depth + "]" * depth + "\n"
    if kind < 0.45:
        return "admins: " + "{a: " * depth + "x" + "}" * depth + "\n"
    if kind < 0.6:
        return "rules:\n  " + "- " * depth + "x\n"
    if kind < 0.75:
        depth = min(depth, 300)  # block mappings take depth²/2 characters of indentation
        return "".join(" " * i + "a:\n" for i in range(depth)) + " " * depth + "x\n"
    if kind < 0.85:
        return "rules: [" + "{groups: [" * depth + "\n"  # never closed
    return "? " * depth + "x\n"


def _shipped(rng: random.Random) -> str:
    """The shipped policy with a few lines dropped, repeated, swapped or mutated."""
    global _shipped_lines
    if _shipped_lines is None:
        _shipped_lines = SHIPPED.read_text().splitlines()
    lines = list(_shipped_lines)
    if rng.random() < 0.7:  # uncomment the examples, to reach the rules
        lines = [
            line.replace("# ", "", 1)
            if line.lstrip().startswith("# ") and rng.random() < 0.5
            else line
            for line in lines
        ]
    for _ in range(rng.randint(1, 4)):
        index = rng.randrange(len(lines))
        roll = rng.random()
        if roll < 0.25:
            del lines[index]
        elif roll < 0.5:
            lines.insert(index, lines[rng.randrange(len(lines))])
        elif roll < 0.75:
            lines[index] = values.mutate_text(rng, lines[index])
        else:
            other = rng.randrange(len(lines))
            lines[index], lines[other] = lines[other], lines[index]
    return "\n".join(lines) + "\n"


def _huge(rng: random.Random) -> str:
    """One thing as large as the file may be: a value, key, tag, anchor or alias.

    Whatever an error message quotes of it must still fit in one reply.
    """
    size = rng.choice((1000, 15_000, 40_000, 48 * 1024 - 20, 48 * 1024 + 1))
    piece = rng.choice(("x", "%01", "%F0%9F%98%80", "\\x01", "é"))
    body = piece * (size // len(piece.encode()))
    kind = rng.random()
    if kind < 0.2:
        return f"issuer: {body}\n"
    if kind < 0.4:
        return f"issuer: !{body} x\n"
    if kind < 0.5:
        return f"issuer: !<{body}> x\n"
    if kind < 0.6:
        return f"issuer: &{'a' * (size - 20)} x\n"
    if kind < 0.7:
        return f"issuer: *{'a' * (size - 20)}\n"
    if kind < 0.8:
        return f"{body}: 1\n"
    if kind < 0.9:
        return f'issuer: "{body}"\n'
    return "".join(f"k{i}{piece * 20}: !{piece * 20} 1\n" for i in range(size // 200))


def _special(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.2:
        return billion_laughs(rng)
    if roll < 0.4:
        return deeply_nested(rng)
    if roll < 0.5:
        first = write(rng, policy_structure(rng))
        return (
            first
            + rng.choice(("---\n", "...\n", "--- |\n  x\n"))
            + write(rng, policy_structure(rng))
        )
    if roll < 0.6:
        directive = rng.choice(
            (
                "%YAML 1.1",
                "%YAML 1.2",
                "%YAML 2.0",
                "%YAML 1.1\n%YAML 1.1",
                "%TAG ! tag:example.com,2000:",
                "%TAG !e! tag:e,1:",
                "%FOO bar",
            )
        )
        return directive + "\n---\n" + write(rng, policy_structure(rng))
    if roll < 0.7:
        key = rng.choice(
            ("recovery_codes:\n  count", "lockout:\n  after", "totp:\n  digits", "default")
        )
        return f"{key}: {rng.choice(ODD_SCALARS + (values.huge_digits(rng),))}\n"
    if roll < 0.75:
        return _huge(rng)
    if roll < 0.8:
        return rng.choice(("\ufeff", "\t", "\x00", "\r", " ")) + write(rng, policy_structure(rng))
    if roll < 0.85:
        return write(rng, policy_structure(rng)).replace("  ", "\t", 1)
    if roll < 0.9:
        return "".join(values.any_char(rng) for _ in range(rng.randint(1, 200)))
    return _shipped(rng)


def policy_text(rng: random.Random, *, small: bool = False) -> str:
    """A policy file of any kind; `small` keeps it cheap enough to send a lot of."""
    roll = rng.random()
    if roll < 0.1 and not small:
        text = _special(rng)
    else:
        structure = policy_structure(rng)
        if rng.random() < 0.5:
            structure = bend(rng, structure)
        text = write(rng, structure)
    if rng.random() < 0.15:
        text = values.mutate_text(rng, text)
    if rng.random() < 0.03:
        text = text[: rng.randint(0, len(text))]
    return text
