"""`twofa`: a person's own two-step verification, set up and managed from their shell."""

from __future__ import annotations

import argparse
import getpass
import os
import pwd
import sys

from . import _cli
from .client import Client


def _me() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def _ask_code(prompt: str) -> str:
    if not sys.stdin.isatty():
        raise SystemExit(_cli.fail("twofa", "a code is needed; run this on a terminal"))
    return getpass.getpass(prompt)


def _status(client: Client, args: argparse.Namespace) -> int:
    data = client.request("status", user=_me())
    if args.json:
        _cli.print_json(data)
        return 0
    print(f"Two-step verification for {data['user']}: {data['state']}")
    if data["state"] == "active":
        print(
            f"  enrolled {_cli.when(data.get('enrolled_at'))}, "
            f"last login {_cli.when(data.get('last_success'))}"
        )
        print(f"  recovery codes left: {data.get('recovery_codes_left')}")
        print(f"  lock: {_cli.lock_text(data)}")
    return 0


def _enroll(client: Client, args: argparse.Namespace) -> int:
    user = _me()
    data = client.request("enroll.begin", user=user)
    if args.json:
        _cli.print_json({k: data[k] for k in ("user", "secret", "uri", "qr")})
        return 0
    _cli.show_enrollment(data)
    print()
    for attempt in range(3):
        code = _ask_code("Enter the code from your app to confirm: ")
        try:
            confirmed = client.request("enroll.confirm", user=user, code=code)
        except _cli.RequestFailed as exc:
            if exc.code != "invalid_code" or attempt == 2:
                raise
            print("That code does not match; try the next one.", file=sys.stderr)
            continue
        print("Two-step verification is now active.")
        _cli.show_recovery_codes(confirmed["recovery_codes"])
        return 0
    return 1


def _disable(client: Client, args: argparse.Namespace) -> int:
    code = args.code or _ask_code("Current verification code: ")
    data = client.request("disable", user=_me(), code=code)
    if args.json:
        _cli.print_json(data)
    else:
        print("Two-step verification is off for your account.")
    return 0


def _recovery_codes(client: Client, args: argparse.Namespace) -> int:
    code = args.code or _ask_code("Current verification code: ")
    data = client.request("recovery.regenerate", user=_me(), code=code)
    if args.json:
        _cli.print_json(data)
    else:
        _cli.show_recovery_codes(data["recovery_codes"])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twofa",
        description="Set up and manage two-step verification for your own account.",
        epilog="example: twofa enroll",
    )
    _cli.add_common_options(parser)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(
        name: str, handler: _cli.Command, help: str, example: str
    ) -> argparse.ArgumentParser:
        return _cli.add_command(commands, name, handler, help, example)

    command("status", _status, "show whether two-step verification is on", "twofa status")
    command("enroll", _enroll, "set up your authenticator app", "twofa enroll")
    sub = command("disable", _disable, "switch two-step verification off", "twofa disable")
    sub.add_argument("--code", help="a current code (asked for if not given)")
    sub = command(
        "recovery-codes",
        _recovery_codes,
        "replace your recovery codes with new ones",
        "twofa recovery-codes",
    )
    sub.add_argument("--code", help="a current code (asked for if not given)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return _cli.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
