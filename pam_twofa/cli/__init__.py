"""The commands: `twofactl` (an administrator's) and `twofa` (a person's own account).

Everything only they need lives here, so that the PAM hook's import graph (hook, entry,
login, client, protocol, display) stays apart and small: nothing below is imported at a
login. The modules, by job:

- ctl, user: the two commands' parsers and `main`; `python -m pam_twofa.cli.ctl`
  (or `.user`) runs them.
- _common: what both share (options, errors to exit codes, output, the set-up screen
  and recovery codes handed over).
- doctor (is two-step verification really in force), trylogin (a real PAM login
  driven from the terminal).
- migrate (secrets other TOTP modules left behind), files and asuser (a person's files,
  read and written with that person's rights).

Standard library only, like the rest of pam_twofa.
"""
