"""What a person types at the prompt, and what an administrator writes in a PAM file.

Codes start as real ones (six to eight digits, a recovery code `k7pq-3xmd-9wtr`, a
google-authenticator scratch code), then get what hands and keyboards add: spaces,
dashes, tabs, full-width or Arabic-Indic digits, look-alike letters, a password in
front, control characters, a surrogate, far too many characters.
"""

from __future__ import annotations

import random

from . import values

RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
LOOKALIKES = "oOiIlLuU"
PAM_OPTIONS = ("socket", "fail", "timeout", "prompt", "debug", "single_prompt")
OPTION_VALUES = {
    "socket": ("/run/twofad/twofad.sock", "", "relative.sock", "/tmp/x y.sock", "\x00"),
    "fail": ("secure", "open", "", "Open", "open ", "closed"),
    "timeout": (
        "5",
        "0",
        "-1",
        "300",
        "300.0001",
        "301",
        "1e-400",
        "1e400",
        "nan",
        "inf",
        "-inf",
        " 5 ",
        "5_0",
        "0x10",
        "٣",
        "５",
        "",
        "1" * 5000,
        "0." + "0" * 400 + "1",
    ),
    "prompt": ("Code: ", "Code:", "", " ", "Verification code", "\n", "%s%n"),
}


def totp_code(rng: random.Random) -> str:
    return "".join(rng.choices(values.DIGITS, k=rng.choice((6, 6, 6, 7, 8))))


def recovery_code(rng: random.Random) -> str:
    raw = "".join(rng.choices(RECOVERY_ALPHABET, k=12))
    return "-".join(raw[i : i + 4] for i in range(0, 12, 4))


def _as_typed(rng: random.Random, code: str) -> str:
    """A code the way someone might type or paste it."""
    chars = []
    for char in code:
        roll = rng.random()
        if roll < 0.05 and char.isdigit():
            char = values.ODD_DIGITS[int(char) % len(values.ODD_DIGITS)]
        elif roll < 0.08:
            char = char.upper()
        elif roll < 0.1 and char in "01":
            char = rng.choice(LOOKALIKES)
        chars.append(char)
        if rng.random() < 0.05:
            chars.append(rng.choice((" ", "-", "\t", "\xa0", "\u3000", "  ")))
    typed = "".join(chars)
    if rng.random() < 0.1:
        typed = rng.choice((" ", "\t", "\n", "\r\n")) + typed + rng.choice((" ", "\n", "\r"))
    return typed


def code(rng: random.Random) -> str:
    """A code as typed: mostly plausible, sometimes anything at all."""
    roll = rng.random()
    if roll < 0.35:
        base = totp_code(rng)
    elif roll < 0.55:
        base = recovery_code(rng)
    elif roll < 0.6:
        base = "".join(rng.choices(values.DIGITS, k=8))  # a scratch code
    elif roll < 0.85:
        return values.text(rng, 24)
    elif roll < 0.9:
        return values.text(rng, 128)
    elif roll < 0.93:
        return "".join(rng.choices(values.DIGITS, k=rng.choice((129, 512, 4096))))
    else:
        return values.mutate_text(rng, totp_code(rng))
    return _as_typed(rng, base)


def password_and_code(rng: random.Random) -> str:
    """A single-prompt answer: a password, then (usually) the code."""
    password = values.text(rng, 30)
    if rng.random() < 0.2:
        return password
    return password + code(rng)


def answer(rng: random.Random) -> str | bytes | None:
    """One answer to a prompt: text, the raw bytes PAM hands over, or nothing at all."""
    roll = rng.random()
    if roll < 0.05:
        return None  # the conversation failed (the client hung up)
    if roll < 0.15:
        return values.mutate_bytes(rng, values.encode(code(rng)))
    if roll < 0.45:
        return password_and_code(rng)
    return code(rng)


def pam_arguments(rng: random.Random) -> list[str]:
    """The hook's arguments from a PAM line, known and unknown, well and badly written."""
    arguments = []
    for _ in range(rng.randint(0, 6)):
        roll = rng.random()
        if roll < 0.6:
            name = rng.choice(PAM_OPTIONS)
            if name in OPTION_VALUES and rng.random() < 0.85:
                choices = OPTION_VALUES[name]
                value = rng.choice(choices) if rng.random() < 0.7 else values.text(rng, 20)
                arguments.append(f"{name}={value}")
            else:
                arguments.append(name if rng.random() < 0.8 else name + "=" + values.text(rng, 5))
        elif roll < 0.8:
            arguments.append(values.text(rng, 30))
        else:
            arguments.append(values.mutate_text(rng, rng.choice(PAM_OPTIONS) + "=x"))
    return arguments
