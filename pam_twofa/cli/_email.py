"""`email`: the address codes by email go to, for twofa and twofactl.

A person proves their address: `twofa email set ADDRESS` (with a current code) mails a
code to it, `twofa email confirm CODE` makes it the account's.  An administrator is
trusted: `twofactl email set USER ADDRESS` sets it at once; `twofactl email test
ADDRESS` sends a test message through the mailer.  An address is checked here before
any code is asked for, so a typo costs nothing.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from .. import protocol as p
from ..client import Client, RequestFailed
from . import _common
from ._common import Command, Group, arg


def checked_address(value: str) -> str:
    try:
        return p.validate_email_address(value, f"the address {value!r}")
    except p.BadRequest as exc:
        raise RequestFailed(exc.code, exc.message) from None


def address_lines(status: dict[str, Any], indent: str = "  ") -> list[str]:
    """What status says of the address: the proven one, and one being proven."""
    lines = []
    if status.get("email"):
        lines.append(f"{indent}codes by email go to: {status['email']}")
    if status.get("email_pending"):
        lines.append(f"{indent}being confirmed: {status['email_pending']} (twofa email confirm)")
    return lines


def _said(data: dict[str, Any], args: argparse.Namespace, words: str) -> int:
    if args.json:
        _common.print_json(data)
    else:
        print(words)
    return 0


# --- twofa: one's own account -----------------------------------------------------


def user_group(me: Callable[[], str], proof: Callable[[argparse.Namespace], str]) -> Group:
    code = arg("--code", help="a current code (asked for on the terminal if not given)")

    def set_address(client: Client, args: argparse.Namespace) -> int:
        address = checked_address(args.address)
        data = client.request("email.set", user=me(), address=address, code=proof(args))
        minutes = max(1, int(data.get("expires_in", 600)) // 60)
        return _said(
            data,
            args,
            f"A code was mailed to {address}. Confirm the address within {minutes} minutes "
            "with: twofa email confirm CODE",
        )

    def confirm(client: Client, args: argparse.Namespace) -> int:
        data = client.request("email.confirm", user=me(), code=args.code)
        return _said(data, args, f"Codes by email now go to {data['email']}.")

    def remove(client: Client, args: argparse.Namespace) -> int:
        data = client.request("email.remove", user=me())
        gone = data.get("removed")
        return _said(data, args, f"{gone} removed." if gone else "No address was set.")

    return Group(
        "email",
        "set, confirm or remove the address codes by email go to",
        "Where the policy allows it, typing `email` at the prompt mails a code to this "
        "address. Setting one needs a current code, and the address is yours once the "
        "code mailed to it is confirmed.",
        ("twofa email set alice@example.org", "twofa email confirm 12345678"),
        "command",
        (
            Command(
                "set",
                set_address,
                "mail a confirmation code to ADDRESS (needs a current code)",
                "twofa email set alice@example.org",
                (arg("address", metavar="ADDRESS"), code),
            ),
            Command(
                "confirm",
                confirm,
                "make the address yours with the code mailed to it",
                "twofa email confirm 12345678",
                (arg("code", metavar="CODE"),),
            ),
            Command("remove", remove, "remove the address", "twofa email remove"),
        ),
    )


# --- twofactl: any account --------------------------------------------------------


def _ctl_set(client: Client, args: argparse.Namespace) -> int:
    address = checked_address(args.address)
    data = client.request("email.set", user=args.user, address=address, code=args.code)
    if "pending" in data:  # one's own: a code was mailed to prove it
        return _said(data, args, f"A code was mailed to {address}: twofa email confirm CODE")
    return _said(data, args, f"Codes by email for {args.user} now go to {data['email']}.")


def _ctl_remove(client: Client, args: argparse.Namespace) -> int:
    data = client.request("email.remove", user=args.user)
    gone = data.get("removed")
    return _said(data, args, f"{gone} removed from {args.user}." if gone else "No address was set.")


def _ctl_test(client: Client, args: argparse.Namespace) -> int:
    address = checked_address(args.address)
    data = client.request("email.test", address=address)
    return _said(data, args, f"A test message to {address} was handed to the relay.")


COMMANDS = (
    Group(
        "email",
        "set or remove a user's address for codes by email; send a test message",
        "An administrator sets a user's address at once (the user proves their own with "
        "twofa email set). `test` sends a message through the mailer (twofa-mailer) to "
        "check the relay.",
        (
            "twofactl email set alice alice@example.org",
            "twofactl email remove alice",
            "twofactl email test you@example.org",
        ),
        "command",
        (
            Command(
                "set",
                _ctl_set,
                "set USER's address",
                "twofactl email set alice alice@example.org",
                (
                    arg("user", metavar="USER"),
                    arg("address", metavar="ADDRESS"),
                    arg("--code", help="a current code, for your own account"),
                ),
            ),
            Command(
                "remove",
                _ctl_remove,
                "remove USER's address",
                "twofactl email remove alice",
                (arg("user", metavar="USER"),),
            ),
            Command(
                "test",
                _ctl_test,
                "send a test message to ADDRESS through the mailer",
                "twofactl email test you@example.org",
                (arg("address", metavar="ADDRESS"),),
            ),
        ),
    ),
)
