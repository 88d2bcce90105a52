"""`twofa`: a person's own two-step verification, set up and managed from their shell.

Every request names the caller's own account; the daemon checks, from the socket's
peer credentials, that it really is theirs. Anything that could weaken the account
(a new key, a device added or removed, a key shown again, new recovery codes, switching
off) needs a current code. The `device` commands are shared with twofactl (_devices).
"""

from __future__ import annotations

import argparse
import getpass
import os
import pwd
import sys
from typing import Any

from ..client import Client
from ..vocabulary import ACTIVE, PENDING
from . import _common, _delivery, _devices, _email
from ._common import Command, arg

# What a set-up's --json prints: the key, its URI, its QR code as terminal text and as
# an image (a data: URI, for the web console's page).
SETUP_KEYS = ("user", "device", "secret", "uri", "qr", "qr_image")


def _me() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def _current_code(args: argparse.Namespace) -> str:
    """The code given with --code, or asked for on the terminal."""
    if args.code:
        return str(args.code)
    if not sys.stdin.isatty():
        raise SystemExit(
            _common.fail("twofa", "a current code is needed: give --code or use a terminal")
        )
    return getpass.getpass("Current verification code (or a recovery code): ")


def _status(client: Client, args: argparse.Namespace) -> int:
    data = client.request("status", user=_me())
    if args.json:
        _common.print_json(data)
        return 0
    state = {"enabled": "on", "locked": "on, locked"}.get(data["state"], "off")
    print(f"Two-step verification for {data['user']}: {state}")
    if data.get("required"):
        print(f"  required by the policy (rule {data['rule']!r})")
    if data["enrollment"] == ACTIVE:
        enrolled = _common.when(data.get("enrolled_at"))
        last = _common.when(data.get("last_success"))
        if data.get("last_host") and data.get("last_success"):
            last += f" on {data['last_host']}"
        print(f"  enrolled {enrolled}, last login {last}")
        print(f"  recovery codes left: {data.get('recovery_codes_left')}")
        print(f"  lock: {_common.lock_text(data)}")
        for line in _email.address_lines(data):
            print(line)
        if data.get("devices"):
            print("  devices:")
            _devices.print_devices(data["devices"], "    ")
    elif data["enrollment"] == PENDING:
        print("  a set-up was started but not confirmed: run `twofa enroll`")
    return 0


def _enroll(client: Client, args: argparse.Namespace) -> int:
    user = _me()
    device = _devices.checked_name(args.device) if args.device else None
    code = _current_code(args) if args.replace else None
    data = client.request(
        "enroll.begin", user=user, replace=args.replace or None, code=code, device=device
    )
    if args.json:
        _common.print_json({key: data[key] for key in SETUP_KEYS})
        return 0
    _delivery.show_enrollment(data)
    print()
    if not _delivery.on_terminal():
        confirm = "twofa confirm CODE"
        if device or args.replace:  # another device may be pending: say which
            confirm = _devices.confirm_command(SIDE, args, str(data["device"]))
        print(f"Add the key to your app, then switch it on with: {confirm}")
        return 0
    confirmed = _delivery.confirm_interactively(client, user, device=data.get("device"))
    if confirmed is None:
        return _common.fail("twofa", "not confirmed; nothing was switched on")
    return _activated(confirmed, args)


def _confirm(client: Client, args: argparse.Namespace) -> int:
    """The second half of an enrollment, or of `device add`, where no code could be asked."""
    device = _devices.checked_name(args.device) if args.device else None
    confirmed = _devices.request(
        SIDE, client, args, "enroll.confirm", user=_me(), code=args.code, device=device
    )
    return _activated(confirmed, args)


def _activated(confirmed: dict[str, Any], args: argparse.Namespace) -> int:
    """A confirmation's outcome; recovery codes come only with an account's first key."""
    codes = confirmed.get("recovery_codes")
    if args.json:
        shown = {key: confirmed.get(key) for key in ("user", "device", "state")}
        if codes is not None:
            shown["recovery_codes"] = codes
        _common.print_json(shown)
        return 0
    if codes is None:
        print(f"{confirmed.get('device')} is now active: its codes log in.")
        return 0
    print("Two-step verification is now active.")
    _delivery.show_recovery_codes(codes)
    return 0


