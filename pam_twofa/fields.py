"""Each field of a request, validated: its type, its bounds, the characters it may hold.

A daemon that acts on a field has seen it pass one of these first, so a user name is
never a path or an option, a code never a control character, a key never a wrong
length.  The bounds are the vocabulary's, so the policy file, the commands and the
wire agree on them.  Each validator returns the value as the daemon will use it, or
raises BadRequest naming the field.
"""

from .errors import BadRequest
from .vocabulary import (
    ALGORITHMS,
    MAX_DEVICE_NAME,
    MAX_DIGITS,
    MAX_DROPIN_NAME,
    MAX_EMAIL_ADDRESS,
    MAX_PERIOD,
    MAX_POLICY_BYTES,
    MAX_WINDOW,
    MIN_DIGITS,
    MIN_PERIOD,
)

_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_USER_CHARS = _ALNUM | frozenset("_.@-\\")
_SERVICE_CHARS = _ALNUM | frozenset("_.+@-")
MAX_USER_LEN = 256
MAX_CODE_LEN = 128
MAX_RHOST_LEN = 255
_LOCAL_PART_CHARS = _ALNUM | frozenset("!#$%&'*+-/=?^_`{|}~.")
_LABEL_CHARS = _ALNUM | frozenset("-")
_DROPIN_CHARS = _ALNUM | frozenset("._-")
MAX_GROUP_LEN = 256


def validate_user(value: object, name: str = "user") -> str:
    """A login name as NSS may hand it over (local, LDAP or SSSD: `jo.doe@corp`;
    winbind: `CORP\\jo`).

    A leading dash could pass for an option and a slash for a path, so neither is
    allowed; a trailing `$` stays possible for Samba machine accounts.
    """
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    body = value[:-1] if value.endswith("$") else value
    if not body or len(value) > MAX_USER_LEN:
        raise BadRequest(f"{name} must be 1 to {MAX_USER_LEN} characters")
    if body[0] in "-.@\\" or not all(c in _USER_CHARS for c in body):
        raise BadRequest(f"{name} {value!r} is not a valid user name")
    return value


def validate_group(value: object, name: str = "group") -> str:
    """A group name: looser than a user name, since directory groups such as
    'domain admins' have spaces; never ':' or ',' (the separators of /etc/group), nor a
    space at either end that would make two names look the same."""
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    if not 1 <= len(value) <= MAX_GROUP_LEN:
        raise BadRequest(f"{name} must be 1 to {MAX_GROUP_LEN} characters")
    if not value.isprintable() or value != value.strip() or ":" in value or "," in value:
        raise BadRequest(f"{name} {value!r} is not a valid group name")
    return value


def validate_code(value: object, name: str = "code") -> str:
    """A TOTP or recovery code as typed; the daemon normalises it, this only bounds it."""
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    if not value or len(value) > MAX_CODE_LEN:
        raise BadRequest(f"{name} must be 1 to {MAX_CODE_LEN} characters")
    if not value.isprintable():
        raise BadRequest(f"{name} contains control characters")
    return value


def validate_service(value: object, name: str = "service") -> str:
    """A PAM service name, i.e. a file name under /etc/pam.d."""
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    if (
        not 0 < len(value) <= 64
        or value[0] not in _ALNUM
        or not all(c in _SERVICE_CHARS for c in value)
    ):
        raise BadRequest(
            f"{name} {value[:64]!r} is not a valid PAM service name "
            "(1 to 64 letters, digits and _.+@-, starting with a letter or digit)"
        )
    return value


def validate_rhost(value: object, name: str = "rhost") -> str | None:
    """The remote host PAM reports: an address or a name; absent for a local login."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string or null")
    if len(value) > MAX_RHOST_LEN or not value.isprintable() or " " in value:
        raise BadRequest(f"{name} must be at most {MAX_RHOST_LEN} printable characters, no spaces")
    return value


def validate_flag(value: object, name: str = "flag") -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false")
    return value


_BASE32 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
# Base32 spells 5 bits a character: a length leaving 1, 3 or 6 over a multiple of 8 ends
# part-way through a byte, and no key of whole bytes is written that way.
_NOT_WHOLE_BYTES = frozenset({1, 3, 6})


def validate_secret(value: object, name: str = "secret") -> str:
    """A TOTP key in base32 without padding: at least 80 bits, as older apps made them."""
    if not isinstance(value, str) or not 16 <= len(value) <= 128:
        raise BadRequest(f"{name} must be 16 to 128 base32 characters")
    if not all(c in _BASE32 for c in value):
        raise BadRequest(f"{name} must be base32 (A-Z, 2-7) without padding")
    if len(value) % 8 in _NOT_WHOLE_BYTES:
        raise BadRequest(
            f"{name} has {len(value)} base32 characters, which spell no whole number of "
            "bytes (a character is missing or extra)"
        )
    return value


def validate_algorithm(value: object, name: str = "algorithm") -> str:
    if value not in ALGORITHMS:
        raise BadRequest(f"{name} must be {', '.join(ALGORITHMS[:-1])} or {ALGORITHMS[-1]}")
    return str(value)


def _whole(value: object, name: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}")
    return value


def validate_digits(value: object, name: str = "digits") -> int:
    return _whole(value, name, MIN_DIGITS, MAX_DIGITS)


def validate_period(value: object, name: str = "period") -> int:
    return _whole(value, name, MIN_PERIOD, MAX_PERIOD)


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
        raise BadRequest(f"{name} must be a number of seconds on the monotonic clock")
    return float(value)


MAX_PAGE = 100  # listing entries per reply: a hundred of the largest fit well within a message


def validate_limit(value: object, name: str = "limit") -> int:
    return _whole(value, name, 1, MAX_PAGE)


def validate_code_list(value: object, name: str = "recovery_codes") -> list[str]:
    if not isinstance(value, list) or len(value) > 20:
        raise BadRequest(f"{name} must be a list of at most 20 codes")
    return [validate_code(code, f"{name}[{i}]") for i, code in enumerate(value)]


def validate_policy_text(value: object, name: str = "text") -> str:
    """A policy file's content, sent by `twofactl policy check` to be validated."""
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    if len(value) > MAX_POLICY_BYTES:
        raise BadRequest(f"{name} must be at most {MAX_POLICY_BYTES} characters")
    return value


