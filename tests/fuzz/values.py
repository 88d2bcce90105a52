"""Text, JSON values and bytes of every awkward kind, and the ways to bend them.

Everything takes a `random.Random`, so a seed fixes a run.  JSON is written by hand
here rather than by `json.dumps`, which could never produce what a hostile client
sends: duplicate keys, lone surrogate escapes, NaN, numbers with thousands of digits,
raw control characters, trailing commas.
"""

from __future__ import annotations

import random
import sys
import unicodedata
from typing import Any

# --- characters ----------------------------------------------------------------------

# Characters that have tripped up parsers of codes, names and lines somewhere.
SPECIAL_CHARS = (
    "\x00",
    "\t",
    "\n",
    "\r",
    "\x0b",
    "\x0c",
    "\x1b",
    "\x7f",
    "\x85",  # NEL: a line break to str.splitlines, not to JSON
    "\xa0",  # no-break space: whitespace to str.split
    "\u1680",
    "\u2000",
    "\u200b",  # zero-width space: not whitespace, not printable
    "\u200d",
    "\u2028",
    "\u2029",
    "\u202e",  # right-to-left override
    "\u3000",  # ideographic space
    "\ufeff",  # byte order mark
    "\ufffd",
    "\uffff",
    "\U0010ffff",
    "\ud800",  # lone surrogates: legal in a Python str, not in UTF-8
    "\udbff",
    "\udc00",
    "\udfff",
    "\u0130",  # İ: lower() makes two characters of it
    "\ufb01",  # the ligature fi: NFKC makes two
    "\ufdfa",  # NFKC makes eighteen characters of this one
    "\u0301",  # a combining accent with nothing to combine with
    "\u01c5",  # a titlecase letter
    "\\",
    '"',
    "'",
    "-",
    "$",
    "/",
    "%",
    "@",
    ":",
    "#",
    "&",
    "*",
    "!",
    "|",
    ">",
    "{",
    "}",
    "[",
    "]",
    ",",
    "?",
    "=",
)

# Digits that are not ASCII: full-width (NFKC folds them), Arabic-Indic and Devanagari
# (str.isdigit says yes, NFKC leaves them), superscripts and circled ones (NFKC folds).
DIGITS = "0123456789"
ODD_DIGITS = "０１２３４５６７８９٠١٢٣٤٥٦٧٨٩०१२३४५६७८९²³¹⁰④⑦⓪𝟎𝟗"

_CATEGORIES: list[list[int]] | None = None
_PRINTABLE_ASCII = "".join(map(chr, range(0x20, 0x7F)))
_ASCII = "".join(map(chr, range(0x80)))


def _categories() -> list[list[int]]:
    """A sample of code points for every Unicode general category, built once."""
    global _CATEGORIES
    if _CATEGORIES is None:
        table: dict[str, list[int]] = {}
        # Every code point of the first planes, then a stride through the rest: every
        # category is represented and the table stays small.
        for code in [*range(0x3400), *range(0x3400, 0x110000, 7)]:
            table.setdefault(unicodedata.category(chr(code)), []).append(code)
        _CATEGORIES = [table[name] for name in sorted(table)]
    return _CATEGORIES


def any_char(rng: random.Random) -> str:
    """A character of a random general category (Lu ... Cs, Co, Cn), or a special one."""
    if rng.random() < 0.3:
        return rng.choice(SPECIAL_CHARS)
    return chr(rng.choice(rng.choice(_categories())))


def text(rng: random.Random, max_len: int = 40) -> str:
    """A string of some flavour: ASCII, digits, every category, or a mix."""
    length = _length(rng, max_len)
    flavour = rng.random()
    if flavour < 0.25:
        return "".join(rng.choices(_PRINTABLE_ASCII, k=length))
    if flavour < 0.35:
        return "".join(rng.choices(DIGITS + ODD_DIGITS + " -", k=length))
    if flavour < 0.45:
        return "".join(rng.choices(_ASCII, k=length))
    return "".join(any_char(rng) for _ in range(length))


