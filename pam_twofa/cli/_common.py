"""What twofactl and twofa share: their parsers, running a command, and its output.

The common options (--socket, --json) before or after a command's name; commands
written as data (Command, Group, arg: a name, a handler, a help line, an example and
the arguments), which add_commands turns into argparse subcommands; one line and exit 1
for every failure, never a traceback; JSON, tables and times as both print them. What
they hand a person (the set-up screen, recovery codes) is in _delivery.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..client import Client, ClientError, RequestFailed, default_socket_path
from ..vocabulary import DEFAULT_SOCKET
from .files import FileRefused

Handler = Callable[[Client, argparse.Namespace], int]


def add_common_options(parser: argparse.ArgumentParser, *, sub: bool = False) -> None:
    """--socket and --json, accepted before or after the command name.

    On a subcommand the defaults are suppressed, or they would overwrite what was
    given before the command name.
    """
    parser.add_argument(
        "--socket",
        default=argparse.SUPPRESS if sub else None,
        metavar="PATH",
        help=f"twofad's socket (default: $TWOFA_SOCKET or {DEFAULT_SOCKET})",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if sub else False,
        help="print data as JSON",
    )


def new_parser(prog: str, description: str, example: str) -> tuple[argparse.ArgumentParser, Any]:
    """A command's parser with the common options, and the set its subcommands go in."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, epilog=f"example: {example}"
    )
    add_common_options(parser)
    return parser, parser.add_subparsers(title="commands", metavar="COMMAND")


def add_command(
    commands: Any, name: str, handler: Handler, help: str, example: str
) -> argparse.ArgumentParser:
    """A subcommand with its own --help, an example, and the common options."""
    sub: argparse.ArgumentParser = commands.add_parser(
        name, help=help, description=help, epilog=f"example: {example}"
    )
    add_common_options(sub, sub=True)
    sub.set_defaults(command=handler)
    return sub


def add_group(
    commands: Any, name: str, help: str, description: str, examples: Sequence[str], kind: str
) -> Any:
    """A command holding commands of its own, and the set they go in.

    Named without one of them, it prints its own help (see `run`). `kind` names what
    follows it in the usage line: "command" gives COMMAND under the title "commands".
    """
    group: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help,
        description=description,
        epilog="examples: " + "\n          ".join(examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    group.set_defaults(help_parser=group)
    return group.add_subparsers(title=f"{kind}s", metavar=kind.upper())


# --- commands as data: each command module lists its own; add_commands builds them ------


@dataclass(frozen=True)
class Arg:
    """One argument of a command, as argparse.add_argument takes it (see `arg`)."""

    names: tuple[str, ...]
    options: dict[str, Any]


def arg(*names: str, **options: Any) -> Arg:
    return Arg(names, options)


@dataclass(frozen=True)
class Command:
    """A subcommand: what runs it, its help line, an example, and its arguments."""

    name: str
    handler: Handler
    help: str
    example: str
    args: tuple[Arg, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Group:
    """A command holding commands of its own (`twofactl policy check`).

    Named without one of them, it prints its own help (exit 2) rather than failing.
    """

    name: str
    help: str
    description: str
    examples: tuple[str, ...]
    kind: str  # what follows the group's name: "command" shows COMMAND, titled "commands"
    commands: tuple[Command, ...]


def add_commands(commands: Any, table: Iterable[Command | Group]) -> None:
    """Put every command of `table` in a parser's set, in the table's order (that of --help)."""
    for entry in table:
        if isinstance(entry, Group):
            inner = add_group(
                commands, entry.name, entry.help, entry.description, entry.examples, entry.kind
            )
            add_commands(inner, entry.commands)
            continue
        sub = add_command(commands, entry.name, entry.handler, entry.help, entry.example)
        if entry.defaults:
            sub.set_defaults(**entry.defaults)
        for argument in entry.args:
            sub.add_argument(*argument.names, **argument.options)


def request_all_pages(client: Client, op: str, key: str, **fields: Any) -> dict[str, Any]:
    """A listing the daemon sends a page at a time, as one reply with every entry in `key`.

    Each page is bounded so that it fits in one protocol message; its ``next`` names
    where the following page starts.
    """
    entries: list[Any] = []
    cursor = None
    while True:
        reply = client.request(op, after=cursor, **fields)
        entries += reply[key]
        cursor = reply.get("next")
        if cursor is None:
            reply[key] = entries
            reply.pop("next", None)
            return reply


def run(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Parse, run the chosen command, and turn every failure into one line and exit 1."""
    args = parser.parse_args(argv)
    command: Handler | None = getattr(args, "command", None)
    if command is None:  # a command group named without its subcommand says what it has
        getattr(args, "help_parser", parser).print_help(sys.stderr)
        return 2
    try:
        codes_from_stdin(args)
    except ValueError as exc:
        return fail(parser.prog, str(exc))
    try:
        with Client(args.socket or default_socket_path()) as client:
            return command(client, args)
    except RequestFailed as exc:
        if "\n" in exc.message:  # a list of problems, such as a policy's errors
            problems = exc.message.splitlines()
            summary = f"{len(problems)} problems [{exc.code}]"
            return fail(parser.prog, summary + "".join(f"\n  {line}" for line in problems))
        return fail(parser.prog, f"{exc.message} [{exc.code}]")
    except ClientError as exc:
        return fail(parser.prog, str(exc))
    except FileRefused as exc:
        return fail(parser.prog, str(exc))
    except KeyboardInterrupt:
        return fail(parser.prog, "interrupted")


CODE_ARGUMENTS = ("code", "code1", "code2")


def codes_from_stdin(args: argparse.Namespace) -> None:
    """Each code given as `-` is read from standard input, one line each, in the order
    of the command line: a program driving the command (the web console's page) keeps
    codes out of the argument list, which every local user can read in /proc.
    """
    for name in CODE_ARGUMENTS:
        if getattr(args, name, None) != "-":
            continue
        line = sys.stdin.readline(256)
        if not line.endswith("\n") and len(line) == 256:
            raise ValueError("a code on standard input is one short line")
        if not line.strip():
            raise ValueError("a code was to be read from standard input, which had none")
        setattr(args, name, line.strip())


def fail(prog: str, reason: str) -> int:
    print(f"{prog}: {reason}", file=sys.stderr)
    return 1


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


def print_table(rows: Sequence[tuple[str, ...]], indent: str = "") -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print(indent + "  ".join(cells).rstrip())


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(timestamp).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M")


def lock_text(status: dict[str, Any]) -> str:
    if status.get("hard_locked"):
        return "locked until unlocked by an administrator"
    if status.get("locked"):
        return f"locked ({status.get('retry_after')} s left)"
    return "-"
