"""The twofad wire protocol: one JSON object per line, with no I/O of its own.

Client, daemon and tests share this module so that a message means the same thing on
both sides of the socket.  It validates every field here, once, so the daemon never
acts on a message it has not understood completely.  It imports only what the PAM hook
can afford at every login: the C half of ``json`` and nothing heavier.
"""

from . import _jsoncodec

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs the hook milliseconds at every login; types are free
    from collections.abc import Callable, Iterator
    from typing import Any

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024

# Stable error codes: clients branch on these, so they never change meaning.
BAD_REQUEST = "bad_request"
UNAUTHORIZED = "unauthorized"
UNKNOWN_USER = "unknown_user"
NOT_ENROLLED = "not_enrolled"
ALREADY_ENROLLED = "already_enrolled"
LOCKED = "locked"
INVALID_CODE = "invalid_code"
INVALID_POLICY = "invalid_policy"
WOULD_LOCK_OUT = "would_lock_out"
BUSY = "busy"
RATE_LIMITED = "rate_limited"
EXPIRED = "expired"
INTERNAL = "internal"
ERROR_CODES = frozenset(
    {
        BAD_REQUEST,
        UNAUTHORIZED,
        UNKNOWN_USER,
        NOT_ENROLLED,
        ALREADY_ENROLLED,
        LOCKED,
        INVALID_CODE,
        INVALID_POLICY,
        WOULD_LOCK_OUT,
        BUSY,
        RATE_LIMITED,
        EXPIRED,
        INTERNAL,
    }
)

# Results of a verification.  "replayed" is kept apart for the audit log; people are
# shown it as a rejection so a replay teaches an attacker nothing.
ACCEPTED = "accepted"
REJECTED = "rejected"
REPLAYED = "replayed"
VERIFY_RESULTS = frozenset({ACCEPTED, REJECTED, REPLAYED, LOCKED, NOT_ENROLLED})

# Decisions of `check`, which tell the PAM hook what to do with a login.
SKIP = "skip"
PROMPT = "prompt"
ENROLL = "enroll"
REFUSE = "refuse"
CHECK_ACTIONS = frozenset({SKIP, PROMPT, ENROLL, REFUSE, LOCKED})


class ProtocolError(Exception):
    """A message that cannot be accepted; ``code`` is one of ERROR_CODES."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _bad(message: str) -> "ProtocolError":
    return ProtocolError(BAD_REQUEST, message)


# --- field validators -------------------------------------------------------------------

_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_USER_CHARS = _ALNUM | frozenset("_.@-\\")
_SERVICE_CHARS = _ALNUM | frozenset("_.+@-")
MAX_USER_LEN = 256
MAX_CODE_LEN = 128
MAX_RHOST_LEN = 255


def validate_user(value: object, name: str = "user") -> str:
    """A login name as NSS may hand it over (local, LDAP or SSSD: `jo.doe@corp`;
    winbind: `CORP\\jo`).

    A leading dash could pass for an option and a slash for a path, so neither is
    allowed; a trailing `$` stays possible for Samba machine accounts.
    """
    if not isinstance(value, str):
        raise _bad(f"{name} must be a string")
    body = value[:-1] if value.endswith("$") else value
    if not body or len(value) > MAX_USER_LEN:
        raise _bad(f"{name} must be 1 to {MAX_USER_LEN} characters")
    if body[0] in "-.@\\" or not all(c in _USER_CHARS for c in body):
        raise _bad(f"{name} {value!r} is not a valid user name")
    return value


def validate_code(value: object, name: str = "code") -> str:
    """A TOTP or recovery code as typed; the daemon normalises it, this only bounds it."""
    if not isinstance(value, str):
        raise _bad(f"{name} must be a string")
    if not value or len(value) > MAX_CODE_LEN:
        raise _bad(f"{name} must be 1 to {MAX_CODE_LEN} characters")
    if not value.isprintable():
        raise _bad(f"{name} contains control characters")
    return value


def validate_service(value: object, name: str = "service") -> str:
    """A PAM service name, i.e. a file name under /etc/pam.d."""
    if not isinstance(value, str):
        raise _bad(f"{name} must be a string")
    if (
        not 0 < len(value) <= 64
        or value[0] not in _ALNUM
        or not all(c in _SERVICE_CHARS for c in value)
    ):
        raise _bad(
            f"{name} {value[:64]!r} is not a valid PAM service name "
            "(1 to 64 letters, digits and _.+@-, starting with a letter or digit)"
        )
    return value


def validate_rhost(value: object, name: str = "rhost") -> "str | None":
    """The remote host PAM reports: an address or a name; absent for a local login."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _bad(f"{name} must be a string or null")
    if len(value) > MAX_RHOST_LEN or not value.isprintable() or " " in value:
        raise _bad(f"{name} must be at most {MAX_RHOST_LEN} printable characters, no spaces")
    return value


def validate_flag(value: object, name: str = "flag") -> bool:
    if not isinstance(value, bool):
        raise _bad(f"{name} must be true or false")
    return value


MAX_POLICY_TEXT = 48 * 1024
_BASE32 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
# Base32 spells 5 bits a character: a length leaving 1, 3 or 6 over a multiple of 8 ends
# part-way through a byte, and no key of whole bytes is written that way.
_NOT_WHOLE_BYTES = frozenset({1, 3, 6})


def validate_secret(value: object, name: str = "secret") -> str:
    """A TOTP key in base32 without padding: at least 80 bits, as older apps made them."""
    if not isinstance(value, str) or not 16 <= len(value) <= 128:
        raise _bad(f"{name} must be 16 to 128 base32 characters")
    if not all(c in _BASE32 for c in value):
        raise _bad(f"{name} must be base32 (A-Z, 2-7) without padding")
    if len(value) % 8 in _NOT_WHOLE_BYTES:
        raise _bad(
            f"{name} has {len(value)} base32 characters, which spell no whole number of "
            "bytes (a character is missing or extra)"
        )
    return value


