"""`twofactl`: the administrator's command for twofad (root or an admins group member).

This module is its public face: the parser and `main`. The commands themselves live
in one module a job, each listing its own with their arguments (COMMANDS): _ctl_accounts
(set-up, status, codes, lock-outs), _email (addresses for codes by email), _ctl_checks
(doctor, try-login), _ctl_import (google-authenticator, pam_oath), _ctl_policy (reload,
check, explain) and _ctl_keys (the key ring). A new command is a handler and a row in
the module of its job, or a module added to JOBS.
"""

from __future__ import annotations

import argparse
import sys

from . import _common, _ctl_accounts, _ctl_checks, _ctl_import, _ctl_keys, _ctl_policy, _email

# In the order `twofactl --help` and the man page list their commands.
JOBS = (_ctl_accounts, _email, _ctl_checks, _ctl_import, _ctl_policy, _ctl_keys)


def build_parser() -> argparse.ArgumentParser:
    parser, commands = _common.new_parser(
        "twofactl",
        "Manage two-step verification for the accounts on this machine.",
        "twofactl status",
    )
    for job in JOBS:
        _common.add_commands(commands, job.COMMANDS)
    return parser


def main(argv: list[str] | None = None) -> int:
    return _common.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
