"""The twofad wire protocol: one JSON object per line, with no I/O of its own.

Client, daemon and tests share this module so that a message means the same thing on
both sides of the socket.  It validates every field here, once, so the daemon never
acts on a message it has not understood completely.  It is the public face of the
wire: the error codes (errors), the fields' validators (fields) and the shared limits
(vocabulary) are read from here too.  It imports only what the PAM hook can afford
at every login: the C half of ``json`` and nothing heavier.
"""

from . import _jsoncodec
from .errors import (  # the public face: every code, and the errors, read from here
    ALREADY_ENROLLED,
    BAD_REQUEST,
    BUSY,
    DEVICE_EXISTS,
    EMAIL_NOT_ALLOWED,
    ERROR_CODES,
    EXPIRED,
    INTERNAL,
    INVALID_CODE,
    INVALID_POLICY,
    LAST_DEVICE,
    LOCKED,
    NOT_ENROLLED,
    NOT_SENT,
    RATE_LIMITED,
    TOO_MANY_DEVICES,
    UNAUTHORIZED,
    UNAVAILABLE,
    UNKNOWN_DEVICE,
    UNKNOWN_USER,
    WOULD_LOCK_OUT,
    BadRequest,
    ProtocolError,
    TwofaError,
)
from .fields import (
    MAX_CODE_LEN,
    MAX_PAGE,
    MAX_RHOST_LEN,
    MAX_USER_LEN,
    validate_algorithm,
    validate_channel,
    validate_code,
    validate_code_list,
    validate_device_name,
    validate_digits,
    validate_dropin,
    validate_email_address,
    validate_expires,
    validate_flag,
    validate_group,
    validate_label,
    validate_limit,
    validate_period,
    validate_policy_text,
    validate_rhost,
    validate_secret,
    validate_service,
    validate_time_step,
    validate_user,
    validate_window,
)
from .vocabulary import MAX_MESSAGE_BYTES, MAX_WINDOW, PROTOCOL_VERSION

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs the hook milliseconds at every login; types are free
    from collections.abc import Callable, Iterator
    from typing import Any

__all__ = [
    "ACCEPTED",
    "ALREADY_ENROLLED",
    "BAD_REQUEST",
    "BUSY",
    "CHECK_ACTIONS",
    "DEVICE_EXISTS",
    "EMAIL_NOT_ALLOWED",
    "ENROLL",
    "ERROR_CODES",
    "EXPIRED",
    "INTERNAL",
    "INVALID_CODE",
    "INVALID_POLICY",
    "LAST_DEVICE",
    "LOCKED",
    "MAX_CODE_LEN",
    "MAX_MESSAGE_BYTES",
    "MAX_PAGE",
    "MAX_RHOST_LEN",
    "MAX_USER_LEN",
    "MAX_WINDOW",
    "NEEDS_ONE_OF",
    "NOT_ENROLLED",
    "NOT_SENT",
    "OPERATIONS",
    "PROMPT",
    "PROTOCOL_VERSION",
    "RATE_LIMITED",
    "REFUSE",
    "REJECTED",
    "REPLAYED",
    "SENT",
    "SKIP",
    "TOO_MANY_DEVICES",
    "UNAUTHORIZED",
    "UNAVAILABLE",
    "UNKNOWN_DEVICE",
    "UNKNOWN_USER",
    "VERIFY_RESULTS",
    "WOULD_LOCK_OUT",
    "BadRequest",
    "LineBuffer",
    "ProtocolError",
    "Request",
    "Response",
    "TwofaError",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "error_response",
    "validate_algorithm",
    "validate_channel",
    "validate_code",
    "validate_code_list",
    "validate_device_name",
    "validate_digits",
    "validate_dropin",
    "validate_email_address",
    "validate_expires",
    "validate_flag",
    "validate_group",
    "validate_label",
    "validate_limit",
    "validate_period",
    "validate_policy_text",
    "validate_request",
    "validate_rhost",
    "validate_secret",
    "validate_service",
    "validate_time_step",
    "validate_user",
    "validate_window",
]

# Results of a verification.  "replayed" is kept apart for the audit log; people are
# shown it as a rejection so a replay teaches an attacker nothing.
ACCEPTED = "accepted"
REJECTED = "rejected"
REPLAYED = "replayed"
VERIFY_RESULTS = frozenset({ACCEPTED, REJECTED, REPLAYED, LOCKED, NOT_ENROLLED})

# The outcome of `email.send`: the same for every name, an account with an address or
# not, so the reply reveals nothing; `rate_limited` and `locked` are answered as errors.
SENT = "sent"

# Decisions of `check`, which tell the PAM hook what to do with a login.
SKIP = "skip"
PROMPT = "prompt"
ENROLL = "enroll"
REFUSE = "refuse"
CHECK_ACTIONS = frozenset({SKIP, PROMPT, ENROLL, REFUSE, LOCKED})