def _length(rng: random.Random, max_len: int) -> int:
    """Mostly short, sometimes at the top of the range."""
    roll = rng.random()
    if roll < 0.05:
        return 0
    if roll < 0.1:
        return max_len
    return min(max_len, int(rng.expovariate(1 / 8)) + 1)


def mutate_text(rng: random.Random, value: str) -> str:
    """Insert, delete, replace or repeat a few characters of `value`."""
    chars = list(value)
    for _ in range(rng.randint(1, 3)):
        where = rng.randint(0, len(chars))
        roll = rng.random()
        if roll < 0.4:
            chars[where:where] = [any_char(rng) for _ in range(rng.randint(1, 3))]
        elif roll < 0.6 and chars:
            del chars[where : where + rng.randint(1, 3)]
        elif roll < 0.8 and chars:
            chars[min(where, len(chars) - 1)] = any_char(rng)
        elif chars:
            piece = chars[where : where + rng.randint(1, 4)]
            chars[where:where] = piece * rng.randint(1, 20)
    return "".join(chars)


# --- numbers -------------------------------------------------------------------------

INTERESTING_INTS = (
    0,
    1,
    -1,
    2,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
    14,
    15,
    16,
    20,
    21,
    30,
    31,
    60,
    99,
    100,
    101,
    120,
    121,
    127,
    128,
    255,
    256,
    1000,
    1001,
    65535,
    65536,
    86400,
    2**31 - 1,
    2**31,
    2**32,
    2**40,
    2**40 + 1,
    2**53 - 1,
    2**53,
    2**63 - 1,
    2**63,
    2**64,
    -(2**63),
    10**100,
)
# Number spellings that are not what they seem: exponent overflow, negative zero,
# digits beyond Python's int-from-string limit, leading zeros, bare dots.
NUMBER_SPELLINGS = (
    "1e400",
    "-1e400",
    "1E-400",
    "-0",
    "-0.0",
    "0.0",
    "1.0",
    "1e0",
    "6.0",
    "1E+2",
    "0.1e1",
    "4.9e-324",
    "1.7976931348623157e308",
    "01",
    "00",
    "1.",
    ".5",
    "+1",
    "0x10",
    "NaN",
    "Infinity",
    "-Infinity",
    "1_000",
)


def huge_digits(rng: random.Random) -> str:
    """A number with more digits than int() will read from a string (4300 by default)."""
    limit = sys.get_int_max_str_digits() or 4300
    return "9" * rng.choice((limit - 1, limit, limit + 1, limit * 3))


