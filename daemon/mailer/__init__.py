"""twofa-mailer: the one part of pam-twofa with network access.

twofad hands it each message over a local socket (server); it delivers them by SMTP
to the relay its configuration names (config, delivery).  It never sees a key or a
secret, only the messages, and runs as its own user under its own unit.
"""