# Each operation's fields: name -> (validator, required).
_USER = (validate_user, True)
_CODE = (validate_code, True)
_OPTIONAL_CODE = (validate_code, False)
_SERVICE = (validate_service, False)
_RHOST = (validate_rhost, False)
_DEVICE = (validate_device_name, True)
_OPTIONAL_DEVICE = (validate_device_name, False)
_ADDRESS = (validate_email_address, True)

OPERATIONS: "dict[str, dict[str, tuple[Callable[..., Any], bool]]]" = {
    "ping": {},
    "check": {"user": _USER, "service": _SERVICE, "rhost": _RHOST},
    "verify": {
        "user": _USER,
        "code": _CODE,
        "service": _SERVICE,
        "rhost": _RHOST,
        "channel": (validate_channel, False),
        "expires": (validate_expires, False),
    },
    "enroll.begin": {
        "user": _USER,
        "replace": (validate_flag, False),
        "code": _OPTIONAL_CODE,
        "device": _OPTIONAL_DEVICE,
    },
    "secret.show": {"user": _USER, "code": _CODE, "device": _OPTIONAL_DEVICE},
    "enroll.confirm": {"user": _USER, "code": _CODE, "device": _OPTIONAL_DEVICE},
    "device.list": {"user": _USER},
    "device.add": {"user": _USER, "device": _DEVICE, "code": _OPTIONAL_CODE},
    "device.rename": {"user": _USER, "device": _DEVICE, "new_name": _DEVICE},
    "device.remove": {"user": _USER, "device": _DEVICE, "code": _OPTIONAL_CODE},
    "status": {"user": _USER},
    "list": {"after": (validate_user, False), "limit": (validate_limit, False)},
    "disable": {"user": _USER, "code": _OPTIONAL_CODE},
    "unlock": {"user": _USER},
    "recovery.regenerate": {"user": _USER, "code": _OPTIONAL_CODE},
    "resync": {"user": _USER, "code1": _CODE, "code2": _CODE},
    "reload": {"force": (validate_flag, False)},
    "policy.check": {
        # The main file as it would be (else the daemon's own, as it is on disk), and
        # one drop-in as it would be: at least one of the two.
        "text": (validate_policy_text, False),
        "name": (validate_label, False),
        "dropin": (validate_dropin, False),
        "after": (validate_user, False),
        "limit": (validate_limit, False),
    },
    "policy.explain": {"user": _USER, "service": _SERVICE, "rhost": _RHOST},
    "import": {
        "user": _USER,
        "secret": (validate_secret, True),
        "algorithm": (validate_algorithm, False),
        "digits": (validate_digits, False),
        "period": (validate_period, False),
        "recovery_codes": (validate_code_list, False),
        "window": (validate_window, False),
        "used_step": (validate_time_step, False),
        "replace": (validate_flag, False),
        "device": _OPTIONAL_DEVICE,
    },
    "diagnose": {},
    "keys.reseal": {"after": (validate_user, False), "limit": (validate_limit, False)},
    "email.set": {"user": _USER, "address": _ADDRESS, "code": _OPTIONAL_CODE},
    "email.confirm": {"user": _USER, "code": _CODE},
    "email.remove": {"user": _USER},
    "email.send": {
        "user": _USER,
        "service": _SERVICE,
        "rhost": _RHOST,
        "expires": (validate_expires, False),
    },
    "email.test": {"address": _ADDRESS},
}


# Operations whose optional fields must not all be missing: op -> fields, one needed.
NEEDS_ONE_OF: "dict[str, tuple[str, ...]]" = {"policy.check": ("text", "dropin")}


class Request:
    """A validated request: its operation, its fields and the client's optional id."""

    __slots__ = ("fields", "id", "op")

    def __init__(self, op: str, fields: "dict[str, Any]", id: "int | None" = None) -> None:
        self.op = op
        self.fields = fields
        self.id = id

    def __repr__(self) -> str:
        # Codes must never reach a log line through a repr.
        shown = {k: ("***" if k.startswith("code") else v) for k, v in self.fields.items()}
        return f"Request({self.op!r}, {shown!r}, id={self.id!r})"


class Response:
    """A reply: either ``data`` (ok) or an error ``code`` and ``message``."""

    __slots__ = ("code", "data", "id", "message", "ok")

    def __init__(
        self,
        data: "dict[str, Any] | None" = None,
        *,
        code: "str | None" = None,
        message: str = "",
        id: "int | None" = None,
    ) -> None:
        self.ok = code is None
        self.data = data if data is not None else {}
        self.code = code
        self.message = message
        self.id = id

    def __repr__(self) -> str:
        if self.ok:
            return f"Response(ok, keys={sorted(self.data)!r})"
        return f"Response(error={self.code!r}, {self.message!r})"


# --- encoding -------------------------------------------------------------------------


def _dumps(obj: "dict[str, Any]") -> bytes:
    data = _jsoncodec.dumps(obj).encode("utf-8") + b"\n"
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(INTERNAL, "message too large to send")
    return data


