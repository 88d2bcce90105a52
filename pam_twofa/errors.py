"""Every refusal and failure twofad can answer: a stable code, a message, and whose fault.

Clients branch on the codes, so a code never changes meaning.  Each code is either the
peer's doing (a request that is malformed, not allowed, or refused by a rule: asking
again unchanged gets the same answer) or ours (the daemon could not answer it now:
the PAM hook then applies its fail= choice).  `TwofaError` carries both, so a handler
raises one exception and the server, the client and the log all read the same thing.
"""

# The peer's: the request itself is refused.
BAD_REQUEST = "bad_request"
UNAUTHORIZED = "unauthorized"
UNKNOWN_USER = "unknown_user"
NOT_ENROLLED = "not_enrolled"
ALREADY_ENROLLED = "already_enrolled"
LOCKED = "locked"
INVALID_CODE = "invalid_code"
INVALID_POLICY = "invalid_policy"
WOULD_LOCK_OUT = "would_lock_out"
RATE_LIMITED = "rate_limited"
EXPIRED = "expired"
UNKNOWN_DEVICE = "unknown_device"  # the account has no device of that name
DEVICE_EXISTS = "device_exists"  # the name is another device's
TOO_MANY_DEVICES = "too_many_devices"  # the account holds as many as it may
LAST_DEVICE = "last_device"  # the last active device goes only with `disable`
EMAIL_NOT_ALLOWED = "email_not_allowed"  # the policy allows no code by email here
# Ours: the daemon could not answer.
BUSY = "busy"
UNAVAILABLE = "unavailable"  # the state database cannot answer now
NOT_SENT = "not_sent"  # the mailer could not deliver the message; nothing changed
INTERNAL = "internal"

PEER = "peer"
OURS = "ours"
FAULT_OF = {
    BAD_REQUEST: PEER,
    UNAUTHORIZED: PEER,
    UNKNOWN_USER: PEER,
    NOT_ENROLLED: PEER,
    ALREADY_ENROLLED: PEER,
    LOCKED: PEER,
    INVALID_CODE: PEER,
    INVALID_POLICY: PEER,
    WOULD_LOCK_OUT: PEER,
    RATE_LIMITED: PEER,
    EXPIRED: PEER,
    UNKNOWN_DEVICE: PEER,
    DEVICE_EXISTS: PEER,
    TOO_MANY_DEVICES: PEER,
    LAST_DEVICE: PEER,
    EMAIL_NOT_ALLOWED: PEER,
    BUSY: OURS,
    UNAVAILABLE: OURS,
    NOT_SENT: OURS,
    INTERNAL: OURS,
}
ERROR_CODES = frozenset(FAULT_OF)


class TwofaError(Exception):
    """A request answered with an error: ``code`` one of ERROR_CODES, ``message`` for people.

    The message is shown as it is, so it never holds a secret, a code or a password.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def fault(self) -> str:
        """PEER or OURS; a code this side does not know is taken as ours."""
        return FAULT_OF.get(self.code, OURS)

    @property
    def ours(self) -> bool:
        return self.fault == OURS


class ProtocolError(TwofaError):
    """A message, sent or received, that cannot be used as it is."""


class BadRequest(ProtocolError):
    """A request, or one of its fields, that the daemon cannot accept."""

    def __init__(self, message: str) -> None:
        super().__init__(BAD_REQUEST, message)
