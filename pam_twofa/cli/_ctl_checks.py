"""twofactl's checks of the set-up: `doctor` and `try-login`.

doctor looks at what an administrator can get wrong (see doctor.py); try-login runs a
real PAM login on this terminal (see trylogin.py), which loads libpam only when asked.
"""

from __future__ import annotations

import argparse
import dataclasses

from ..client import Client
from . import _common, _delivery, doctor
from ._common import Command, arg


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

    if not _delivery.on_terminal():
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


COMMANDS = (
    Command(
        "doctor",
        _doctor,
        "check that two-step verification is really in force, and say what to fix",
        "twofactl doctor",
        (
            arg("--sshd-service", default="sshd", help="PAM service of sshd (default: sshd)"),
            arg("--login-service", default="login", help="PAM service of the console"),
            arg("--sshd-config", metavar="FILE", help="sshd's configuration (for sshd -T)"),
        ),
    ),
    Command(
        "try-login",
        _try_login,
        "run a real PAM login for USER on this terminal, to prove the set-up before logging out",
        "twofactl try-login alice --service sshd",
        (
            arg("user"),
            arg("--service", default="sshd", help="PAM service (default: %(default)s)"),
            arg("--from", dest="rhost", metavar="IP", help="remote address to report"),
        ),
    ),
)
