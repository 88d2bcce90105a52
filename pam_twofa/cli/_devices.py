"""`device list|add|rename|remove`: an account's named devices, for twofa and twofactl.

Both commands send the same requests and print the same things; a `Side` says what
differs between them: whose account it is (the caller's, or USER's), how the proof is
had (asked for on the terminal, or --code), and how a command to run next is spelled.
A name is checked here before any code is asked for, so a typo costs nothing, and each
refusal about devices ends with what to do about it, on the same one line.
"""

from __future__ import annotations

import argparse
import functools
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import protocol as p
from ..client import Client, RequestFailed
from ..vocabulary import MAX_DEVICE_NAME, MAX_DEVICES, PENDING
from . import _common, _delivery
from ._common import Arg, Command, Group, arg


@dataclass(frozen=True)
class Side:
    """What twofa and twofactl do differently with the same device requests."""

    prog: str
    user: Callable[[argparse.Namespace], str]
    proof: Callable[[argparse.Namespace], str | None]  # a current code, or None (no proof)
    names_user: bool  # its commands take the account's name (twofactl's USER)
    add_keys: tuple[str, ...]  # what `device add --json` prints, as its enroll --json does

    def command(self, args: argparse.Namespace, head: str, tail: str = "") -> str:
        """A command for the person to run next: prog, head, USER where it goes, tail."""
        words = [self.prog, head]
        if self.names_user:
            words.append(shlex.quote(self.user(args)))
        if tail:
            words.append(tail)
        return " ".join(words)


def checked_name(value: str) -> str:
    """A device's name as the daemon will take it (NFC), or a one-line refusal."""
    try:
        return p.validate_device_name(value, f"the device name {value!r}")
    except p.BadRequest as exc:
        raise RequestFailed(exc.code, exc.message) from None


def request(
    side: Side, client: Client, args: argparse.Namespace, op: str, **fields: Any
) -> dict[str, Any]:
    """`client.request`, whose refusals about devices also say what to do next."""
    try:
        return client.request(op, **fields)
    except RequestFailed as exc:
        hint = _hint(side, args, exc.code)
        if hint is None:
            raise
        raise RequestFailed(exc.code, f"{exc.message}; {hint}") from None


def _hint(side: Side, args: argparse.Namespace, code: str) -> str | None:
    if code == p.UNKNOWN_DEVICE:
        return f"see `{side.command(args, 'device list')}`"
    if code == p.DEVICE_EXISTS:
        return "choose another name (a name is the same in capitals or small letters)"
    if code == p.TOO_MANY_DEVICES:
        return f"remove one first: `{side.command(args, 'device remove', 'NAME')}`"
    if code == p.LAST_DEVICE:  # the daemon's message already says why and what instead
        add = side.command(args, "device add", "NAME")
        return f"the commands: `{side.command(args, 'disable')}`, `{add}`"
    return None


def confirm_command(side: Side, args: argparse.Namespace, device: str) -> str:
    return side.command(args, f"confirm --device {shlex.quote(device)}", "CODE")


def state_text(device: dict[str, Any]) -> str:
    if device.get("state") != PENDING:
        return str(device.get("state"))
    return "pending (replaces every other)" if device.get("renews") else "pending"


def print_devices(devices: list[dict[str, Any]], indent: str = "") -> None:
    """The devices as a table: name, state, when added, when last used."""
    rows = [("NAME", "STATE", "ADDED", "LAST USED")]
    for device in devices:
        rows.append(
            (
                str(device["name"]),
                state_text(device),
                _common.when(device.get("added_at")),
                _common.when(device.get("last_used")),
            )
        )
    _common.print_table(rows, indent)


# --- the handlers, one per command; `Side` comes first, bound by `group` --------------


def _list(side: Side, client: Client, args: argparse.Namespace) -> int:
    data = request(side, client, args, "device.list", user=side.user(args))
    if args.json:
        _common.print_json(data)
        return 0
    devices = data["devices"]
    print(f"Devices of {data['user']}: {len(devices)} of at most {data['max_devices']}")
    if devices:
        print_devices(devices, "  ")
    return 0


