#!/usr/bin/python3
"""Write the man pages of twofad, twofactl and twofa from their own argparse parsers.

Run by debian/rules after dh_auto_install, with PYTHONPATH at the installed packages,
so each page documents exactly the options the packaged command accepts.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

COMMON = {"help", "socket", "json"}  # shown once, in OPTIONS, not under every command


def _parsers() -> list[tuple[str, str, Callable[[], argparse.ArgumentParser], dict[str, str]]]:
    from pam_twofa.cli import ctl, user
    from twofad import main
    from twofad.mailer import main as mailer

    return [
        ("twofad", "8", main.build_parser, TWOFAD_EXTRA),
        ("twofa-mailer", "8", mailer.build_parser, MAILER_EXTRA),
        ("twofactl", "8", ctl.build_parser, TWOFACTL_EXTRA),
        ("twofa", "1", user.build_parser, TWOFA_EXTRA),
    ]


TWOFAD_EXTRA = {
    "SYSTEMD": (
        "The package runs twofad as the system user _twofad from twofad.service, "
        "activated by twofad.socket "
        "(/run/twofad/twofad.sock, mode 0666: twofad decides what each peer may do "
        "from its uid). It reports READY=1 and STOPPING=1 to systemd. "
        "\\fBsystemctl reload twofad\\fR sends SIGHUP, which re-reads the policy "
        "(as \\fBtwofactl reload\\fR does); a policy with any error never replaces the "
        "one in force. SIGTERM stops it cleanly."
    ),
    "FILES": (
        ".TP\n/etc/twofa/policy.yaml\nThe policy (a conffile).\n"
        ".TP\n/var/lib/twofad/twofad.db\nThe database (SQLite, WAL): sealed secrets, "
        "hashed recovery codes, replay and lock-out state.\n"
        ".TP\n/var/lib/twofad/twofad.key\nThe master key, created mode 0400 on the first "
        "start. The database is useless without it: back it up apart from the database.\n"
        ".TP\n/run/twofad/twofad.sock\nThe socket."
    ),
    "SEE ALSO": "\\fBtwofactl\\fR(8), \\fBtwofa\\fR(1), \\fBpam-auth-update\\fR(8)",
}
TWOFACTL_EXTRA = {
    "FILES": (
        ".TP\n/etc/twofa/policy.yaml\nThe policy read by twofad.\n"
        ".TP\n/usr/share/pam-configs/twofa\nThe pam-auth-update profile "
        "(\\fBpam-auth-update \\-\\-enable twofa\\fR): a code after the password for every "
        "service that includes common-auth.\n"
        ".TP\n/usr/share/doc/pam-twofa/examples/\nsshd and PAM examples: key then code, "
        "password then code, the console."
    ),
    "SEE ALSO": "\\fBtwofad\\fR(8), \\fBtwofa\\fR(1), \\fBpam-auth-update\\fR(8), "
    "\\fBsshd_config\\fR(5)",
}
TWOFA_EXTRA = {"SEE ALSO": "\\fBtwofactl\\fR(8), \\fBtwofad\\fR(8)"}
MAILER_EXTRA = {
    "SYSTEMD": (
        "The package runs it as the system user _twofa\\-mailer from twofa\\-mailer.service, "
        "off until /etc/twofa/mailer.yaml exists and the unit is enabled. It listens on "
        "/run/twofa\\-mailer/mailer.sock (mode 0666); only root and allow_users may hand "
        "over messages (SO_PEERCRED)."
    ),
    "FILES": (
        ".TP\n/etc/twofa/mailer.yaml\nThe relay, the sender, who may hand over messages.\n"
        ".TP\n/etc/twofa/mailer.password\nThe relay's password, readable by the mailer only.\n"
        ".TP\n/usr/share/doc/pam\\-twofa/examples/mailer.yaml\nA commented example."
    ),
    "SEE ALSO": "\\fBtwofad\\fR(8), \\fBtwofactl\\fR(8)",
}


def roff(text: str) -> str:
    """Escape running text for roff: backslashes, hyphens, and control characters at the
    start of a line."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    lines = []
    for line in text.split("\n"):
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def _usage(parser: argparse.ArgumentParser) -> str:
    usage = parser.format_usage().strip()
    usage = usage.removeprefix("usage: ")
    return " ".join(usage.split())


