"""/etc/twofa/mailer.yaml: the relay, how to reach it, who may hand over messages.

Every key is checked, with its place and what was expected, and unknown keys are
refused: a misspelt `securty:` must not quietly send codes in the clear.  The password
lives in a file of its own that only the mailer can read; the file is refused if
anyone else could.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.utils import getaddresses

import yaml

from pam_twofa.errors import BadRequest
from pam_twofa.fields import validate_email_address

SECURITY = ("starttls", "tls", "none")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
MAX_CONFIG_BYTES = 16 * 1024


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    security: str = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # read from password_file
    timeout: float = 10.0
    ca_file: str | None = None  # the relay's CA; None: the system's


@dataclass(frozen=True)
class MailerConfig:
    smtp: Smtp
    sender: Address  # the From of every message
    allow_users: tuple[str, ...] = ("_twofad",)  # whose processes may hand over messages


def load(path: str) -> MailerConfig:
    try:
        with open(path, "rb") as source:
            data = source.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        document = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    return parse(document, path)


def parse(document: object, source: str = "mailer.yaml") -> MailerConfig:
    top = _mapping(document, source, "", {"smtp", "from", "allow_users"})
    for required in ("smtp", "from"):
        if required not in top:
            raise ConfigError(f"{source}: `{required}` is required")
    smtp = _smtp(top["smtp"], source)
    sender = _sender(top["from"], source)
    allow = top.get("allow_users", ["_twofad"])
    if not isinstance(allow, list) or not allow or not all(_is_name(u) for u in allow):
        raise ConfigError(f"{source}: allow_users: expected a list of local user names")
    return MailerConfig(smtp, sender, tuple(allow))


def _smtp(value: object, source: str) -> Smtp:
    keys = {"host", "port", "security", "username", "password_file", "timeout", "ca_file"}
    smtp = _mapping(value, source, "smtp.", keys)
    host = smtp.get("host")
    if not isinstance(host, str) or not host or len(host) > 253 or not host.isprintable():
        raise ConfigError(f"{source}: smtp.host: expected the relay's host name or address")
    security = smtp.get("security", "starttls")
    if security not in SECURITY:
        raise ConfigError(f"{source}: smtp.security: expected one of {', '.join(SECURITY)}")
    port = smtp.get("port", DEFAULT_PORTS[security])
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise ConfigError(f"{source}: smtp.port: expected a port number, 1 to 65535")
    timeout = _seconds(smtp.get("timeout", "10s"), source)
    username = smtp.get("username")
    if username is not None and (not isinstance(username, str) or not username.isprintable()):
        raise ConfigError(f"{source}: smtp.username: expected a user name")
    password_file = smtp.get("password_file")
    if (username is None) != (password_file is None):
        raise ConfigError(f"{source}: smtp.username and smtp.password_file go together")
    if security == "none" and username is not None:
        raise ConfigError(f"{source}: smtp.username: a password is never sent without TLS")
    password = _password(password_file, source) if password_file is not None else None
    ca_file = smtp.get("ca_file")
    if ca_file is not None and (not isinstance(ca_file, str) or not os.path.isfile(ca_file)):
        raise ConfigError(f"{source}: smtp.ca_file: expected a readable file of certificates")
    return Smtp(host, port, security, username, password, timeout, ca_file)


def _password(path: object, source: str) -> str:
    """The relay's password, from a file no one but the mailer (or root) can read."""
    if not isinstance(path, str) or not os.path.isabs(path):
        raise ConfigError(f"{source}: smtp.password_file: expected an absolute path")
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ConfigError(f"{source}: smtp.password_file: {path}: {exc.strerror}") from None
    with os.fdopen(descriptor, "rb") as opened:
        facts = os.fstat(opened.fileno())
        if not stat.S_ISREG(facts.st_mode):
            raise ConfigError(f"{source}: smtp.password_file: {path} is not a file")
        if facts.st_uid not in (0, os.geteuid()):
            raise ConfigError(
                f"{source}: smtp.password_file: {path} must be owned by the mailer's user or root"
            )
        if facts.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{source}: smtp.password_file: {path} is readable by others "
                f"(mode {stat.S_IMODE(facts.st_mode):04o}); make it 0400 or 0600"
            )
        text = opened.read(4097).decode("utf-8", "replace")
    password = text.rstrip("\r\n")
    if not password or len(password) > 4096 or "\n" in password:
        raise ConfigError(f"{source}: smtp.password_file: {path} must hold one line, the password")
    return password


def _sender(value: object, source: str) -> Address:
    if not isinstance(value, str) or "\r" in value or "\n" in value or len(value) > 300:
        raise ConfigError(f'{source}: from: expected one address, e.g. "NAS <nas@example.org>"')
    found = getaddresses([value])
    if len(found) != 1:
        raise ConfigError(f"{source}: from: expected one address, not several")
    name, address = found[0]
    try:
        checked = validate_email_address(address, "from")
    except BadRequest as exc:
        raise ConfigError(f"{source}: {exc.message}") from None
    local, _, domain = checked.rpartition("@")
    return Address(display_name=name, username=local, domain=domain)


def _seconds(value: object, source: str) -> float:
    text = str(value)
    number = text[:-1] if text.endswith("s") else text
    try:
        seconds = float(number)
    except ValueError:
        raise ConfigError(f"{source}: smtp.timeout: expected seconds, e.g. 10s") from None
    if not 1 <= seconds <= 60:
        raise ConfigError(f"{source}: smtp.timeout: expected 1s to 60s")
    return seconds


def _mapping(value: object, source: str, prefix: str, keys: set[str]) -> dict[str, object]:
    if not isinstance(value, dict):
        what = prefix.rstrip(".") or "the file"
        raise ConfigError(f"{source}: {what}: expected a mapping of keys")
    unknown = sorted(str(k) for k in value if k not in keys)
    if unknown:
        expected = ", ".join(sorted(keys))
        raise ConfigError(f"{source}: {prefix}{unknown[0]}: unknown key; expected: {expected}")
    return {str(k): v for k, v in value.items()}


def _is_name(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= 32
        and value.replace("_", "a").replace("-", "a").isalnum()
    )
