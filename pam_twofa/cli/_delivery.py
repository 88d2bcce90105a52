"""Handing a person their secrets: the set-up screen, its confirmation, recovery codes.

twofactl (for any account) and twofa (for one's own) show the same screen as a login's
first set-up does (the words are in pam_twofa.display), confirm a new key on the
terminal there and then, and deliver new recovery codes the same way: printed, or
written to a private file that was opened before the codes were made, so that codes
nobody saw never replace working ones.
"""

from __future__ import annotations

import getpass
import sys
from typing import Any

from .. import display
from ..client import Client, RequestFailed
from . import _common
from .asuser import Person
from .files import PrivateFile


def show_enrollment(data: dict[str, Any], intro: list[str] | None = None) -> None:
    """The set-up screen: QR code, the key in groups of four, and the URI to paste.

    `intro`: the lines above it, where they are not a first set-up's (a device added).
    """
    print("\n".join(display.enrollment_intro() if intro is None else intro))
    print()
    print("\n".join(display.enrollment_details(data)))


def show_recovery_codes(codes: list[str]) -> None:
    print("\n".join(display.recovery_codes(codes)))


def on_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def confirm_interactively(
    client: Client,
    user: str,
    tries: int = 3,
    *,
    device: str | None = None,
    prompt: str = "Enter the code from the app to confirm: ",
) -> dict[str, Any] | None:
    """Ask for a code from the app until one confirms the pending key (or tries run out).

    `device`: the pending device the code is from (None: the account's one pending key).
    """
    for attempt in range(1, tries + 1):
        try:
            code = getpass.getpass(prompt)
        except EOFError:
            return None
        try:
            return client.request("enroll.confirm", user=user, code=code, device=device)
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


def regenerate_recovery_codes(
    client: Client, target: PrivateFile | None, *, as_json: bool, user: str, code: str | None
) -> int:
    """`recovery-codes --regenerate`: new codes for `user`, to `target` or printed.

    With --json and no file, the codes themselves are the output; with a file, only
    how many there are and where they went.
    """
    data = _renew(client, target, user=user, code=code)
    if as_json and target is None:
        _common.print_json(data)
        return 0
    where = _deliver(data["recovery_codes"], target)
    if as_json:
        _common.print_json(
            {"user": user, "recovery_codes": len(data["recovery_codes"]), "output": where}
        )
    return 0


def _renew(client: Client, target: PrivateFile | None, **fields: Any) -> dict[str, Any]:
    """Ask for new codes; if that fails, the file opened for them goes too."""
    try:
        return client.request("recovery.regenerate", **fields)
    except BaseException:
        if target is not None:
            target.discard()
        raise


def _deliver(codes: list[str], target: PrivateFile | None) -> str:
    """Print the codes, or write them to their private .txt file; say where they went."""
    if target is None:
        show_recovery_codes(codes)
        return "printed"
    target.commit("\n".join(display.recovery_codes(codes)) + "\n")
    print(f"Recovery codes written to {target.path} (mode 0600).")
    return target.path
