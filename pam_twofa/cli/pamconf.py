"""PAM service files read as libpam reads them, for `twofactl doctor`.

A service's auth stack, with @include, include and substack expanded; a line's words,
bracketed controls such as [success=1 default=ignore] kept whole; which line is our hook;
and what a control does: how far a success jumps, whether every refusal of the hook
fails the login. doctor's checks judge a stack from these; nothing here judges.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

HOOK_NAME = "pam_twofa/hook.py"


@dataclass(frozen=True)
class Line:
    """One auth line of a stack, and where it was written (FILE:LINE), for the messages."""

    control: str
    module: str
    arguments: tuple[str, ...]
    origin: str


def auth_lines(pam_dir: str, service: str, depth: int = 0) -> list[Line]:
    """The auth lines of a PAM service, with @include and include/substack expanded."""
    path = os.path.join(pam_dir, service)
    if depth > 8:
        return []
    with open(path, encoding="utf-8") as stack:
        text = stack.read()
    lines: list[Line] = []
    for number, raw in enumerate(text.splitlines(), 1):
        words = split_words(raw.split("#", 1)[0])
        if not words:
            continue
        if words[0] == "@include" and len(words) > 1:
            lines += auth_lines(pam_dir, words[1], depth + 1)
            continue
        kind = words[0].lstrip("-").lower()
        if kind != "auth" or len(words) < 3:
            continue
        control, module = words[1], words[2]
        if control in ("include", "substack"):
            lines += auth_lines(pam_dir, module, depth + 1)
            continue
        lines.append(Line(control, module, tuple(words[3:]), f"{path}:{number}"))
    return lines


def split_words(text: str) -> list[str]:
    """Split a PAM line, keeping [bracketed controls or arguments] whole."""
    words: list[str] = []
    current = ""
    depth = 0
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(0, depth - 1)
        if char.isspace() and depth == 0:
            if current:
                words.append(current)
            current = ""
        else:
            current += char
    if current:
        words.append(current)
    return words


def is_hook(line: Line) -> bool:
    """pam_python.so running our hook.py, from wherever it is installed."""
    return line.module.endswith("pam_python.so") and any(
        argument.endswith(HOOK_NAME) for argument in line.arguments[:1]
    )


ENDS = 10**6  # a success that ends the stack skips everything after it


def lines_skipped_on_success(control: str) -> int | None:
    """How many following lines a success skips (ENDS: all of them), None if it goes on."""
    if control == "sufficient":
        return ENDS
    if control.startswith("["):
        for pair in control.strip("[]").split():
            name, _, action = pair.partition("=")
            if name == "success":
                if action == "done":
                    return ENDS
                if action.isdigit():
                    return int(action)
    return None


# What the hook returns when it refuses: a wrong code, or twofad unreachable.
HOOK_FAILURES = ("auth_err", "authinfo_unavail", "service_err")


def failure_stops_login(control: str) -> bool:
    """Whether every refusal of the hook fails the stack, as 'required' makes it."""
    if control in ("required", "requisite"):
        return True
    if not control.startswith("["):
        return False
    # Linux-PAM: a return value a bracketed control does not name acts as 'bad'.
    actions = dict(pair.partition("=")[::2] for pair in control.strip("[]").split())
    default = actions.get("default", "bad")
    return all(actions.get(value, default) in ("bad", "die") for value in HOOK_FAILURES)