def number_text(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.5:
        return str(rng.choice(INTERESTING_INTS))
    if roll < 0.8:
        return rng.choice(NUMBER_SPELLINGS)
    if roll < 0.97:
        return repr(rng.uniform(-1e6, 1e6))
    return huge_digits(rng)


# --- JSON values and their text ------------------------------------------------------


class Raw(str):
    """JSON text to be written as it is (a number spelling, a literal, garbage)."""


def json_value(rng: random.Random, depth: int = 0) -> Any:
    """A value of any JSON type (and some that only look like one), nested a little."""
    roll = rng.random()
    if roll < 0.1:
        return None
    if roll < 0.2:
        return rng.random() < 0.5
    if roll < 0.35:
        return rng.choice(INTERESTING_INTS)
    if roll < 0.42:
        return Raw(number_text(rng))
    if roll < 0.47:
        return rng.uniform(-1e9, 1e9)
    if roll < 0.75 or depth > 3:
        return text(rng)
    if roll < 0.87:
        return [json_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {text(rng, 8): json_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def deep_nesting(rng: random.Random) -> Raw:
    """Arrays or objects nested far beyond any recursion limit."""
    depth = rng.choice((100, 1000, 10_000, 30_000))
    if rng.random() < 0.5:
        return Raw("[" * depth + "]" * depth)
    return Raw('{"a":' * depth + "1" + "}" * depth)


_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b"}


def _string_text(rng: random.Random, value: str) -> str:
    """A JSON string, each character written plainly or as an escape, at random.

    Lone surrogates can only be written as \\u escapes; raw control characters are
    sometimes left raw, which strict JSON refuses.
    """
    out = ['"']
    escape_all = rng.random() < 0.1
    for char in value:
        code = ord(char)
        if escape_all or (0xD800 <= code <= 0xDFFF and rng.random() < 0.9):
            if code > 0xFFFF:
                code -= 0x10000
                out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
            else:
                out.append(f"\\u{code:04x}")
        elif char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char] if rng.random() < 0.97 else char)
        elif code < 0x20 and rng.random() < 0.97:
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _space(rng: random.Random) -> str:
    return "" if rng.random() < 0.9 else rng.choice((" ", "\t", "\r", "  ", " \r\t"))


def to_json(rng: random.Random, value: Any, *, duplicates: bool = True) -> str:
    """`value` as JSON text, with random spacing and escapes; maybe a key twice."""
    if isinstance(value, Raw):
        return str(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else "NaN"
    if isinstance(value, str):
        return _string_text(rng, value)
    if isinstance(value, list):
        items = [to_json(rng, item, duplicates=duplicates) for item in value]
        return "[" + _space(rng) + ("," + _space(rng)).join(items) + _space(rng) + "]"
    if isinstance(value, dict):
        pairs = [
            _string_text(rng, str(key)) + _space(rng) + ":" + _space(rng) + to_json(rng, item)
            for key, item in value.items()
        ]
        if duplicates and pairs and rng.random() < 0.03:
            pairs.append(rng.choice(pairs))  # a key given twice
        return "{" + _space(rng) + ("," + _space(rng)).join(pairs) + _space(rng) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


# --- bytes ---------------------------------------------------------------------------

# Byte sequences that are not UTF-8, or only barely: truncated sequences, an encoded
# surrogate, an overlong NUL, beyond U+10FFFF, a BOM, bytes that never occur.
BAD_UTF8 = (
    b"\xc3",
    b"\xe2\x82",
    b"\xf0\x9f\x98",
    b"\xed\xa0\x80",
    b"\xc0\x80",
    b"\xc1\xbf",
    b"\xe0\x80\xaf",
    b"\xf4\x90\x80\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\xef\xbb\xbf",
    b"\xfe",
    b"\xff",
    b"\x80",
    b"\xbf",
)
INTERESTING_BYTES = (b"\x00", b"\n", b"\r", b"\r\n", b"\t", b'"', b"\\", b"{", b"}", b",", b":")


def random_bytes(rng: random.Random, max_len: int = 200) -> bytes:
    return rng.randbytes(_length(rng, max_len))


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """One to four byte-level edits: flips, insertions, deletions, repeats, truncation."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        where = rng.randint(0, len(buf))
        roll = rng.random()
        if roll < 0.15 and buf:
            index = min(where, len(buf) - 1)
            buf[index] ^= 1 << rng.randint(0, 7)
        elif roll < 0.3:
            buf[where:where] = rng.choice(BAD_UTF8)
        elif roll < 0.45:
            buf[where:where] = rng.choice(INTERESTING_BYTES)
        elif roll < 0.55:
            buf[where:where] = rng.randbytes(rng.randint(1, 8))
        elif roll < 0.7 and buf:
            del buf[where : where + rng.randint(1, 8)]
        elif roll < 0.8 and buf:
            piece = buf[where : where + rng.randint(1, 16)]
            buf[where:where] = piece * rng.randint(1, 50)
        elif roll < 0.9:
            del buf[where:]  # truncated, maybe inside a UTF-8 sequence
        elif buf:
            index = min(where, len(buf) - 1)
            buf[index] = rng.randint(0, 255)
    return bytes(buf)


def encode(value: str) -> bytes:
    """UTF-8, with any lone surrogate written as the (invalid) bytes it would take."""
    return value.encode("utf-8", "surrogatepass")
