"""twofactl's commands on the policy: `reload`, `policy check` and `policy explain`.

The daemon parses and judges the policy; these send it the file or the question and
print its answer: the rules, who would be required to give a code, what decides one login.
"""

from __future__ import annotations

import argparse

from ..client import Client
from ..vocabulary import DEFAULT_POLICY, STATE_LABELS
from . import _common
from ._common import Command, Group, arg


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
        rows += [(r["user"], STATE_LABELS.get(r["state"], r["state"]), r["rule"]) for r in required]
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
    if "email_allowed" in data:
        print(f"codes by email: {'allowed' if data['email_allowed'] else 'not allowed'}")
    if data.get("state") is None:
        print("state: unknown (the state database cannot be reached now)")
    else:
        print(f"state: {STATE_LABELS.get(data['state'], data['state'])}")
    if not data.get("known"):
        print("note: no such account on this machine")
    return 0


COMMANDS = (
    Command(
        "reload",
        _reload,
        "re-read the policy file; the one in force stays if the new one has any error",
        "twofactl reload",
        (arg("--force", action="store_true", help="apply even if no administrator could log in"),),
    ),
    Group(
        "policy",
        "check or explain the policy",
        "Check or explain the policy.",
        (
            "twofactl policy check /etc/twofa/policy.yaml.new",
            "twofactl policy explain alice --service sshd --from 192.0.2.10",
        ),
        "command",
        (
            Command(
                "check",
                _policy_check,
                "validate a policy file without applying it, and show who it would require",
                "twofactl policy check /etc/twofa/policy.yaml",
                (arg("file", nargs="?", default=DEFAULT_POLICY, metavar="FILE"),),
            ),
            Command(
                "explain",
                _policy_explain,
                "say what the policy decides for one login, and which rule decides it",
                "twofactl policy explain alice --service sshd --from 192.0.2.10",
                (
                    arg("user"),
                    arg("--service", default="sshd", help="PAM service (default: %(default)s)"),
                    arg("--from", metavar="IP", help="remote address (default: a local login)"),
                ),
            ),
        ),
    ),
)