def _add(side: Side, client: Client, args: argparse.Namespace) -> int:
    """A new pending device: its key shown, then confirmed with a code it shows."""
    user = side.user(args)
    name = checked_name(args.name)
    code = side.proof(args)
    data = request(side, client, args, "device.add", user=user, device=name, code=code)
    device = str(data["device"])
    if args.json:
        _common.print_json({key: data[key] for key in side.add_keys})
        return 0
    _delivery.show_enrollment(
        data,
        intro=[
            f"Two-step verification: a new device, {device}, for {user}.",
            "Scan the QR code with its authenticator app, or type in the key. The other "
            "devices keep working; this one's codes work once it is confirmed.",
        ],
    )
    print()
    confirm = confirm_command(side, args, device)
    if not _delivery.on_terminal():
        print(f"Then confirm it with a code it shows: {confirm}")
        return 0
    confirmed = _delivery.confirm_interactively(
        client, user, device=device, prompt=f"Enter the code {device} shows, to confirm it: "
    )
    if confirmed is None:
        return _common.fail(side.prog, f"not confirmed; {device} stays pending until: {confirm}")
    print(f"{device} is now active: its codes log in, as the other devices' do.")
    return 0


def _rename(side: Side, client: Client, args: argparse.Namespace) -> int:
    old, new = checked_name(args.old), checked_name(args.new)
    data = request(
        side, client, args, "device.rename", user=side.user(args), device=old, new_name=new
    )
    if args.json:
        _common.print_json(data)
    else:
        print(f"{data['renamed_from']} is now called {data['device']}.")
    return 0


def _remove(side: Side, client: Client, args: argparse.Namespace) -> int:
    user = side.user(args)
    name = checked_name(args.name)
    code = side.proof(args)
    data = request(side, client, args, "device.remove", user=user, device=name, code=code)
    if args.json:
        _common.print_json(data)
        return 0
    left = data["devices_left"]
    print(f"{data['removed']} is removed; its codes no longer log in ({left} active left).")
    return 0


def group(
    side: Side, account: tuple[Arg, ...], proof: tuple[Arg, ...], examples: tuple[str, ...]
) -> Group:
    """The `device` command of `side`: `account` names whose (twofactl's USER), `proof`
    the arguments that carry a code (--code)."""
    prefix = f"{side.prog} device"
    user = " alice" if side.names_user else ""

    def bound(handler: Callable[[Side, Client, argparse.Namespace], int]) -> _common.Handler:
        return functools.partial(handler, side)

    name = arg("name", metavar="NAME", help="the device's name, as `device list` shows it")
    return Group(
        "device",
        "list, add, rename or remove the devices (phones, tablets, keys) that make codes",
        f"An account has up to {MAX_DEVICES} devices, each with its own key: a code from "
        "any of them logs in. On one's own account, adding or removing one needs a current "
        "code from any of them, or a recovery code.",
        examples,
        "command",
        (
            Command(
                "list",
                bound(_list),
                "list the devices: name, state, when added, when last used",
                f"{prefix} list{user}",
                account,
            ),
            Command(
                "add",
                bound(_add),
                "add a device with a key of its own; confirm it with a code it shows",
                f"{prefix} add{user} tablet",
                (
                    *account,
                    arg("name", metavar="NAME", help=f"a name (1-{MAX_DEVICE_NAME} characters)"),
                    *proof,
                ),
            ),
            Command(
                "rename",
                bound(_rename),
                "give a device another name (its key stays the same)",
                f"{prefix} rename{user} phone 'old phone'",
                (*account, arg("old", metavar="OLD"), arg("new", metavar="NEW")),
            ),
            Command(
                "remove",
                bound(_remove),
                "remove a device (a lost phone): its codes stop working; not the last one",
                f"{prefix} remove{user} phone",
                (*account, name, *proof),
            ),
        ),
    )