def _show_qr(client: Client, args: argparse.Namespace) -> int:
    device = _devices.checked_name(args.device) if args.device else None
    data = _devices.request(
        SIDE, client, args, "secret.show", user=_me(), code=_current_code(args), device=device
    )
    if args.json:
        _common.print_json({key: data[key] for key in SETUP_KEYS})
        return 0
    name = data.get("device") or device
    print(f"The key of {name} again, to set it up anew on that same device.")
    print("(Another device gets a key of its own: twofa device add NAME.)")
    print()
    _delivery.show_enrollment(data)
    return 0


def _recovery_codes(client: Client, args: argparse.Namespace) -> int:
    target = _delivery.open_recovery_file(args.output)  # before the old codes are gone
    code = _current_code(args)
    return _delivery.regenerate_recovery_codes(
        client, target, as_json=args.json, user=_me(), code=code
    )


def _disable(client: Client, args: argparse.Namespace) -> int:
    data = client.request("disable", user=_me(), code=_current_code(args))
    if args.json:
        _common.print_json(data)
    else:
        print("Two-step verification is off for your account.")
    return 0


def _resync(client: Client, args: argparse.Namespace) -> int:
    data = client.request("resync", user=_me(), code1=args.code1, code2=args.code2)
    if args.json:
        _common.print_json(data)
    elif data["result"] == "accepted":
        print("Your phone's clock offset is recorded; codes from it work again.")
    else:
        print(f"{data['result']}: enter two codes in a row, as the app shows them")
    return 0 if data["result"] == "accepted" else 1


CODE = arg("--code", help="a current code (asked for on the terminal if not given)")
SIDE = _devices.Side(
    "twofa",
    user=lambda args: _me(),
    proof=_current_code,
    names_user=False,
    add_keys=SETUP_KEYS,
)

COMMANDS = (
    Command("status", _status, "show whether two-step verification is on", "twofa status"),
    Command(
        "enroll",
        _enroll,
        "set up your authenticator app",
        "twofa enroll",
        (
            arg(
                "--replace",
                action="store_true",
                help="replace your key, and every other device (needs a current code)",
            ),
            arg("--device", metavar="NAME", help="the device's name (default: phone)"),
            CODE,
        ),
    ),
    Command(
        "confirm",
        _confirm,
        "switch on the key `twofa enroll` or `twofa device add` showed, with a code from it",
        "twofa confirm --device tablet 123456",
        (
            arg("code", metavar="CODE"),
            arg("--device", metavar="NAME", help="the new device (needed if several are pending)"),
        ),
    ),
    Command(
        "show-qr",
        _show_qr,
        "show a device's own key again, to set it up anew on that device "
        "(another device: twofa device add)",
        "twofa show-qr --device phone",
        (arg("--device", metavar="NAME", help="which device (needed if you have several)"), CODE),
    ),
    Command(
        "recovery-codes",
        _recovery_codes,
        "replace your recovery codes with new ones",
        "twofa recovery-codes --regenerate --output ~/recovery-codes.txt",
        (
            arg(
                "--regenerate",
                action="store_true",
                required=True,
                help="required: replace the codes",
            ),
            arg("--output", metavar="FILE", help="write them to FILE (.txt, mode 0600)"),
            CODE,
        ),
    ),
    Command("disable", _disable, "switch two-step verification off", "twofa disable", (CODE,)),
    Command(
        "resync",
        _resync,
        "if your phone's clock is off: give two codes in a row",
        "twofa resync 123456 654321",
        (arg("code1"), arg("code2")),
    ),
    _email.user_group(_me, _current_code),
    _devices.group(
        SIDE,
        (),
        (CODE,),
        (
            "twofa device list",
            "twofa device add tablet",
            "twofa device rename phone 'old phone'",
            "twofa device remove 'old phone'",
        ),
    ),
)


def build_parser() -> argparse.ArgumentParser:
    parser, commands = _common.new_parser(
        "twofa", "Set up and manage two-step verification for your own account.", "twofa enroll"
    )
    _common.add_commands(commands, COMMANDS)
    return parser


def main(argv: list[str] | None = None) -> int:
    return _common.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