def _whatis(parser: argparse.ArgumentParser) -> str:
    text = (parser.description or "").strip().split("\n")[0]
    text = text.rstrip(".")
    return text[:1].lower() + text[1:]


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:  # type: ignore[type-arg]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _describe_action(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    formatter = parser._get_formatter()
    if action.option_strings:
        names = ", ".join(f"\\fB{roff(name)}\\fR" for name in action.option_strings)
        if action.nargs != 0:
            metavar = formatter._format_args(action, action.dest.upper())
            names += f" \\fI{roff(metavar)}\\fR"
    else:
        names = f"\\fI{roff(formatter._format_args(action, action.dest))}\\fR"
    help_text = formatter._expand_help(action) if action.help else ""
    return f".TP\n{names}\n{roff(help_text)}\n"


def _options(parser: argparse.ArgumentParser, *, skip: Iterable[str] = ()) -> tuple[str, str]:
    """(positional arguments, options) as roff .TP lists."""
    positionals, optionals = "", ""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
            continue
        if action.dest in skip or (not action.option_strings and not action.help):
            continue  # the common options are in OPTIONS; a bare positional is in the synopsis
        if action.option_strings:
            optionals += _describe_action(parser, action)
        else:
            positionals += _describe_action(parser, action)
    return positionals, optionals


def _commands(parser: argparse.ArgumentParser) -> str:
    action = _subcommands(parser)
    if action is None:
        return ""
    helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
    out = ""
    for name, sub in action.choices.items():
        synopsis = _usage(sub).replace("[--socket PATH] [--json] ", "").replace("[-h] ", "")
        out += f'.SS "{roff(synopsis)}"\n'
        description = sub.description or helps.get(name, "")
        out += roff(description[:1].upper() + description[1:]) + "\n"
        positionals, optionals = _options(sub, skip=COMMON)
        if positionals or optionals:
            out += ".RS\n" + positionals + optionals + ".RE\n"
        if sub.epilog:
            example = sub.epilog.removeprefix("example: ")
            out += f".IP\nExample: \\fB{roff(example)}\\fR\n"
        out += _commands(sub)
    return out


def manpage(
    name: str, section: str, parser: argparse.ArgumentParser, extra: dict[str, str], version: str
) -> str:
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or None
    when = datetime.datetime.fromtimestamp(epoch or 0, datetime.UTC)
    date = when.strftime("%Y-%m-%d") if epoch else ""
    out = [
        f'.TH {name.upper()} {section} "{date}" "pam-twofa {version}" "pam-twofa"\n',
        ".SH NAME\n",
        f"{name} \\- {roff(_whatis(parser))}\n",
        ".SH SYNOPSIS\n",
        f".B {name}\n{roff(_usage(parser).removeprefix(name).strip())}\n",
        ".SH DESCRIPTION\n",
        roff(parser.description or "") + "\n",
    ]
    positionals, optionals = _options(parser)
    if positionals:
        out += [".SH ARGUMENTS\n", positionals]
    if optionals:
        out += [".SH OPTIONS\n", optionals]
    commands = _commands(parser)
    if commands:
        out += [".SH COMMANDS\n", commands]
    if parser.epilog:
        out += [".SH EXAMPLE\n", roff(parser.epilog.removeprefix("example: ")) + "\n"]
    for title, body in extra.items():
        out += [f".SH {title}\n", body + "\n"]
    return "".join(out)


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--outdir", required=True, type=Path)
    args.add_argument("--version", required=True)
    options = args.parse_args()
    options.outdir.mkdir(parents=True, exist_ok=True)
    for name, section, build, extra in _parsers():
        sys.argv[0] = name  # subcommands take their prog from it when not given one
        parser = build()
        parser.prog = name
        page = options.outdir / f"{name}.{section}"
        page.write_text(manpage(name, section, parser, extra, options.version))
        print(f"wrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
