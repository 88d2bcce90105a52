"""pam-twofa: two-step verification (TOTP) for Linux logins.

This package is what the PAM hook and the command-line tools import: the standard
library only, and as little of it as possible, because the hook runs at every login.
"""

__version__ = "0.1.0"
