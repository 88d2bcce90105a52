"""Reading the secrets other TOTP modules left behind, so phones already set up keep working.

google-authenticator-libpam keeps `~/.google_authenticator`: the base32 secret on the
first line, option lines starting with `"`, then 8-digit emergency scratch codes.
pam_oath keeps one `users.oath` file: `HOTP/T30[/digits] user pin hexsecret ...`.
Only time-based (TOTP) entries can be imported; counter-based ones are refused with
the reason, because twofad does not do HOTP.
"""

from __future__ import annotations

import base64
import binascii
import os
import pwd
import time
from dataclasses import dataclass, field

from ..vocabulary import MAX_PERIOD, MAX_WINDOW, MIN_PERIOD
from . import files
from .asuser import Person

MAX_FILE_BYTES = 64 * 1024
MAX_OATH_BYTES = 16 * 1024 * 1024  # ~200,000 accounts' lines
_BASE32 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


class Unusable(Exception):
    """This entry cannot be imported; the message says why, without any secret in it."""


@dataclass
class Entry:
    """One account's secret as another module kept it, ready to send to twofad."""

    user: str
    secret: str
    algorithm: str = "SHA1"
    digits: int = 6
    period: int = 30
    recovery_codes: list[str] = field(default_factory=list)
    window: int | None = None  # steps either side of now; None: the policy's
    used_step: int | None = None  # the last time step the old module accepted
    notes: list[str] = field(default_factory=list)


# --- google-authenticator ----------------------------------------------------------------


def parse_google_authenticator(user: str, text: str) -> Entry:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise Unusable("the file is empty")
    secret = lines[0].replace(" ", "").upper().rstrip("=")
    if not 16 <= len(secret) <= 128 or not set(secret) <= _BASE32:
        raise Unusable("the first line is not a base32 secret of at least 80 bits")
    if len(secret) % 8 in (1, 3, 6):  # ends part-way through a byte: a character lost
        raise Unusable("the secret's length is not that of a whole key (a character is missing?)")
    entry = Entry(user, secret)
    for line in lines[1:]:
        if line.startswith('"'):
            _google_option(entry, line[1:].split())
        elif line.isdigit() and len(line) == 8:
            entry.recovery_codes.append(line)
        else:
            raise Unusable("a line is neither an option nor an 8-digit scratch code")
    if len(entry.recovery_codes) > 20:
        entry.notes.append(f"only the first 20 of {len(entry.recovery_codes)} scratch codes kept")
        entry.recovery_codes = entry.recovery_codes[:20]
    return entry


def _google_option(entry: Entry, words: list[str]) -> None:
    if not words:
        return
    name = words[0]
    if name == "HOTP_COUNTER":
        raise Unusable("counter-based (HOTP) codes are not supported; only time-based (TOTP)")
    if name == "STEP_SIZE":
        try:
            entry.period = int(words[1])
        except (IndexError, ValueError):
            raise Unusable("STEP_SIZE is not a number") from None
        if not MIN_PERIOD <= entry.period <= MAX_PERIOD:
            raise Unusable(
                f"STEP_SIZE {entry.period} is outside {MIN_PERIOD} to {MAX_PERIOD} seconds"
            )
    elif name == "WINDOW_SIZE":
        _google_window(entry, words[1:])
    elif name == "DISALLOW_REUSE":
        # The time steps (time / STEP_SIZE) of codes already used: none may work again.
        steps = [int(word) for word in words[1:] if word.isdigit()]
        entry.used_step = max(steps, default=None)


def _google_window(entry: Entry, words: list[str]) -> None:
    """WINDOW_SIZE counts the codes accepted around now: 3 is now and one either side."""
    if not words or not words[0].isdigit() or not 1 <= int(words[0]) <= 100:
        raise Unusable("WINDOW_SIZE is not a number from 1 to 100")
    size = int(words[0])
    either_side = (size - 1) // 2
    entry.window = min(either_side, MAX_WINDOW)
    if either_side > MAX_WINDOW:
        entry.notes.append(f"WINDOW_SIZE {size} narrowed to {MAX_WINDOW} steps either side")


def read_google_authenticator(user: str, home_root: str | None = None) -> Entry:
    """Read `user`'s ~/.google_authenticator with their own rights (files.read_own_file).

    As pam_google_authenticator itself does: a file they could not read, or one reached
    through a link of theirs into a directory they cannot enter, is not read for them.
    Only a regular file they own counts; a directory, FIFO or device in its place is
    skipped with the reason and never opened, and a file is read only up to a bound.
    """
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise Unusable("no such user") from None
    home = os.path.join(home_root, user) if home_root else entry.pw_dir
    path = os.path.join(home, ".google_authenticator")
    try:
        data = files.read_own_file(path, Person.of(entry), MAX_FILE_BYTES)
    except files.FileRefused as exc:
        message = str(exc)
        if message.endswith(f"larger than {MAX_FILE_BYTES} bytes"):
            message = f"{path} is too large to be a google-authenticator file"
        raise Unusable(message) from None
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise Unusable(f"{path} is not a text file") from None
    return parse_google_authenticator(user, text)