def validate_dropin_name(value: object, name: str = "name") -> str:
    """A drop-in's bare file name: the daemon reads it in its own drop-in directory, so
    no slash can point it elsewhere, and no leading dot (the include patterns' `*` does
    not match hidden files, where temporary files are written)."""
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    if (
        not 5 < len(value) <= MAX_DROPIN_NAME
        or not value.endswith(".yaml")
        or value.startswith(".")
        or not all(c in _DROPIN_CHARS for c in value)
    ):
        raise BadRequest(
            f"{name} {value[:MAX_DROPIN_NAME]!r} is not a drop-in file name (up to "
            f"{MAX_DROPIN_NAME} letters, digits and ._- ending in .yaml, not starting with .)"
        )
    return value


def validate_dropin(value: object, name: str = "dropin") -> dict[str, str]:
    """A drop-in as it would be ({name, text}), for `policy.check` to preview."""
    if not isinstance(value, dict):
        raise BadRequest(f"{name} must be an object with 'name' and 'text'")
    if set(value) != {"name", "text"}:
        unknown = sorted(set(value) - {"name", "text"})
        raise BadRequest(
            f"{name}: unknown field(s) {', '.join(map(repr, unknown))}"
            if unknown
            else f"{name} needs both 'name' and 'text'"
        )
    return {
        "name": validate_dropin_name(value["name"], f"{name}.name"),
        "text": validate_policy_text(value["text"], f"{name}.text"),
    }


def validate_label(value: object, name: str = "name") -> str:
    """A file name to show in messages: printable, bounded."""
    if not isinstance(value, str) or not value or len(value) > 255 or not value.isprintable():
        raise BadRequest(f"{name} must be 1 to 255 printable characters")
    return value


def validate_device_name(value: object, name: str = "device") -> str:
    """A device's name as its owner types it: "phone", "Anna's iPad", "YubiKey 5".

    Shown in listings, the audit log and terminals, so it is short and printable (no
    control or direction-changing characters), with no space at either end to hide a
    second name that looks the same.  NFC-normalised, so one name has one spelling; the
    import of unicodedata waits for a device name, which the PAM hook never sends.
    """
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    import unicodedata

    text = unicodedata.normalize("NFC", value)
    if not 0 < len(text) <= MAX_DEVICE_NAME:
        raise BadRequest(f"{name} must be 1 to {MAX_DEVICE_NAME} characters")
    if not text.isprintable():
        raise BadRequest(f"{name} may hold only printable characters")
    if text != text.strip():
        raise BadRequest(f"{name} may not begin or end with a space")
    return text


def validate_email_address(value: object, name: str = "address") -> str:
    """An address to mail codes to, as a header and an SMTP path will carry it.

    Only the plain ASCII form (dot-atom local part, a domain of letters, digits and
    hyphens with at least one dot): nothing that could end a header line, quote, or
    hide a second recipient.  The domain is kept as typed, lower-cased.
    """
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    if not 3 <= len(value) <= MAX_EMAIL_ADDRESS:
        raise BadRequest(f"{name} must be 3 to {MAX_EMAIL_ADDRESS} characters")
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        raise BadRequest(f"{name} {value!r} is not an email address (name@example.org)")
    if (
        len(local) > 64
        or not all(c in _LOCAL_PART_CHARS for c in local)
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
    ):
        raise BadRequest(
            f"{name} {value!r}: before the @ only letters, digits and !#$%&'*+-/=?^_`{{|}}~. "
            "(no dot at either end, nor two in a row)"
        )
    labels = domain.split(".")
    if len(labels) < 2 or not all(
        0 < len(label) <= 63
        and all(c in _LABEL_CHARS for c in label)
        and not label.startswith("-")
        and not label.endswith("-")
        for label in labels
    ):
        raise BadRequest(
            f"{name} {value!r}: the domain after @ must be a host name such as example.org"
        )
    return f"{local}@{domain.lower()}"


def validate_channel(value: object, name: str = "channel") -> str:
    """How a code reached the person: only "email" (an emailed code), for now."""
    if value != "email":
        raise BadRequest(f"{name} must be 'email'")
    return "email"
