"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1, holding what it receives.

STARTTLS (or implicit TLS) under a throwaway certificate for 127.0.0.1 made here, and
AUTH (PLAIN, LOGIN) against one user and password, as a relay would ask.  `messages`
holds each message received, parsed; `refuse` makes it answer 550 to every recipient.
Started and stopped by the test (a thread of the test's own process).
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import socket
import ssl
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

USER, PASSWORD = "relay-user", "relay password 42"


def throwaway_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "relay.pem", directory / "relay.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Mailbox:
    """aiosmtpd's handler: keeps every message, or refuses every recipient."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse = False
        self.arrived = threading.Condition()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        with self.arrived:
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.messages.append(parsed)  # type: ignore[arg-type]
            self.arrived.notify_all()
        return "250 Message accepted"


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpServer:
    """One aiosmtpd on 127.0.0.1: `security` starttls, tls or none; AUTH when `auth`."""

    def __init__(self, directory: Path, *, security: str = "starttls", auth: bool = True) -> None:
        self.security = security
        self.cert, self.key = throwaway_certificate(directory)
        self.port = _free_port()
        self.mailbox = _Mailbox()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        kwargs: dict[str, Any] = {}
        if auth:
            # aiosmtpd counts only STARTTLS as TLS: under implicit TLS the login is
            # encrypted all the same.
            kwargs.update(
                authenticator=_authenticator,
                auth_required=True,
                auth_require_tls=security == "starttls",
            )
        if security == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        self.controller = Controller(
            self.mailbox,
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=context if security == "tls" else None,
            server_hostname="127.0.0.1",
            server_kwargs=kwargs,
        )

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop it (a relay gone down); again is nothing."""
        if getattr(self.controller, "server", None) is not None:
            self.controller.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        return self.mailbox.messages

    def refuse(self, on: bool = True) -> None:
        self.mailbox.refuse = on

    def wait_for(self, count: int, timeout: float = 15.0) -> list[EmailMessage]:
        """The messages once there are at least `count`."""
        deadline = time.monotonic() + timeout
        with self.mailbox.arrived:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.messages)} messages, not {count}")
                self.mailbox.arrived.wait(left)
            return list(self.messages)

    def mailer_config(
        self, password_file: Path | None, sender: str = "NAS <nas@example.test>"
    ) -> str:
        """A twofa-mailer configuration for this server."""
        lines = [
            "smtp:",
            "  host: 127.0.0.1",
            f"  port: {self.port}",
            f"  security: {self.security}",
            f"  ca_file: {self.cert}",
            "  timeout: 5s",
        ]
        if password_file is not None:
            lines += [f"  username: {USER}", f"  password_file: {password_file}"]
        return "\n".join([*lines, f'from: "{sender}"', "allow_users: [root]", ""])


def code_in(message: EmailMessage) -> str:
    """The 8-digit code in a message's body, as a person reads it (4 + 4 digits)."""
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    found = re.search(r"\b(\d{4}) (\d{4})\b", text) or re.search(r"confirm (\d{8})\b", text)
    assert found is not None, text
    return "".join(found.groups())