def users_with_google_authenticator(home_root: str | None = None) -> list[str]:
    """Accounts holding a .google_authenticator of their own.

    In each account's home directory (as NSS gives it, so /srv/... and LDAP homes
    count), or in ROOT/NAME when homes were restored elsewhere. A file not owned by
    the account, such as one in a home several system accounts share, is not theirs.
    This only looks (lstat); whatever is found is read with its user's rights, and
    anything odd in its place is reported as skipped.
    """
    found = []
    for entry in pwd.getpwall():
        home = os.path.join(home_root, entry.pw_name) if home_root else entry.pw_dir
        try:
            info = os.lstat(os.path.join(home, ".google_authenticator"))
        except OSError:
            continue
        if info.st_uid == entry.pw_uid:
            found.append(entry.pw_name)
    return sorted(set(found))


# --- pam_oath ------------------------------------------------------------------------


# pam_oath's token types (liboath's parse_type), exactly: TYPE -> (period, digits).
# HOTP, HOTP/E and HOTP/E/N are counter-based, and anything else pam_oath refuses too.
_OATH_TIME_TYPES = {
    f"HOTP/T{period}{suffix}": (period, digits)
    for period in (30, 60)
    for suffix, digits in (("", 6), ("/6", 6), ("/7", 7), ("/8", 8))
}
_OATH_COUNTER_TYPES = frozenset(("HOTP", "HOTP/E", "HOTP/E/6", "HOTP/E/7", "HOTP/E/8"))
_OATH_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SL"  # local time, as pam_oath writes it


def read_oath(path: str) -> tuple[list[Entry], list[tuple[str, str]]]:
    """Read and parse a users.oath named by the caller: only a file of root's or theirs.

    Whoever can write that file picks everyone's secrets, so it is read through
    files.read_callers_file: no symbolic link and no directory of anyone else's on
    the way, a regular file (a FIFO is never opened), at most MAX_OATH_BYTES.
    """
    try:
        data = files.read_callers_file(path, MAX_OATH_BYTES)
    except files.FileRefused as exc:
        raise Unusable(str(exc)) from None
    try:
        return parse_oath(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise Unusable(f"{path} is not UTF-8 text") from None


def parse_oath(text: str) -> tuple[list[Entry], list[tuple[str, str]]]:
    """Entries of a users.oath file, and (user or line, reason) for those skipped.

    pam_oath uses the first line for a user, so a later one is skipped, never merged.
    """
    entries: list[Entry] = []
    skipped: list[tuple[str, str]] = []
    first_line: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        label = words[1] if len(words) > 1 else f"line {number}"
        if label in first_line:
            reason = f"line {number}: a second line for this user (pam_oath uses line "
            skipped.append((label, reason + f"{first_line[label]})"))
            continue
        first_line[label] = number
        try:
            entries.append(_oath_entry(words))
        except Unusable as exc:
            skipped.append((label, f"line {number}: {exc}"))
    return entries, skipped


def _oath_entry(words: list[str]) -> Entry:
    if len(words) < 4:
        raise Unusable("expected: TYPE USER PIN SECRET")
    kind, user, pin, hex_secret = words[:4]
    if kind in _OATH_COUNTER_TYPES:
        raise Unusable(f"{kind!r} is counter-based (HOTP); only HOTP/T30 and HOTP/T60 (TOTP) are")
    if kind not in _OATH_TIME_TYPES:
        raise Unusable(f"{kind!r} is not a pam_oath type (HOTP/T30, HOTP/T60, with /6, /7 or /8)")
    period, digits = _OATH_TIME_TYPES[kind]
    try:
        raw = binascii.unhexlify(hex_secret)
    except (binascii.Error, ValueError):
        raise Unusable("the secret is not hexadecimal") from None
    if len(raw) < 10:
        raise Unusable("the secret is shorter than 80 bits")
    secret = base64.b32encode(raw).decode().rstrip("=")
    entry = Entry(user, secret, digits=digits, period=period)
    if pin not in ("-", "+"):
        entry.notes.append("its PIN is not kept: the password module asks for the password")
    if len(words) >= 7:  # ... COUNTER LAST_OTP TIME: when pam_oath last accepted a code
        try:
            used_at = time.mktime(time.strptime(words[6], _OATH_TIME_FORMAT))
        except (ValueError, OverflowError):
            raise Unusable(f"the time of the last code, {words[6]!r}, is not a date") from None
        entry.used_step = max(0, int(used_at) // period)
    return entry
