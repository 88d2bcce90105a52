"""twofactl's commands on the policy: `reload`, `policy check`, `policy explain`, `require`.

The daemon parses and judges the policy; these send it the file or the question and
print its answer: the rules, who would be required to give a code, what decides one login.
`require` writes the web console's drop-in (see _dropin) after the daemon has judged it,
and has the daemon load it; where the drop-in is comes from the daemon, which knows the
policy file it reads.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..client import Client, RequestFailed
from ..errors import BadRequest
from ..fields import validate_group, validate_user
from ..vocabulary import DEFAULT_POLICY, DROPIN_DIR, STATE_LABELS, WEB_CONSOLE_DROPIN
from . import _common, _dropin
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
    _print_impact(report, "They need an app before this policy lets them in.")
    return 0


def _print_impact(report: dict[str, Any], need: str) -> None:
    """Who would be required, who of them has no app yet, and any lock-out risk."""
    required = report["required"]
    if not required:
        print("No account would be required to give a code.")
    else:
        print(f"{len(required)} account(s) would be required to give a code:")
        rows = [("USER", "STATE", "RULE")]
        rows += [(r["user"], STATE_LABELS.get(r["state"], r["state"]), r["rule"]) for r in required]
        _common.print_table(rows, indent="  ")
    if report["incomplete"]:
        print("Not set up yet (incomplete): " + ", ".join(report["incomplete"]) + f". {need}")
    if report.get("lockout_risk"):
        print(f"Warning: {report['lockout_risk']}")


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


# --- require: the web console's drop-in --------------------------------------------


def _dropin_check(client: Client, text: str, *, every_page: bool = True) -> dict[str, Any]:
    """The daemon's judgement of the policy with the drop-in holding `text`."""
    dropin = {"name": WEB_CONSOLE_DROPIN, "text": text}
    if every_page:
        report = _common.request_all_pages(client, "policy.check", "required", dropin=dropin)
    else:
        report = client.request("policy.check", dropin=dropin, limit=1)
    report["incomplete"] = [r["user"] for r in report["required"] if r["state"] == "incomplete"]
    report["dropin"]["file"] = _checked_path(report["dropin"]["file"])
    return report


def _not_included(report: dict[str, Any]) -> str:
    return (
        f"{report['source']} does not include {DROPIN_DIR}/{WEB_CONSOLE_DROPIN}; "
        f"add the line `include: [{DROPIN_DIR}/*.yaml]` to it"
    )


def _checked_path(path: object) -> str:
    """Where the daemon says the drop-in is, if that is the drop-in's name in a policy.d:
    twofactl runs as root, and an answer naming any other file is not one to write."""
    if (
        not isinstance(path, str)
        or not os.path.isabs(path)
        or os.path.basename(path) != WEB_CONSOLE_DROPIN
        or os.path.basename(os.path.dirname(path)) != DROPIN_DIR
        or os.path.normpath(path) != path
    ):
        raise _dropin.DropinError(
            f"the daemon names {path!r} as the page's drop-in, not {DROPIN_DIR}/"
            f"{WEB_CONSOLE_DROPIN} beside the policy file; nothing read or written"
        )
    return path


def _require_show(client: Client, args: argparse.Namespace) -> int:
    where = _dropin_check(client, "", every_page=False)["dropin"]  # only where it is
    text = _dropin.read(where["file"])
    users, groups = _dropin.parse(text or "", where["file"])
    if args.json:
        _common.print_json(
            {"users": users, "groups": groups, "file": where["file"], "included": where["included"]}
        )
        return 0
    print(f"{where['file']}{'' if text is not None else ' (not written yet)'}:")
    print(f"  users:  {', '.join(users) or '-'}")
    print(f"  groups: {', '.join(groups) or '-'}")
    if not where["included"]:
        print(
            f"Not in force: the policy file does not include it (add `include: "
            f"[{DROPIN_DIR}/*.yaml]`)."
        )
    return 0


