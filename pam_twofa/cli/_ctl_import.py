"""`twofactl import`: secrets that google-authenticator or pam_oath left behind.

migrate.py reads and parses the old files (with each person's rights, for their own);
this sends each account's entry to twofad and reports, one line an account, what became
of it: imported, unchanged (that key is already in use), or skipped with the reason.
"""

from __future__ import annotations

import argparse

from ..client import Client, RequestFailed
from . import _common, migrate
from ._common import Command, Group, arg


def _import(client: Client, args: argparse.Namespace) -> int:
    """Bring over secrets from google-authenticator or pam_oath; report each account."""
    report: list[dict[str, object]] = []
    if args.source == "google-authenticator":
        users = args.users or migrate.users_with_google_authenticator(args.home_root)
        entries = []
        for user in users:
            try:
                entries.append(migrate.read_google_authenticator(user, args.home_root))
            except migrate.Unusable as exc:
                report.append({"user": user, "result": "skipped", "reason": str(exc)})
    else:
        try:
            entries, skipped = migrate.read_oath(args.file)
        except migrate.Unusable as exc:
            return _common.fail("twofactl", f"cannot import: {exc}")
        report += [{"user": who, "result": "skipped", "reason": why} for who, why in skipped]
    for entry in entries:
        # the device is named after its source: "google-authenticator" or "oath"
        report.append(_import_one(client, entry, args.replace, device=args.source))
    if args.json:
        _common.print_json(report)
    else:
        for row in report:
            reason = f": {row['reason']}" if row.get("reason") else ""
            print(f"{row['user']}: {row['result']}{reason}")
    imported = sum(1 for row in report if row["result"] == "imported")
    unchanged = sum(1 for row in report if row["result"] == "unchanged")
    if not args.json:
        left_out = len(report) - imported - unchanged
        print(
            f"{imported} imported, {unchanged} unchanged, {left_out} skipped. "
            "The old files are untouched."
        )
    return 0 if imported or unchanged or not report else 1


def _import_one(
    client: Client, entry: migrate.Entry, replace: bool, *, device: str
) -> dict[str, object]:
    """One account's key as its device, named after where it came from (its source)."""
    try:
        data = client.request(
            "import",
            user=entry.user,
            secret=entry.secret,
            algorithm=entry.algorithm,
            digits=entry.digits,
            period=entry.period,
            recovery_codes=entry.recovery_codes,
            window=entry.window,
            used_step=entry.used_step,
            replace=replace or None,
            device=device,
        )
    except RequestFailed as exc:
        reason = (
            exc.message
            if exc.code != "already_enrolled"
            else "already enrolled with another key (--replace to take this one)"
        )
        return {"user": entry.user, "result": "skipped", "reason": reason}
    if data.get("unchanged"):
        return {"user": entry.user, "result": "unchanged", "reason": "this key is already in use"}
    notes = "; ".join(entry.notes)
    row: dict[str, object] = {
        "user": entry.user,
        "result": "imported",
        "recovery_codes": data["recovery_codes"],
    }
    if notes:
        row["reason"] = notes
    return row


REPLACE = arg("--replace", action="store_true", help="overwrite users already enrolled")

COMMANDS = (
    Group(
        "import",
        "bring over secrets from google-authenticator or pam_oath",
        "Import secrets phones already have; the old files are not touched.",
        ("twofactl import google-authenticator alice bob", "twofactl import oath /etc/users.oath"),
        "source",
        (
            Command(
                "google-authenticator",
                _import,
                "import ~/.google_authenticator files (TOTP; scratch codes become recovery codes)",
                "twofactl import google-authenticator alice bob"
                "   (no USER: every account with a file)",
                (
                    arg("users", nargs="*", metavar="USER", help="default: every user with a file"),
                    arg(
                        "--home-root",
                        metavar="DIR",
                        help="read DIR/USER/.google_authenticator instead of each account's home "
                        "directory (homes restored from a backup, say)",
                    ),
                    REPLACE,
                ),
                {"source": "google-authenticator"},
            ),
            Command(
                "oath",
                _import,
                "import a pam_oath users.oath file (HOTP/T30 and HOTP/T60 lines)",
                "twofactl import oath /etc/users.oath",
                (arg("file", metavar="FILE"), REPLACE),
                {"source": "oath"},
            ),
        ),
    ),
)