def _loads(line: bytes) -> "dict[str, Any]":
    if len(line) > MAX_MESSAGE_BYTES:
        raise BadRequest(f"message exceeds {MAX_MESSAGE_BYTES} bytes")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("message is not valid UTF-8") from None
    try:
        obj = _jsoncodec.loads(text)
    except (ValueError, RecursionError):
        raise BadRequest("message is not a valid JSON object") from None
    if not isinstance(obj, dict):
        raise BadRequest("message must be a JSON object")
    version = obj.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:  # true == 1 in Python
        raise BadRequest(f"unsupported protocol version (this side speaks v={PROTOCOL_VERSION})")
    return obj


def _take_id(obj: "dict[str, Any]") -> "int | None":
    value = obj.get("id")
    if value is None:
        return None
    if type(value) is not int or not 0 <= value < 2**53:
        raise BadRequest("id must be a non-negative integer")
    return value


def encode_request(op: str, id: "int | None" = None, **fields: "Any") -> bytes:
    """Encode a request, validating it first so a client fails before it sends."""
    request = validate_request(op, {k: v for k, v in fields.items() if v is not None}, id)
    obj: dict[str, Any] = {"v": PROTOCOL_VERSION, "op": request.op, **request.fields}
    if id is not None:
        obj["id"] = id
    return _dumps(obj)


def validate_request(op: object, fields: "dict[str, Any]", id: "int | None" = None) -> "Request":
    if not isinstance(op, str) or op not in OPERATIONS:
        raise BadRequest(
            f"unknown operation {op!r}" if isinstance(op, str) else "op must be a string"
        )
    schema = OPERATIONS[op]
    unknown = sorted(set(fields) - set(schema))
    if unknown:
        raise BadRequest(f"{op}: unknown field(s) {', '.join(map(repr, unknown))}")
    clean: dict[str, Any] = {}
    for name, (validate, required) in schema.items():
        if fields.get(name) is None:
            if required:
                raise BadRequest(f"{op}: field {name!r} is required")
            continue
        value = validate(fields[name], name)
        if value is not None:
            clean[name] = value
    one_of = NEEDS_ONE_OF.get(op, ())
    if one_of and not any(name in clean for name in one_of):
        raise BadRequest(f"{op}: give {' or '.join(map(repr, one_of))} (or both)")
    return Request(op, clean, id)


def decode_request(line: bytes) -> "Request":
    """Parse and validate one request line; raise ProtocolError(bad_request) if unfit."""
    obj = _loads(line)
    request_id = _take_id(obj)
    op = obj.pop("op", None)
    del obj["v"]
    obj.pop("id", None)
    return validate_request(op, obj, request_id)


def encode_response(response: "Response") -> bytes:
    obj: dict[str, Any] = {"v": PROTOCOL_VERSION, "ok": response.ok}
    if response.id is not None:
        obj["id"] = response.id
    if response.ok:
        obj["data"] = response.data
    else:
        obj["error"] = {"code": response.code, "message": response.message}
    return _dumps(obj)


def error_response(code: str, message: str, id: "int | None" = None) -> "Response":
    return Response(code=code, message=message, id=id)


def decode_response(line: bytes) -> "Response":
    """Parse a reply; a malformed one raises ProtocolError(internal): the daemon is at fault."""
    try:
        obj = _loads(line)
        request_id = _take_id(obj)
    except ProtocolError as exc:
        raise ProtocolError(INTERNAL, f"bad reply from twofad: {exc.message}") from None
    if obj.get("ok") is True and isinstance(obj.get("data"), dict):
        return Response(obj["data"], id=request_id)
    error = obj.get("error")
    if obj.get("ok") is False and isinstance(error, dict):
        code, message = error.get("code"), error.get("message")
        if isinstance(code, str) and isinstance(message, str):
            return Response(code=code, message=message, id=request_id)
    raise ProtocolError(INTERNAL, "bad reply from twofad: neither data nor error")


# --- framing --------------------------------------------------------------------------


class LineBuffer:
    """Split a byte stream into lines, refusing any line longer than MAX_MESSAGE_BYTES.

    After an overlong line the buffer is spent: the stream can no longer be trusted to
    be in step, so the only safe move left is to answer with an error and close.
    """

    def __init__(self, limit: int = MAX_MESSAGE_BYTES) -> None:
        self._limit = limit
        self._pending = bytearray()

    def feed(self, data: bytes) -> "Iterator[bytes]":
        """Yield every complete line (without its newline) that `data` finishes."""
        self._pending += data
        while True:
            end = self._pending.find(b"\n")
            if end < 0:
                break
            if end > self._limit:
                raise BadRequest(f"message exceeds {self._limit} bytes")
            line = bytes(self._pending[:end])
            del self._pending[: end + 1]
            yield line
        if len(self._pending) > self._limit:
            raise BadRequest(f"message exceeds {self._limit} bytes")

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole line."""
        return len(self._pending)
