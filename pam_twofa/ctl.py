"""`twofactl`: the administrator's command for twofad (root or an admins group member)."""

from __future__ import annotations

import argparse
import sys

from . import _cli
from .client import Client

VERIFY_EXIT = {"accepted": 0}
DEFAULT_POLICY = "/etc/twofa/policy.yaml"


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
        statuses = client.request("list")["users"]
    if args.state:
        statuses = [s for s in statuses if s["state"] == args.state]
    if args.json:
        _cli.print_json(statuses)
        return 0
    rows = [("USER", "STATE", "RULE", "ENROLLED", "LAST LOGIN", "FAILURES", "LOCK")]
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
                _cli.when(s.get("enrolled_at")),
                _cli.when(s.get("last_success")),
                str(s.get("failures", 0)),
                _cli.lock_text(s),
            )
        )
    _cli.print_table(rows)
    return 0


def _reload(client: Client, args: argparse.Namespace) -> int:
    data = client.request("reload", force=args.force or None)
    if args.json:
        _cli.print_json(data)
    else:
        forced = " (forced past the lock-out guard)" if data.get("forced") else ""
        print(f"Policy reloaded from {data['source']}: {data['rules']} rules{forced}.")
    return 0


def _policy_check(client: Client, args: argparse.Namespace) -> int:
    try:
        with open(args.file, encoding="utf-8") as policy_file:
            text = policy_file.read()
    except (OSError, UnicodeDecodeError) as exc:
        return _cli.fail("twofactl", f"cannot read {args.file}: {exc}")
    report = client.request("policy.check", text=text, name=args.file)
    if args.json:
        _cli.print_json({"valid": True, **report})
        return 0
    print(f"{args.file}: valid, {report['rules']} rules.")
    required = report["required"]
    if not required:
        print("No account would be required to give a code.")
    else:
        print(f"{len(required)} account(s) would be required to give a code:")
        rows = [("USER", "STATE", "RULE")]
        rows += [(r["user"], STATE_NAMES.get(r["state"], r["state"]), r["rule"]) for r in required]
        _cli.print_table(rows, indent="  ")
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
        _cli.print_json(data)
        return 0
    origin = f"from {data['rhost']}" if data.get("rhost") else "locally (no remote host)"
    rule = "the default" if data["rule"] == "default" else f"rule {data['rule']!r}"
    where = f", {data['line']}" if data.get("line") else ""
    print(f"{data['user']} via {data['service']} {origin}: {data['action']} ({rule}{where})")
    print(f"state: {STATE_NAMES.get(data['state'], data['state'])}")
    if not data.get("known"):
        print("note: no such account on this machine")
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
        "status",
        _status,
        "list enrolled users and those the policy requires: state, rule, last login, lock",
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
    sub = command("unlock", _unlock, "lift a lock-out after failed codes", "twofactl unlock alice")
    sub.add_argument("user")
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
        "policy", help="check or explain the policy", description="Check or explain the policy."
    )
    policy_commands = policy.add_subparsers(title="commands", metavar="COMMAND")
    sub = _cli.add_command(
        policy_commands,
        "check",
        _policy_check,
        "validate a policy file without applying it, and show who it would require",
        "twofactl policy check /etc/twofa/policy.yaml",
    )
    sub.add_argument("file", nargs="?", default=DEFAULT_POLICY, metavar="FILE")
    sub = _cli.add_command(
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
    return _cli.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
