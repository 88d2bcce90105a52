"""`twofactl`: the administrator's command for twofad (root or an admins group member)."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from ..client import Client, RequestFailed
from . import _common, doctor, migrate
from .asuser import Person

VERIFY_EXIT = {"accepted": 0}
DEFAULT_POLICY = "/etc/twofa/policy.yaml"


ENROLLMENT_KEYS = ("user", "secret", "uri", "qr", "issuer", "algorithm", "digits", "period")


def _enroll(client: Client, args: argparse.Namespace) -> int:
    return _begin(client, args, replace=False)


def _reset(client: Client, args: argparse.Namespace) -> int:
    return _begin(client, args, replace=True, code=args.code)


def _begin(
    client: Client, args: argparse.Namespace, *, replace: bool, code: str | None = None
) -> int:
    """A new pending key: shown, and on a terminal confirmed there and then."""
    data = client.request("enroll.begin", user=args.user, replace=replace or None, code=code)
    if args.json:
        _common.print_json({key: data[key] for key in ENROLLMENT_KEYS})
        return 0
    _common.show_enrollment(data)
    print()
    if replace:
        print("The current key keeps working until this one is confirmed.")
    if not _common.on_terminal():
        print(f"Then confirm with: twofactl confirm {args.user} CODE")
        return 0
    confirmed = _common.confirm_interactively(client, args.user)
    if confirmed is None:
        return _common.fail("twofactl", "not confirmed; the new key stays pending")
    print(f"Two-step verification is now active for {args.user} with this key.")
    _common.show_recovery_codes(confirmed["recovery_codes"])
    return 0


def _confirm(client: Client, args: argparse.Namespace) -> int:
    data = client.request("enroll.confirm", user=args.user, code=args.code)
    if args.json:
        _common.print_json({"user": data["user"], "recovery_codes": data["recovery_codes"]})
        return 0
    print(f"Two-step verification is now active for {args.user}.")
    _common.show_recovery_codes(data["recovery_codes"])
    return 0


def _verify(client: Client, args: argparse.Namespace) -> int:
    data = client.request(
        "verify", user=args.user, code=args.code, service=args.service, rhost=args.rhost
    )
    result = data["result"]
    if args.json:
        _common.print_json(data)
    elif result == "locked":
        print(f"{args.user}: locked ({_common.lock_text({'locked': True, **data})})")
    else:
        print(f"{args.user}: {result}")
    return VERIFY_EXIT.get(result, 1)


STATE_NAMES = {
    "enabled": "Enabled",
    "disabled": "Disabled",
    "incomplete": "Incomplete",
    "locked": "Locked",
}


def _status(client: Client, args: argparse.Namespace) -> int:
    if args.users:
        statuses = [client.request("status", user=user) for user in args.users]
    else:
        statuses = _common.request_all_pages(client, "list", "users")["users"]
    if args.state:
        statuses = [s for s in statuses if s["state"] == args.state]
    if args.json:
        _common.print_json(statuses)
        return 0
    rows = [("USER", "STATE", "RULE", "ENROLLED", "LAST LOGIN", "FAILURES", "STRIKES", "LOCK")]
    for s in statuses:
        state = STATE_NAMES.get(s["state"], s["state"])
        if s.get("renewal_pending"):
            state += " (new key pending)"
        elif s.get("enrollment") == "pending":
            state += " (set-up pending)"
        rows.append(
            (
                s["user"],
                state,
                s.get("rule", "-"),
                _common.when(s.get("enrolled_at")),
                _common.when(s.get("last_success")),
                str(s.get("failures", 0)),
                _strikes(s),
                _common.lock_text(s),
            )
        )
    _common.print_table(rows)
    return 0


def _strikes(status: dict[str, object]) -> str:
    """The lifetime count against its limit, `3/100`: how close the hard lock is.

    FAILURES beside it is the count in a row, which a success resets and the back-off
    follows; strikes stay until an unlock or a new key (see lockout.hard_after).
    """
    if "strikes" not in status:
        return "-"
    return f"{status['strikes']}/{status.get('hard_after', '?')}"


def _reload(client: Client, args: argparse.Namespace) -> int:
    data = client.request("reload", force=args.force or None)
    if args.json:
        _common.print_json(data)
    else:
        forced = " (forced past the lock-out guard)" if data.get("forced") else ""
        print(f"Policy reloaded from {data['source']}: {data['rules']} rules{forced}.")
    return 0


def _policy_check(client: Client, args: argparse.Namespace) -> int:
    try:
        with open(args.file, encoding="utf-8") as policy_file:
            text = policy_file.read()
    except (OSError, UnicodeDecodeError) as exc:
        return _common.fail("twofactl", f"cannot read {args.file}: {exc}")
    report = _common.request_all_pages(
        client, "policy.check", "required", text=text, name=args.file
    )
    report["incomplete"] = [r["user"] for r in report["required"] if r["state"] == "incomplete"]
    if args.json:
        _common.print_json({"valid": True, **report})
        return 0
    print(f"{args.file}: valid, {report['rules']} rules.")
    required = report["required"]
    if not required:
        print("No account would be required to give a code.")
    else:
        print(f"{len(required)} account(s) would be required to give a code:")
        rows = [("USER", "STATE", "RULE")]
        rows += [(r["user"], STATE_NAMES.get(r["state"], r["state"]), r["rule"]) for r in required]
        _common.print_table(rows, indent="  ")
    if report["incomplete"]:
        print(
            "Not set up yet (incomplete): "
            + ", ".join(report["incomplete"])
            + ". They need an app before this policy lets them in."
        )
    if report.get("lockout_risk"):
        print(f"Warning: {report['lockout_risk']}")
    return 0


def _policy_explain(client: Client, args: argparse.Namespace) -> int:
    data = client.request(
        "policy.explain", user=args.user, service=args.service, rhost=getattr(args, "from")
    )
    if args.json:
        _common.print_json(data)
        return 0
    origin = f"from {data['rhost']}" if data.get("rhost") else "locally (no remote host)"
    rule = "the default" if data["rule"] == "default" else f"rule {data['rule']!r}"
    where = f", {data['line']}" if data.get("line") else ""
    print(f"{data['user']} via {data['service']} {origin}: {data['action']} ({rule}{where})")
    print(f"state: {STATE_NAMES.get(data['state'], data['state'])}")
    if not data.get("known"):
        print("note: no such account on this machine")
    return 0


def _recovery_codes(client: Client, args: argparse.Namespace) -> int:
    target = None
    if args.output:
        try:
            owner = Person.named(args.user)
        except KeyError:
            return _common.fail("twofactl", f"--output: {args.user} has no account to own the file")
        target = _common.open_recovery_file(args.output, owner)  # written as the user, see files
    data = _common.renew_recovery_codes(client, target, user=args.user, code=args.code)
    if args.json and target is None:
        _common.print_json(data)
        return 0
    where = _common.deliver_recovery_codes(data["recovery_codes"], target)
    if args.json:
        _common.print_json(
            {"user": args.user, "recovery_codes": len(data["recovery_codes"]), "output": where}
        )
    return 0


def _resync(client: Client, args: argparse.Namespace) -> int:
    data = client.request("resync", user=args.user, code1=args.code1, code2=args.code2)
    if args.json:
        _common.print_json(data)
    elif data["result"] == "accepted":
        print(f"{args.user}: clock offset set to {data['drift']} steps of the code period.")
    else:
        print(f"{args.user}: {data['result']}: no two consecutive codes within 10 minutes")
    return 0 if data["result"] == "accepted" else 1


def _disable(client: Client, args: argparse.Namespace) -> int:
    data = client.request("disable", user=args.user, code=args.code)
    if args.json:
        _common.print_json(data)
    else:
        print(
            f"Two-step verification is off for {args.user}; "
            "their secret and recovery codes are gone."
        )
    return 0


def _unlock(client: Client, args: argparse.Namespace) -> int:
    data = client.request("unlock", user=args.user)
    if args.json:
        _common.print_json(data)
    else:
        print(f"{args.user} is unlocked; the failure count is back to 0.")
    return 0


def _doctor(client: Client, args: argparse.Namespace) -> int:
    setup = doctor.Setup(
        sshd_service=args.sshd_service,
        login_service=args.login_service,
        sshd_config=args.sshd_config,
    )
    checks = doctor.run_checks(client, setup)
    if args.json:
        _common.print_json([check.as_dict() for check in checks])
    else:
        for check in checks:
            print(check.line())
    return 0 if all(check.ok for check in checks) else 1


def _try_login(client: Client, args: argparse.Namespace) -> int:
    from . import trylogin

    if not _common.on_terminal():
        return _common.fail("twofactl", "try-login needs a terminal to ask the questions on")
    terminal = trylogin.Terminal(info_to_stderr=args.json)
    terminal.say(
        f"Authenticating {args.user} as the PAM service {args.service!r} would:", error=False
    )
    outcome = trylogin.authenticate(args.service, args.user, terminal, args.rhost)
    if args.json:
        _common.print_json(
            {"user": args.user, "service": args.service, "rhost": args.rhost, "ok": outcome.ok}
            | dataclasses.asdict(outcome)
        )
        return 0 if outcome.ok else 1
    if outcome.ok:
        print(f"Success: {args.user} could log in through {args.service}.")
        return 0
    stage = "authentication" if not outcome.authenticated else "account check"
    return _common.fail(
        "twofactl", f"{args.user} could NOT log in: {stage} failed: {outcome.message}"
    )


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
        report.append(_import_one(client, entry, args.replace))
    if args.json:
        _common.print_json(report)
    else:
        for row in report:
            reason = f": {row['reason']}" if row.get("reason") else ""
            print(f"{row['user']}: {row['result']}{reason}")
    imported = sum(1 for row in report if row["result"] == "imported")
    unchanged = sum(1 for row in report if row["result"] == "unchanged")
    if not args.json:
        skipped = len(report) - imported - unchanged
        print(
            f"{imported} imported, {unchanged} unchanged, {skipped} skipped. "
            "The old files are untouched."
        )
    return 0 if imported or unchanged or not report else 1


def _import_one(client: Client, entry: migrate.Entry, replace: bool) -> dict[str, object]:
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


def _own_code(sub: argparse.ArgumentParser) -> None:
    """--code: an administrator acting on their own account proves it, as anyone must."""
    sub.add_argument(
        "--code", help="a current code of USER's: needed only when USER is you (not root)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser, commands = _common.new_parser(
        "twofactl",
        "Manage two-step verification for the accounts on this machine.",
        "twofactl status",
    )

    def command(
        name: str, handler: _common.Command, help: str, example: str
    ) -> argparse.ArgumentParser:
        return _common.add_command(commands, name, handler, help, example)

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
        "status",
        _status,
        "list enrolled users and those the policy requires: state, rule, last login, counts, lock",
        "twofactl status --state incomplete",
    )
    sub.add_argument("users", nargs="*", metavar="USER")
    sub.add_argument("--state", choices=tuple(STATE_NAMES), help="only users in this state")
    sub = command(
        "disable",
        _disable,
        "switch two-step verification off for a user (e.g. a lost phone)",
        "twofactl disable alice",
    )
    sub.add_argument("user")
    _own_code(sub)
    sub = command("unlock", _unlock, "lift a lock-out after failed codes", "twofactl unlock alice")
    sub.add_argument("user")
    sub = command(
        "reset",
        _reset,
        "give a user a new key (a new phone); the old one works until the new is confirmed",
        "twofactl reset alice",
    )
    sub.add_argument("user")
    _own_code(sub)
    sub = command(
        "recovery-codes",
        _recovery_codes,
        "make a user's new single-use recovery codes (the old ones stop working)",
        "twofactl recovery-codes alice --regenerate --output /home/alice/recovery-codes.txt",
    )
    sub.add_argument("user")
    sub.add_argument(
        "--regenerate", action="store_true", required=True, help="required: replace the codes"
    )
    sub.add_argument(
        "--output",
        metavar="FILE",
        help="write them to FILE (.txt, mode 0600), as the user: only where they could write",
    )
    _own_code(sub)
    sub = command(
        "resync",
        _resync,
        "fix a phone whose clock is off: two consecutive codes, searched within 10 minutes",
        "twofactl resync alice 123456 654321",
    )
    sub.add_argument("user")
    sub.add_argument("code1")
    sub.add_argument("code2")
    sub = command(
        "doctor",
        _doctor,
        "check that two-step verification is really in force, and say what to fix",
        "twofactl doctor",
    )
    sub.add_argument("--sshd-service", default="sshd", help="PAM service of sshd (default: sshd)")
    sub.add_argument("--login-service", default="login", help="PAM service of the console")
    sub.add_argument("--sshd-config", metavar="FILE", help="sshd's configuration (for sshd -T)")
    sub = command(
        "try-login",
        _try_login,
        "run a real PAM login for USER on this terminal, to prove the set-up before logging out",
        "twofactl try-login alice --service sshd",
    )
    sub.add_argument("user")
    sub.add_argument("--service", default="sshd", help="PAM service (default: %(default)s)")
    sub.add_argument("--from", dest="rhost", metavar="IP", help="remote address to report")
    imports = commands.add_parser(
        "import",
        help="bring over secrets from google-authenticator or pam_oath",
        description="Import secrets phones already have; the old files are not touched.",
        epilog="examples: twofactl import google-authenticator alice bob\n"
        "          twofactl import oath /etc/users.oath",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imports.set_defaults(help_parser=imports)
    sources = imports.add_subparsers(title="sources", metavar="SOURCE")
    sub = _common.add_command(
        sources,
        "google-authenticator",
        _import,
        "import ~/.google_authenticator files (TOTP; scratch codes become recovery codes)",
        "twofactl import google-authenticator alice bob   (no USER: every account with a file)",
    )
    sub.set_defaults(source="google-authenticator")
    sub.add_argument("users", nargs="*", metavar="USER", help="default: every user with a file")
    sub.add_argument(
        "--home-root",
        metavar="DIR",
        help="read DIR/USER/.google_authenticator instead of each account's home directory "
        "(homes restored from a backup, say)",
    )
    sub.add_argument("--replace", action="store_true", help="overwrite users already enrolled")
    sub = _common.add_command(
        sources,
        "oath",
        _import,
        "import a pam_oath users.oath file (HOTP/T30 and HOTP/T60 lines)",
        "twofactl import oath /etc/users.oath",
    )
    sub.set_defaults(source="oath")
    sub.add_argument("file", metavar="FILE")
    sub.add_argument("--replace", action="store_true", help="overwrite users already enrolled")
    sub = command(
        "reload",
        _reload,
        "re-read the policy file; the one in force stays if the new one has any error",
        "twofactl reload",
    )
    sub.add_argument(
        "--force", action="store_true", help="apply even if no administrator could log in"
    )
    policy = commands.add_parser(
        "policy",
        help="check or explain the policy",
        description="Check or explain the policy.",
        epilog="examples: twofactl policy check /etc/twofa/policy.yaml.new\n"
        "          twofactl policy explain alice --service sshd --from 192.0.2.10",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    policy.set_defaults(help_parser=policy)
    policy_commands = policy.add_subparsers(title="commands", metavar="COMMAND")
    sub = _common.add_command(
        policy_commands,
        "check",
        _policy_check,
        "validate a policy file without applying it, and show who it would require",
        "twofactl policy check /etc/twofa/policy.yaml",
    )
    sub.add_argument("file", nargs="?", default=DEFAULT_POLICY, metavar="FILE")
    sub = _common.add_command(
        policy_commands,
        "explain",
        _policy_explain,
        "say what the policy decides for one login, and which rule decides it",
        "twofactl policy explain alice --service sshd --from 192.0.2.10",
    )
    sub.add_argument("user")
    sub.add_argument("--service", default="sshd", help="PAM service (default: %(default)s)")
    sub.add_argument("--from", metavar="IP", help="remote address (default: a local login)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return _common.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