def _unique(names: list[str] | None, validate: Any, what: str) -> list[str]:
    """The names as given, each once, each valid (BadRequest naming the first that is not)."""
    seen: list[str] = []
    for name in names or ():
        if validate(name, what) not in seen:
            seen.append(name)
    return seen


def _require_set(client: Client, args: argparse.Namespace) -> int:
    try:
        users = _unique(args.users, validate_user, "user")
        groups = _unique(args.groups, validate_group, "group")
    except BadRequest as exc:
        return _common.fail("twofactl", exc.message)
    text = _dropin.render(users, groups)
    report = _dropin_check(client, text)
    path, included = report["dropin"]["file"], report["dropin"]["included"]
    result: dict[str, Any] = {
        "users": users,
        "groups": groups,
        "file": path,
        "included": included,
        "required": report["required"],
        "incomplete": report["incomplete"],
        "lockout_risk": report.get("lockout_risk"),
        "written": False,
        "reloaded": False,
    }
    refusal = None
    if not included:
        refusal = _not_included(report)
    elif report.get("lockout_risk") and not args.force and not args.dry_run:
        refusal = f"{report['lockout_risk']}; nothing written (--force writes it anyway)"
    if refusal is None and not args.dry_run:
        previous = _dropin.read(path)
        _dropin.write(path, text)
        result["written"] = True
        try:
            reloaded = client.request("reload", force=args.force or None)
        except RequestFailed as exc:
            result["restored"], undone = _put_back(path, previous)
            refusal = f"the daemon did not load it: {exc.message} [{exc.code}]; {undone}"
        else:
            result["reloaded"] = True
            result["rules"] = reloaded["rules"]
    if args.json:
        _common.print_json(result)
    else:
        _print_set(result, args.dry_run)
    return _common.fail("twofactl", refusal) if refusal else 0


def _put_back(path: str, previous: str | None) -> tuple[bool, str]:
    """Undo a write the daemon would not load; whether that worked, and what to say."""
    try:
        _dropin.restore(path, previous)
    except _dropin.DropinError as exc:
        return False, f"putting it back failed too ({exc}): fix or remove {path} by hand"
    return True, f"{path} is back as it was" if previous is not None else f"{path} is removed again"


def _print_set(result: dict[str, Any], dry_run: bool) -> None:
    who = [f"users {', '.join(result['users'])}"] if result["users"] else []
    who += [f"members of {', '.join(result['groups'])}"] if result["groups"] else []
    print(f"{result['file']}: a code required of {' and '.join(who) or 'no one'}.")
    _print_impact(result, "They need an app before they can log in.")
    if dry_run:
        print(f"Dry run: {result['file']} not written.")
    elif result["reloaded"]:
        print(f"Written, and the policy reloaded: {result['rules']} rules.")


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
    Group(
        "require",
        "who must give a code, as the web console sets it (policy.d/web-console.yaml)",
        "Show or set the users and groups the web console's drop-in requires a code of. "
        "Its rules come after policy.yaml's own, which is never rewritten.",
        (
            "twofactl require show",
            "twofactl require set --users alice bob --groups sudo --dry-run",
        ),
        "command",
        (
            Command(
                "show",
                _require_show,
                "show the users and groups the drop-in requires a code of",
                "twofactl require show --json",
            ),
            Command(
                "set",
                _require_set,
                "replace the drop-in's users and groups (none: no rule), check it, "
                "write it and reload the policy",
                "twofactl require set --users alice --groups sudo",
                (
                    arg("--users", nargs="*", metavar="USER", help="login names"),
                    arg("--groups", nargs="*", metavar="GROUP", help="group names"),
                    arg(
                        "--dry-run",
                        action="store_true",
                        help="show who would be required, and write nothing",
                    ),
                    arg(
                        "--force",
                        action="store_true",
                        help="write and apply it even if no administrator could log in",
                    ),
                ),
            ),
        ),
    ),
)
