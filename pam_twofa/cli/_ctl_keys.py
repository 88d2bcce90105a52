"""twofactl's commands on the key ring: `keys new` and `keys reseal`.

A fleet's hosts share the keys its secrets are sealed with.  Replacing one: make a new
key file (`keys new`), copy it to every host's older-keys directory and restart them
(each can now open what the new key seals), make it each host's current key (the old
one moves to older-keys), then `keys reseal` once from any host; when it reports
nothing left under the old key, remove the old key file everywhere.  Logins go on
throughout.  The key file itself is written here, with the standard library; only the
daemon ever reads one.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..client import Client
from . import _common
from ._common import Command, Group, arg

KEY_BYTES = 32


def _new(client: Client, args: argparse.Namespace) -> int:
    """A new random key, in a file made mode 0400 that must not exist yet."""
    try:
        fd = os.open(args.file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o400)
    except FileExistsError:
        return _common.fail("twofactl", f"{args.file} exists already; a new key needs a new file")
    except OSError as exc:
        return _common.fail("twofactl", f"cannot create {args.file}: {exc.strerror}")
    with os.fdopen(fd, "wb") as key_file:
        key_file.write(os.urandom(KEY_BYTES))
        key_file.flush()
        os.fsync(key_file.fileno())
    if args.json:
        _common.print_json({"file": args.file})
    else:
        print(f"New key in {args.file} (mode 0400). Copy it to every host's older-keys")
        print("directory first; make it the current key (--key-file) once all have it.")
    return 0


def _reseal(client: Client, args: argparse.Namespace) -> int:
    """Every secret sealed again under the current key, a page of accounts at a time."""
    totals = {"accounts": 0, "resealed": 0}
    unreadable: list[str] = []
    older_codes: list[str] = []
    after = None
    while True:
        page = client.request("keys.reseal", after=after)
        for name in totals:
            totals[name] += page[name]
        unreadable += page["unreadable"]
        older_codes += page["recovery_codes_under_older_keys"]
        if not args.json and sys.stderr.isatty():
            print(f"\r{totals['accounts']} accounts...", end="", file=sys.stderr)
        after = page.get("next")
        if after is None:
            break
    report = {
        "key": page["key"],
        "ring": page["ring"],
        **totals,
        "unreadable": unreadable,
        "recovery_codes_under_older_keys": older_codes,
    }
    if args.json:
        _common.print_json(report)
        return 1 if unreadable else 0
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(f"Current key {report['key']}; ring: {', '.join(report['ring'])}.")
    print(f"{totals['resealed']} of {totals['accounts']} accounts sealed again.")
    if unreadable:
        print(
            f"Not readable with this host's ring ({len(unreadable)}), left as they are: "
            + ", ".join(unreadable)
        )
        print("Add the key they were sealed with to older-keys, restart, and run this again.")
    if older_codes:
        print(
            f"Recovery codes made under an older key ({len(older_codes)} accounts): they "
            "work while that key is in the ring; new ones (twofactl recovery-codes USER "
            "--regenerate) replace them: " + ", ".join(older_codes)
        )
    if not unreadable and not older_codes:
        print("Nothing depends on an older key now: its file can be removed from every host.")
    return 1 if unreadable else 0


COMMANDS = (
    Group(
        "keys",
        "the key ring: a new key, and every secret sealed again under the current one",
        "The key ring: a new key, and every secret sealed again under the current one.",
        ("twofactl keys new /root/twofad-2027.key", "twofactl keys reseal"),
        "command",
        (
            Command(
                "new",
                _new,
                "write a new random key to FILE (mode 0400), to add to every host's ring",
                "twofactl keys new /root/twofad-2027.key",
                (arg("file", metavar="FILE"),),
            ),
            Command(
                "reseal",
                _reseal,
                "seal every secret again under the current key, so an older one can go",
                "twofactl keys reseal",
                (),
            ),
        ),
    ),
)
