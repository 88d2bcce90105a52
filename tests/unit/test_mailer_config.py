"""/etc/twofa/mailer.yaml: every key checked with its place; the password file private."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from twofad.mailer.config import ConfigError, load, parse

GOOD = {
    "smtp": {"host": "smtp.example.org", "port": 587, "security": "starttls", "timeout": "10s"},
    "from": "NAS <nas@example.org>",
}


def refused(document: object) -> str:
    with pytest.raises(ConfigError) as error:
        parse(document, "mailer.yaml")
    return str(error.value)


def secret_file(tmp_path: Path, mode: int = 0o400, text: str = "s3cret\n") -> Path:
    path = tmp_path / "password"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "w") as written:
        written.write(text)
    os.chmod(path, mode)  # the test's own file: its mode is what is being tested
    return path


def test_a_minimal_configuration() -> None:
    config = parse({"smtp": {"host": "relay"}, "from": "twofa@example.org"})
    assert (config.smtp.port, config.smtp.security, config.smtp.timeout) == (587, "starttls", 10.0)
    assert config.allow_users == ("_twofad",) and config.smtp.username is None
    assert str(config.sender) == "twofa@example.org"


def test_ports_follow_the_security() -> None:
    tls = parse({"smtp": {"host": "relay", "security": "tls"}, "from": "a@example.org"})
    none = parse({"smtp": {"host": "relay", "security": "none"}, "from": "a@example.org"})
    assert (tls.smtp.port, none.smtp.port) == (465, 25)


def test_the_password_comes_from_its_file(tmp_path: Path) -> None:
    path = secret_file(tmp_path)
    config = parse({**GOOD, "smtp": {**GOOD["smtp"], "username": "u", "password_file": str(path)}})
    assert config.smtp.password == "s3cret"
    assert "s3cret" not in repr(config)  # never in a log line that shows the config


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ({"smtp": {"host": "relay"}}, "`from` is required"),
        ({"from": "a@example.org"}, "`smtp` is required"),
        ({**GOOD, "extra": 1}, "extra: unknown key"),
        ({**GOOD, "smtp": {**GOOD["smtp"], "securty": "none"}}, "smtp.securty: unknown key"),
        ({**GOOD, "smtp": {**GOOD["smtp"], "security": "ssl"}}, "smtp.security"),
        ({**GOOD, "smtp": {**GOOD["smtp"], "port": 0}}, "smtp.port"),
        ({**GOOD, "smtp": {**GOOD["smtp"], "port": "587"}}, "smtp.port"),
        ({**GOOD, "smtp": {**GOOD["smtp"], "timeout": "2m"}}, "smtp.timeout"),
        ({**GOOD, "smtp": {**GOOD["smtp"], "timeout": "90s"}}, "smtp.timeout"),
        ({**GOOD, "smtp": {"host": ""}}, "smtp.host"),
        ({**GOOD, "smtp": {**GOOD["smtp"], "username": "u"}}, "go together"),
        (
            {
                **GOOD,
                "smtp": {"host": "r", "security": "none", "username": "u", "password_file": "/x"},
            },
            "never sent without TLS",
        ),
        ({**GOOD, "smtp": {**GOOD["smtp"], "ca_file": "/nonexistent"}}, "smtp.ca_file"),
        ({**GOOD, "from": "a@example.org, b@example.org"}, "one address"),
        ({**GOOD, "from": "NAS <nas@example.org>\r\nBcc: x@example.org"}, "one address"),
        ({**GOOD, "from": "not an address"}, "from"),
        ({**GOOD, "allow_users": []}, "allow_users"),
        ({**GOOD, "allow_users": ["../etc"]}, "allow_users"),
        ([1, 2], "expected a mapping"),
    ],
)
def test_every_mistake_is_named(document: object, says: str) -> None:
    assert says in refused(document)


@pytest.mark.parametrize("mode", [0o440, 0o404, 0o644])
def test_a_password_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = secret_file(tmp_path, mode)
    message = refused(
        {**GOOD, "smtp": {**GOOD["smtp"], "username": "u", "password_file": str(path)}}
    )
    assert "readable by others" in message and "s3cret" not in message


def test_a_password_file_that_is_a_link_is_refused(tmp_path: Path) -> None:
    target = secret_file(tmp_path)
    link = tmp_path / "link"
    link.symlink_to(target)
    message = refused(
        {**GOOD, "smtp": {**GOOD["smtp"], "username": "u", "password_file": str(link)}}
    )
    assert "password_file" in message


def test_a_file_that_is_not_yaml_says_so(tmp_path: Path) -> None:
    path = tmp_path / "mailer.yaml"
    path.write_text("smtp: [unclosed\n")
    with pytest.raises(ConfigError) as error:
        load(str(path))
    assert "not valid YAML" in str(error.value)


def test_the_shipped_example_is_valid_but_for_its_password_file() -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "examples" / "mailer.yaml"
    document = yaml.safe_load(example.read_text())
    assert "password_file" in refused(document)  # /etc/twofa/mailer.password: not here
    del document["smtp"]["username"], document["smtp"]["password_file"]
    assert parse(document).smtp.host == "smtp.example.org"
