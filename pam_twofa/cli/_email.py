"""`email`: the address codes by email go to, for twofa and twofactl.

A person proves their address: `twofa email set ADDRESS` (with a current code) mails a
code to it, `twofa email confirm CODE` makes it the account's.  An administrator is
trusted: `twofactl email USER ADDRESS` sets it at once; `twofactl email test ADDRESS`
sends a test message through the mailer (an account called `test` has its address set
by `twofa email set`, as its owner).  An address is checked here before
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


def _ctl_email(client: Client, args: argparse.Namespace) -> int:
    """`twofactl email USER ADDRESS`, `USER --remove`, or `test ADDRESS`."""
    if args.user == "test" and args.address is not None and not args.remove:
        return _ctl_test(client, args.address, args)
    if args.remove:
        if args.address is not None:
            return _common.fail(
                "twofactl", "--remove takes the user only: twofactl email USER --remove"
            )
        data = client.request("email.remove", user=args.user)
        gone = data.get("removed")
        words = f"{gone} removed from {args.user}." if gone else "No address was set."
        return _said(data, args, words)
    if args.address is None:
        return _common.fail(
            "twofactl", "give the address (twofactl email USER ADDRESS), or --remove"
        )
    address = checked_address(args.address)
    data = client.request("email.set", user=args.user, address=address, code=args.code)
    if "pending" in data:  # one's own account: a code was mailed to prove it
        return _said(data, args, f"A code was mailed to {address}: twofa email confirm CODE")
    return _said(data, args, f"Codes by email for {args.user} now go to {data['email']}.")


def _ctl_test(client: Client, address: str, args: argparse.Namespace) -> int:
    checked = checked_address(address)
    data = client.request("email.test", address=checked)
    return _said(data, args, f"A test message to {checked} was handed to the relay.")


COMMANDS = (
    Command(
        "email",
        _ctl_email,
        "set or remove a user's address for codes by email, or send a test message "
        "(twofactl email USER ADDRESS | USER --remove | test ADDRESS)",
        "twofactl email alice alice@example.org",
        (
            arg("user", metavar="USER", help="the account (or `test`, to send a test message)"),
            arg("address", metavar="ADDRESS", nargs="?", help="where its codes by email go"),
            arg("--remove", action="store_true", help="remove USER's address"),
            arg("--code", help="a current code, for your own account"),
        ),
    ),
)
