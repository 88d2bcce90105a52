"""The words twofad and its clients share, each defined here once.

The hook, the commands and the daemon all read these: where the socket and the policy
live, how large a message may be, what a TOTP key's parameters may be, and the names
of an account's states.  A value changed here changes on both sides of the socket, so
the two can never disagree about it.  Nothing is imported: the hook loads this at
every login.
"""

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024  # one request or reply, newline included
MAX_POLICY_BYTES = 48 * 1024  # a policy file; it also travels in one message (policy check)

# Where things are on an installed system.
DEFAULT_SOCKET = "/run/twofad/twofad.sock"
ROOT_DIRECTORY = "root"  # beside the socket: the directory of the root-only socket
DEFAULT_STATE_DIR = "/var/lib/twofad"
DEFAULT_POLICY = "/etc/twofa/policy.yaml"
# Drop-ins a program writes, beside the policy an administrator writes by hand (which a
# program then never rewrites): a bare file name in this directory, next to the policy.
DROPIN_DIR = "policy.d"
WEB_CONSOLE_DROPIN = "web-console.yaml"  # the one `twofactl require` (the web console) writes
MAX_DROPIN_NAME = 64  # characters, ".yaml" included

# A TOTP key's parameters (RFC 6238), as apps support them.
ALGORITHMS = ("SHA1", "SHA256", "SHA512")
MIN_DIGITS, MAX_DIGITS = 6, 8
MIN_PERIOD, MAX_PERIOD = 15, 120  # seconds
MAX_WINDOW = 10  # time steps either side of now a policy may accept

# An account's state, as `status`, `list` and the policy's impact report it.
ENABLED = "enabled"  # an active key
DISABLED = "disabled"  # no active key, and none required
INCOMPLETE = "incomplete"  # no active key, yet the policy requires one
LOCKED = "locked"  # an active key, locked out for now
ACCOUNT_STATES = (ENABLED, DISABLED, INCOMPLETE, LOCKED)
STATE_LABELS = {
    ENABLED: "Enabled",
    DISABLED: "Disabled",
    INCOMPLETE: "Incomplete",
    LOCKED: "Locked",
}

# Where an account's key stands: set up and confirmed, or waiting for a first code.
ACTIVE = "active"
PENDING = "pending"

# An account's devices: each its own key, a name its owner chose, and at most this many
# (a login compares every candidate code of every device, so each one costs a verify).
MAX_DEVICES = 5
MAX_DEVICE_NAME = 32  # characters
DEFAULT_DEVICE = "phone"  # the first device's name, until its owner renames it

# Codes by email: what a person types at the prompt to get one, its length, and where
# twofad hands each message to the mailer (the one part with network access).
EMAIL_WORD = "email"
EMAIL_CODE_DIGITS = 8
MAX_EMAIL_ADDRESS = 254  # RFC 5321's path limit, less the angle brackets
DEFAULT_MAILER_SOCKET = "/run/twofa-mailer/mailer.sock"
DEFAULT_MAILER_CONFIG = "/etc/twofa/mailer.yaml"
MAILER_WAIT = 15.0  # seconds twofad waits for the mailer to hand a message to the relay
