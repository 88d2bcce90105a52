"""JSON for the wire, from the C accelerator `_json` alone.

`import json` costs a login several milliseconds, mostly for the `re` module its
pure-Python fallbacks need; the PAM hook pays every import at every login.  The C
scanner and encoder that json itself uses are all a message needs, so this
module drives them directly.  Same grammar, same speed, none of the imports.
"""

from _json import encode_basestring, make_encoder, make_scanner

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_WHITESPACE = " \t\n\r"


class _ScannerContext:
    """The attributes json.JSONDecoder would hand the C scanner."""

    strict = True
    object_hook = None
    parse_float = float
    parse_int = int

    def __init__(self) -> None:
        self.memo: dict[str, str] = {}

    @staticmethod
    def object_pairs_hook(pairs: "list[tuple[str, Any]]") -> "dict[str, Any]":
        obj = dict(pairs)
        if len(obj) != len(pairs):
            raise ValueError("duplicate key in object")
        return obj

    @staticmethod
    def parse_constant(name: str) -> "Any":
        raise ValueError(f"{name} is not valid JSON")


_scan = make_scanner(_ScannerContext())  # type: ignore[arg-type]  # duck-typed in C


def loads(text: str) -> "Any":
    """Parse one JSON document; ValueError if it is not exactly one."""
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except (StopIteration, SystemError):
        # The C scanner builds its JSONDecodeError from json.decoder, which we do not
        # import; without it a syntax error surfaces as SystemError instead.
        raise ValueError("not valid JSON") from None
    if text[end:].strip(_WHITESPACE):
        raise ValueError("extra data after the JSON value")
    return value


def _unserializable(value: "Any") -> "Any":
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# The C encoder json.dumps itself uses, compact, refusing NaN and infinities.
_encode = make_encoder(
    None, _unserializable, encode_basestring, None, ":", ",", False, False, False
)


def dumps(value: "Any") -> str:
    """Compact JSON for dicts, lists, strings, numbers, booleans and None."""
    return "".join(_encode(value, 0))
