"""The commands: `twofactl` (an administrator's) and `twofa` (a person's own account).

Everything only they need lives here, so that the PAM hook's import graph (hook, entry,
login, client, protocol, display) stays apart and small: nothing below is imported at a
login. The modules, by job:

- ctl, user: the two commands' parsers and `main`; `python -m pam_twofa.cli.ctl`
  (or `.user`) runs them. twofactl's commands are in _ctl_accounts, _ctl_checks,
  _ctl_import and _ctl_policy, one module a job, each with its table of commands.
- _common (commands as data, options, failures to exit codes, output) and _delivery
  (the set-up screen, its confirmation, recovery codes printed or written): what both
  commands share.
- doctor (is two-step verification really in force; its checks), pamconf and sshdconf
  (the PAM files and sshd's settings, read as the system reads them), trylogin (a
  real PAM login driven from the terminal).
- migrate (secrets other TOTP modules left behind), files and asuser (a person's files,
  read and written with that person's rights).

Standard library only, like the rest of pam_twofa.
"""
