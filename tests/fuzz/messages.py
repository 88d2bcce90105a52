"""Protocol messages: valid requests and replies, then bent every way a client could.

A request starts valid for its operation (every field of OPERATIONS filled with a
plausible value), then may have a field replaced by any JSON value, a required one
dropped, an unknown one added, its version or id changed, a key repeated; its text may
then be mutated byte by byte, made overlong, or replaced by random bytes outright.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from pam_twofa import protocol as p

from . import policies, typed, values

USERS = (
    "root",
    "nobody",
    "daemon",
    "alice",
    "bob",
    "jo.doe@corp",
    "CORP\\jo",
    "HOST$",
    "a",
    "x" * 256,
    "tfa0000",
)
SERVICES = ("sshd", "login", "su", "sudo", "cockpit", "twofa-test", "sshd-twofa-test", "a+b@c")
RHOSTS = (
    "127.0.0.1",
    "10.1.2.3",
    "192.0.2.7",
    "203.0.113.7",
    "::1",
    "::ffff:10.0.0.1",
    "fe80::1%eth0",
    "2001:db8::5",
    "host.example.org",
    "",
)
BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def user_name(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return rng.choice(USERS)
    chars = "abcdefghijklmnopqrstuvwxyz0123456789_.-@\\"
    return rng.choice("abcxyz") + "".join(rng.choices(chars, k=rng.randint(0, 20)))


def secret(rng: random.Random) -> str:
    return "".join(rng.choices(BASE32, k=rng.choice((16, 26, 32, 52, 103, 128))))


def _label(rng: random.Random) -> str:
    return rng.choice(("policy.yaml", "/etc/twofa/policy.yaml.new", "new policy", "ü.yaml"))


# A plausible value for each field name the protocol knows.
FIELD_VALUES: dict[str, Callable[[random.Random], Any]] = {
    "user": user_name,
    "after": user_name,
    "code": typed.code,
    "code1": typed.code,
    "code2": typed.code,
    "service": lambda rng: rng.choice(SERVICES),
    "rhost": lambda rng: rng.choice(RHOSTS),
    "replace": lambda rng: rng.random() < 0.5,
    "force": lambda rng: rng.random() < 0.5,
    "limit": lambda rng: rng.randint(1, p.MAX_PAGE),
    "text": lambda rng: policies.policy_text(rng, small=True),
    "name": _label,
    "secret": secret,
    "algorithm": lambda rng: rng.choice(("SHA1", "SHA256", "SHA512")),
    "digits": lambda rng: rng.randint(6, 8),
    "period": lambda rng: rng.choice((15, 30, 60, 120)),
    "window": lambda rng: rng.randint(0, p.MAX_WINDOW),
    "used_step": lambda rng: rng.randint(0, 2**40),
    "recovery_codes": lambda rng: [typed.recovery_code(rng) for _ in range(rng.randint(0, 20))],
    "expires": lambda rng: rng.choice((0, 1e6, 2.0**52, time.monotonic() + rng.uniform(-5, 60))),
    "dropin": lambda rng: {
        "name": rng.choice(("web-console.yaml", "a.yaml", "x_1-2.yaml")),
        "text": policies.policy_text(rng, small=True),
    },
}


def valid_request(rng: random.Random, op: str | None = None) -> dict[str, Any]:
    """A request object that decode_request accepts (most of the time: codes vary)."""
    op = op or rng.choice(list(p.OPERATIONS))
    obj: dict[str, Any] = {"v": p.PROTOCOL_VERSION, "op": op}
    for name, (_, required) in p.OPERATIONS[op].items():
        if required or rng.random() < 0.5:
            # A field this table does not know yet still gets a value of some kind.
            obj[name] = FIELD_VALUES.get(name, values.json_value)(rng)
    one_of = p.NEEDS_ONE_OF.get(op, ())
    if one_of and not any(name in obj for name in one_of):
        name = rng.choice(one_of)
        obj[name] = FIELD_VALUES.get(name, values.json_value)(rng)
    if rng.random() < 0.8:
        obj["id"] = rng.randint(0, 2**53 - 1)
    return obj


def _bent_value(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.05:
        return values.deep_nesting(rng)
    if roll < 0.1:
        return values.Raw(values.huge_digits(rng))
    return values.json_value(rng)


def bend(rng: random.Random, obj: dict[str, Any]) -> dict[str, Any]:
    """One to three structural changes to a message object."""
    obj = dict(obj)
    for _ in range(rng.randint(1, 3)):
        roll = rng.random()
        keys = list(obj)
        if roll < 0.35 and keys:
            obj[rng.choice(keys)] = _bent_value(rng)  # any type, in any field
        elif roll < 0.5 and keys:
            del obj[rng.choice(keys)]
        elif roll < 0.6:
            obj[rng.choice((values.text(rng, 12), "Op", "user ", "codes", "ID"))] = (
                values.json_value(rng)
            )
        elif roll < 0.7:
            obj["v"] = rng.choice((0, 2, -1, True, 1.0, "1", None, values.Raw("1e0"), 2**64))
        elif roll < 0.8:
            obj["id"] = rng.choice((-1, 2**53, 2**64, 1.5, "1", True, None, [], values.Raw("-0")))
        elif roll < 0.9:
            op = str(obj.get("op", "ping"))
            obj["op"] = rng.choice(
                (op.upper(), op + " ", " " + op, op + "\x00", "", values.text(rng))
            )
        elif keys:  # a field's valid value, mutated as text
            key = rng.choice(keys)
            if isinstance(obj[key], str):
                obj[key] = values.mutate_text(rng, obj[key])
    return obj


def request_line(rng: random.Random, bent: float = 0.45) -> bytes:
    """One request line (no newline) of any kind: valid, bent, mutated, overlong, random.

    `bent` is the share that is not left valid-shaped; a live daemon closes the
    connection after each line it refuses, so the live clients send fewer of those.
    """
    roll = rng.random()
    if roll < 0.07 * bent:
        return values.random_bytes(rng, 300)
    if roll < 0.08 * bent:
        return overlong_line(rng)
    obj = valid_request(rng)
    if roll < bent:
        obj = bend(rng, obj)
    data = values.encode(values.to_json(rng, obj))
    if rng.random() < bent / 3:
        data = values.mutate_bytes(rng, data)
    if rng.random() < 0.02:
        data = (
            rng.choice((b"", b" ", b"\xef\xbb\xbf", b"\t")) + data + rng.choice((b"", b" ", b"\r"))
        )
    return data


def overlong_line(rng: random.Random) -> bytes:
    """A message at, just under or just over the 64 KiB limit (or far beyond it)."""
    size = p.MAX_MESSAGE_BYTES + rng.choice((-1, 0, 1, 2, 4096, p.MAX_MESSAGE_BYTES))
    head = b'{"v":1,"op":"verify","user":"root","code":"'
    tail = b'"}'
    return head + b"1" * max(0, size - len(head) - len(tail)) + tail


def valid_reply(rng: random.Random) -> dict[str, Any]:
    """A reply object as twofad sends them: data, or an error with a stable code."""
    obj: dict[str, Any] = {"v": p.PROTOCOL_VERSION}
    if rng.random() < 0.6:
        obj["ok"] = True
        obj["data"] = {
            values.text(rng, 10): values.json_value(rng) for _ in range(rng.randint(0, 5))
        }
    else:
        obj["ok"] = False
        code = rng.choice(sorted(p.ERROR_CODES)) if rng.random() < 0.8 else values.text(rng, 10)
        obj["error"] = {"code": code, "message": values.text(rng)}
    if rng.random() < 0.8:
        obj["id"] = rng.randint(0, 2**53 - 1)
    return obj


def reply_line(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.03:
        return values.random_bytes(rng, 300)
    obj = valid_reply(rng)
    if roll < 0.5:
        obj = bend(rng, obj)
        if rng.random() < 0.3 and isinstance(obj.get("error"), dict):
            obj["error"] = bend(rng, obj["error"])
    data = values.encode(values.to_json(rng, obj))
    if rng.random() < 0.15:
        data = values.mutate_bytes(rng, data)
    return data


def stream(rng: random.Random) -> tuple[int, list[bytes]]:
    """A line limit and the chunks a connection delivers: lines split anywhere.

    Small limits are as good as the real one for finding an off-by-one, and cheap.
    """
    limit = rng.choice((p.MAX_MESSAGE_BYTES, 1, 2, 8, 16, 64, 100, 255))
    pieces: list[bytes] = []
    for _ in range(rng.randint(0, 6)):
        roll = rng.random()
        if roll < 0.6:
            pieces.append(
                request_line(rng)
                if limit == p.MAX_MESSAGE_BYTES
                else b"x" * rng.randint(0, 2 * limit)
            )
        elif roll < 0.8:
            pieces.append(values.random_bytes(rng, 3 * limit if limit < 100 else 200))
        else:
            pieces.append(b"")
    data = b"\n".join(pieces) + (b"\n" if rng.random() < 0.7 else b"")
    if limit == p.MAX_MESSAGE_BYTES and rng.random() < 0.02:
        data = overlong_line(rng) + b"\n" + data
    chunks: list[bytes] = []
    while data:
        size = rng.choice((1, 2, 3, 7, 64, 4096, 65536, len(data)))
        chunks.append(data[:size])
        data = data[size:]
    if rng.random() < 0.1:
        chunks.insert(rng.randint(0, len(chunks)), b"")
    return limit, chunks
