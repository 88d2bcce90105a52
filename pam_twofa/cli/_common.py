"""What twofactl and twofa share: the socket option, JSON output, and failing cleanly."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Callable
from typing import Any

from .. import display
from ..client import Client, ClientError, RequestFailed, default_socket_path
from .asuser import Person
from .files import FileRefused, PrivateFile

Command = Callable[[Client, argparse.Namespace], int]


def add_common_options(parser: argparse.ArgumentParser, *, sub: bool = False) -> None:
    """--socket and --json, accepted before or after the command name.

    On a subcommand the defaults are suppressed, or they would overwrite what was
    given before the command name.
    """
    parser.add_argument(
        "--socket",
        default=argparse.SUPPRESS if sub else None,
        metavar="PATH",
        help="twofad's socket (default: $TWOFA_SOCKET or /run/twofad/twofad.sock)",
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
    commands: Any, name: str, handler: Command, help: str, example: str
) -> argparse.ArgumentParser:
    """A subcommand with its own --help, an example, and the common options."""
    sub: argparse.ArgumentParser = commands.add_parser(
        name, help=help, description=help, epilog=f"example: {example}"
    )
    add_common_options(sub, sub=True)
    sub.set_defaults(command=handler)
    return sub


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
    command: Command | None = getattr(args, "command", None)
    if command is None:  # a command group named without its subcommand says what it has
        getattr(args, "help_parser", parser).print_help(sys.stderr)
        return 2
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


def fail(prog: str, reason: str) -> int:
    print(f"{prog}: {reason}", file=sys.stderr)
    return 1


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


def print_table(rows: list[tuple[str, ...]], indent: str = "") -> None:
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


def show_enrollment(data: dict[str, Any]) -> None:
    """The set-up screen: QR code, the key in groups of four, and the URI to paste."""
    print("\n".join(display.enrollment_intro()))
    print()
    print("\n".join(display.enrollment_details(data)))


def show_recovery_codes(codes: list[str]) -> None:
    print("\n".join(display.recovery_codes(codes)))


def on_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def confirm_interactively(client: Client, user: str, tries: int = 3) -> dict[str, Any] | None:
    """Ask for a code from the app until one confirms the pending key (or tries run out)."""
    import getpass

    for attempt in range(1, tries + 1):
        try:
            code = getpass.getpass("Enter the code from the app to confirm: ")
        except EOFError:
            return None
        try:
            return client.request("enroll.confirm", user=user, code=code)
        except RequestFailed as exc:
            if exc.code not in ("invalid_code", "bad_request") or attempt == tries:
                raise
            print("That code does not match; wait for the next one and try again.", file=sys.stderr)
    return None


def open_recovery_file(output: str | None, owner: Person | None = None) -> PrivateFile | None:
    """The file the codes will go to, opened before they are made (None: print them).

    `owner`: whose file it is (written with their rights); None, the caller's own.
    """
    return PrivateFile(output, owner) if output is not None else None


def renew_recovery_codes(
    client: Client, target: PrivateFile | None, **fields: Any
) -> dict[str, Any]:
    """Ask for new codes; if that fails, the file opened for them goes too."""
    try:
        return client.request("recovery.regenerate", **fields)
    except BaseException:
        if target is not None:
            target.discard()
        raise


def deliver_recovery_codes(codes: list[str], target: PrivateFile | None) -> str:
    """Print the codes, or write them to their private .txt file; say where they went."""
    if target is None:
        show_recovery_codes(codes)
        return "printed"
    target.commit("\n".join(display.recovery_codes(codes)) + "\n")
    print(f"Recovery codes written to {target.path} (mode 0600).")
    return target.path