def validate_algorithm(value: object, name: str = "algorithm") -> str:
    if value not in ("SHA1", "SHA256", "SHA512"):
        raise _bad(f"{name} must be SHA1, SHA256 or SHA512")
    return str(value)


def _whole(value: object, name: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _bad(f"{name} must be a whole number from {low} to {high}")
    return value


def validate_digits(value: object, name: str = "digits") -> int:
    return _whole(value, name, 6, 8)


def validate_period(value: object, name: str = "period") -> int:
    return _whole(value, name, 15, 120)


MAX_WINDOW = 10  # time steps either side of now: the policy's own upper bound


def validate_window(value: object, name: str = "window") -> int:
    return _whole(value, name, 0, MAX_WINDOW)


def validate_time_step(value: object, name: str = "used_step") -> int:
    return _whole(value, name, 0, 2**40)


def validate_expires(value: object, name: str = "expires") -> float:
    """When the requester stops waiting, on this host's CLOCK_MONOTONIC (in seconds).

    The hook and the daemon share the host's monotonic clock, which no one can set, so
    a request read after its sender gave up is recognised and not acted on.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 2.0**53:
        raise _bad(f"{name} must be a number of seconds on the monotonic clock")
    return float(value)


MAX_PAGE = 100  # listing entries per reply: a hundred of the largest fit well within a message


def validate_limit(value: object, name: str = "limit") -> int:
    return _whole(value, name, 1, MAX_PAGE)


def validate_code_list(value: object, name: str = "recovery_codes") -> "list[str]":
    if not isinstance(value, list) or len(value) > 20:
        raise _bad(f"{name} must be a list of at most 20 codes")
    return [validate_code(code, f"{name}[{i}]") for i, code in enumerate(value)]


def validate_policy_text(value: object, name: str = "text") -> str:
    """A policy file's content, sent by `twofactl policy check` to be validated."""
    if not isinstance(value, str):
        raise _bad(f"{name} must be a string")
    if len(value) > MAX_POLICY_TEXT:
        raise _bad(f"{name} must be at most {MAX_POLICY_TEXT} characters")
    return value


def validate_label(value: object, name: str = "name") -> str:
    """A file name to show in messages: printable, bounded."""
    if not isinstance(value, str) or not value or len(value) > 255 or not value.isprintable():
        raise _bad(f"{name} must be 1 to 255 printable characters")
    return value


# Each operation's fields: name -> (validator, required).
_USER = (validate_user, True)
_CODE = (validate_code, True)
_OPTIONAL_CODE = (validate_code, False)
_SERVICE = (validate_service, False)
_RHOST = (validate_rhost, False)

OPERATIONS: "dict[str, dict[str, tuple[Callable[..., Any], bool]]]" = {
    "ping": {},
    "check": {"user": _USER, "service": _SERVICE, "rhost": _RHOST},
    "verify": {
        "user": _USER,
        "code": _CODE,
        "service": _SERVICE,
        "rhost": _RHOST,
        "expires": (validate_expires, False),
    },
    "enroll.begin": {
        "user": _USER,
        "replace": (validate_flag, False),
        "code": _OPTIONAL_CODE,
    },
    "secret.show": {"user": _USER, "code": _CODE},
    "enroll.confirm": {"user": _USER, "code": _CODE},
    "status": {"user": _USER},
    "list": {"after": (validate_user, False), "limit": (validate_limit, False)},
    "disable": {"user": _USER, "code": _OPTIONAL_CODE},
    "unlock": {"user": _USER},
    "recovery.regenerate": {"user": _USER, "code": _OPTIONAL_CODE},
    "resync": {"user": _USER, "code1": _CODE, "code2": _CODE},
    "reload": {"force": (validate_flag, False)},
    "policy.check": {
        "text": (validate_policy_text, True),
        "name": (validate_label, False),
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
    },
    "diagnose": {},
}


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
        raise _bad(f"message exceeds {MAX_MESSAGE_BYTES} bytes")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("message is not valid UTF-8") from None
    try:
        obj = _jsoncodec.loads(text)
    except (ValueError, RecursionError):
        raise _bad("message is not a valid JSON object") from None
    if not isinstance(obj, dict):
        raise _bad("message must be a JSON object")
    version = obj.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:  # true == 1 in Python
        raise _bad(f"unsupported protocol version (this side speaks v={PROTOCOL_VERSION})")
    return obj


def _take_id(obj: "dict[str, Any]") -> "int | None":
    value = obj.get("id")
    if value is None:
        return None
    if type(value) is not int or not 0 <= value < 2**53:
        raise _bad("id must be a non-negative integer")
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
        raise _bad(f"unknown operation {op!r}" if isinstance(op, str) else "op must be a string")
    schema = OPERATIONS[op]
    unknown = sorted(set(fields) - set(schema))
    if unknown:
        raise _bad(f"{op}: unknown field(s) {', '.join(map(repr, unknown))}")
    clean: dict[str, Any] = {}
    for name, (validate, required) in schema.items():
        if fields.get(name) is None:
            if required:
                raise _bad(f"{op}: field {name!r} is required")
            continue
        value = validate(fields[name], name)
        if value is not None:
            clean[name] = value
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
                raise _bad(f"message exceeds {self._limit} bytes")
            line = bytes(self._pending[:end])
            del self._pending[: end + 1]
            yield line
        if len(self._pending) > self._limit:
            raise _bad(f"message exceeds {self._limit} bytes")

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole line."""
        return len(self._pending)
