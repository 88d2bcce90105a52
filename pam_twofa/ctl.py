"""`twofactl`: the administrator's command for twofad (root or an admins group member)."""

from __future__ import annotations

import argparse
import sys

from . import _cli
from .client import Client

VERIFY_EXIT = {"accepted": 0}


def _enroll(client: Client, args: argparse.Namespace) -> int:
    data = client.request("enroll.begin", user=args.user)
    if args.json:
        _cli.print_json(
            {
                key: data[key]
                for key in (
                    "user",
                    "secret",
                    "uri",
                    "qr",
                    "issuer",
                    "algorithm",
                    "digits",
                    "period",
                )
            }
        )
        return 0
    _cli.show_enrollment(data)
    print()
    print(f"Then confirm with: twofactl confirm {args.user} CODE")
    return 0


def _confirm(client: Client, args: argparse.Namespace) -> int:
    data = client.request("enroll.confirm", user=args.user, code=args.code)
    if args.json:
        _cli.print_json({"user": data["user"], "recovery_codes": data["recovery_codes"]})
        return 0
    print(f"Two-step verification is now active for {args.user}.")
    _cli.show_recovery_codes(data["recovery_codes"])
    return 0


def _verify(client: Client, args: argparse.Namespace) -> int:
    data = client.request(
        "verify", user=args.user, code=args.code, service=args.service, rhost=args.rhost
    )
    result = data["result"]
    if args.json:
        _cli.print_json(data)
    elif result == "locked":
        print(f"{args.user}: locked ({_cli.lock_text({'locked': True, **data})})")
    else:
        print(f"{args.user}: {result}")
    return VERIFY_EXIT.get(result, 1)


def _status(client: Client, args: argparse.Namespace) -> int:
    if args.users:
        statuses = [client.request("status", user=user) for user in args.users]
    else:
        statuses = client.request("list")["users"]
    if args.json:
        _cli.print_json(statuses if not args.users or len(args.users) > 1 else statuses[0])
        return 0
    rows = [("USER", "STATE", "ENROLLED", "LAST LOGIN", "FAILURES", "LOCK")]
    for s in statuses:
        rows.append(
            (
                s["user"],
                s["state"] + (" (renewal pending)" if s.get("renewal_pending") else ""),
                _cli.when(s.get("enrolled_at")),
                _cli.when(s.get("last_success")),
                str(s.get("failures", 0)),
                _cli.lock_text(s),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def _disable(client: Client, args: argparse.Namespace) -> int:
    data = client.request("disable", user=args.user)
    if args.json:
        _cli.print_json(data)
    else:
        print(
            f"Two-step verification is off for {args.user}; "
            "their secret and recovery codes are gone."
        )
    return 0


def _unlock(client: Client, args: argparse.Namespace) -> int:
    data = client.request("unlock", user=args.user)
    if args.json:
        _cli.print_json(data)
    else:
        print(f"{args.user} is unlocked; the failure count is back to 0.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twofactl",
        description="Manage two-step verification for the accounts on this machine.",
        epilog="example: twofactl status",
    )
    _cli.add_common_options(parser)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(
        name: str, handler: _cli.Command, help: str, example: str
    ) -> argparse.ArgumentParser:
        return _cli.add_command(commands, name, handler, help, example)

    sub = command(
        "enroll", _enroll, "start setting up a user: new key, QR code", "twofactl enroll alice"
    )
    sub.add_argument("user")
    sub = command(
        "confirm",
        _confirm,
        "finish a set-up with a code from the app; prints recovery codes",
        "twofactl confirm alice 123456",
    )
    sub.add_argument("user")
    sub.add_argument("code")
    sub = command(
        "verify",
        _verify,
        "check a code as a login would (root only); consumes it",
        "twofactl verify alice 123456",
    )
    sub.add_argument("user")
    sub.add_argument("code")
    sub.add_argument("--service", help="PAM service to report (for the log)")
    sub.add_argument("--rhost", help="remote host to report (for the log)")
    sub = command(
        "status", _status, "show users' state, last login and locks", "twofactl status alice"
    )
    sub.add_argument("users", nargs="*", metavar="USER")
    sub = command(
        "disable",
        _disable,
        "switch two-step verification off for a user (e.g. a lost phone)",
        "twofactl disable alice",
    )
    sub.add_argument("user")
    sub = command("unlock", _unlock, "lift a lock-out after failed codes", "twofactl unlock alice")
    sub.add_argument("user")
    return parser


def main(argv: list[str] | None = None) -> int:
    return _cli.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
