"""The server's mailing operations, through a socket pair, with a mailer socket the test
answers itself: what is mailed, the reply once it is delivered, and a delivery that
fails undone (`not_sent`, the send not counted, the code dropped).

The real mailer and a real SMTP server are in tests/integration/test_email_*.py; here
the mailer's side of its socket is the test's, so each answer can be chosen.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pam_twofa import protocol as p
from support.fakes import Clock
from support.service import enroll, use_policy
from twofad.audit import Audit
from twofad.mailer_client import MailerClient
from twofad.server import Server
from twofad.service import Service

MailerAnswer = Callable[[dict[str, Any]], dict[str, Any] | None]  # None: no answer at all


def converse(
    server: Server, mailer_path: Path, answer: MailerAnswer, *requests: bytes
) -> tuple[list[p.Response], list[dict[str, Any]]]:
    """Send `requests` to the server while the test answers its mailer socket; the
    replies, and every message the mailer was handed."""
    handed: list[dict[str, Any]] = []

    async def mailer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        message = json.loads(await reader.readline())
        handed.append(message)
        reply = answer(message)
        if reply is not None:
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        writer.close()

    async def run() -> bytes:
        relay = await asyncio.start_unix_server(mailer, str(mailer_path))
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        loop = asyncio.get_running_loop()
        _, connection = await loop.connect_accepted_socket(server.connection, theirs)
        ours.setblocking(False)
        await loop.sock_sendall(ours, b"".join(requests))
        ours.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := await asyncio.wait_for(loop.sock_recv(ours, 65536), 10):
            received += chunk
        await asyncio.wait_for(connection.closed, 5)
        ours.close()
        relay.close()
        return received

    data = asyncio.run(run())
    return [p.decode_response(line) for line in data.splitlines()], handed


def delivered(message: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True}


def refused(message: dict[str, Any]) -> dict[str, Any]:
    return {"ok": False, "error": "550 mailbox unavailable"}


def mailed_code(message: dict[str, Any]) -> str:
    found = re.search(r"\b(\d{4}) (\d{4})\b", message["body"])
    assert found is not None
    return found.group(1) + found.group(2)


@pytest.fixture
def audit_log() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def mailer_path(tmp_path: Path) -> Path:
    return tmp_path / "mailer.sock"


@pytest.fixture
def server(service: Service, clock: Clock, audit_log: io.StringIO, mailer_path: Path) -> Server:
    use_policy(service, "email: {allowed: true, per_hour: 2, per_day: 5}\n")
    enroll(service, clock, "alice")
    service.set_email("alice", "alice@example.org", None, own=False, needs_proof=False)
    return Server(service, Audit(stream=audit_log), mailer=MailerClient(str(mailer_path), 2.0))


def send(request_id: int, user: str = "alice") -> bytes:
    return p.encode_request("email.send", id=request_id, user=user, service="sshd")


def verify(request_id: int, code: str) -> bytes:
    return p.encode_request(
        "verify", id=request_id, user="alice", code=code, service="sshd", channel="email"
    )


def test_a_code_is_handed_to_the_mailer_then_answered_sent(
    server: Server, mailer_path: Path, audit_log: io.StringIO
) -> None:
    replies, handed = converse(server, mailer_path, delivered, send(1))
    assert replies[0].ok and replies[0].data["result"] == p.SENT
    [message] = handed
    assert message["to"] == "alice@example.org" and set(message) == {"to", "subject", "body"}
    code = mailed_code(message)
    assert code not in audit_log.getvalue()  # never in a log
    replies, _ = converse(server, mailer_path, delivered, verify(2, code), verify(3, code))
    assert replies[0].data["result"] == p.ACCEPTED and replies[0].data["method"] == "email"
    assert replies[1].data["result"] == p.REJECTED  # once


@pytest.mark.parametrize("answer", [refused, lambda message: None], ids=["refused", "silent"])
def test_a_failed_delivery_is_not_sent_and_changes_nothing(
    server: Server, service: Service, mailer_path: Path, audit_log: io.StringIO, answer: Any
) -> None:
    replies, handed = converse(server, mailer_path, answer, send(1))
    assert replies[0].code == p.NOT_SENT and "could not be sent" in replies[0].message
    code = mailed_code(handed[0])
    assert "not delivered" in audit_log.getvalue() and code not in audit_log.getvalue()
    replies, _ = converse(server, mailer_path, delivered, send(2), send(3), verify(4, code))
    assert [r.data.get("result") for r in replies[:2]] == [p.SENT, p.SENT]  # not counted
    assert replies[2].data["result"] == p.REJECTED  # the undelivered code was dropped


def test_no_mailer_at_all_is_not_sent(server: Server, mailer_path: Path) -> None:
    server._mail.mailer = MailerClient(str(mailer_path.with_name("missing.sock")))
    replies, handed = converse(server, mailer_path, delivered, send(1))
    assert replies[0].code == p.NOT_SENT and handed == []


def test_a_name_with_no_address_is_answered_alike_and_nothing_is_handed_over(
    server: Server, mailer_path: Path
) -> None:
    replies, handed = converse(server, mailer_path, delivered, send(1, "bob"), send(2, "nobody"))
    assert [r.data.get("result") for r in replies] == [p.SENT, p.SENT], replies
    assert handed == []
    assert all(set(r.data) == {"user", "result", "expires_in"} for r in replies)


def test_only_root_may_ask_for_a_code_by_email(
    server: Server, service: Service, mailer_path: Path, accounts: Any
) -> None:
    from twofad.access import Peer

    alice = Peer(pid=1, uid=1000, gid=1000)
    reply = server.dispatch(alice, p.decode_request(send(1)))
    assert reply.code == p.UNAUTHORIZED
