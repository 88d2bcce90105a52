"""twofa-mailer, the real process, against a real SMTP server (aiosmtpd on 127.0.0.1):
STARTTLS with a login, implicit TLS, plain; a wrong password, a relay down, a refused
recipient; a peer that may not hand over messages; a message that could forge a header.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.mailer import Mailer, password_file
from support.smtp import SmtpServer
from support.users import throwaway_user

pytestmark = pytest.mark.integration

MESSAGE = {
    "to": "alice@example.test",
    "subject": "Verification code for alice on nas",
    "body": "Your verification code for alice on nas:\n\n    1234 5678\n",
}


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[SmtpServer]:
    with SmtpServer(tmp_path) as server:
        yield server


@pytest.fixture
def mailer(tmp_path: Path, relay: SmtpServer) -> Iterator[Mailer]:
    with Mailer.for_server(tmp_path, relay) as started:
        yield started


def test_starttls_with_a_login_delivers_the_message(relay: SmtpServer, mailer: Mailer) -> None:
    assert mailer.hand_over(MESSAGE) == {"ok": True}
    [received] = relay.wait_for(1)
    assert received["To"] == "alice@example.test"
    assert received["From"] == "NAS <nas@example.test>"
    assert received["Subject"] == MESSAGE["subject"]
    assert received["Date"] and received["Message-ID"].endswith("@example.test>")
    assert received["Auto-Submitted"] == "auto-generated"
    assert "1234 5678" in received.get_body(("plain",)).get_content()
    log = mailer.log_text()
    assert "to alice@example.test: delivered" in log and "1234" not in log  # never the body


@pytest.mark.parametrize("security", ["tls", "none"])
def test_implicit_tls_and_plain_deliver(tmp_path: Path, security: str) -> None:
    with SmtpServer(tmp_path, security=security, auth=security == "tls") as server:
        with Mailer.for_server(tmp_path, server, auth=security == "tls") as started:
            assert started.hand_over(MESSAGE) == {"ok": True}
        assert len(server.wait_for(1)) == 1


def test_a_wrong_password_is_a_clear_refusal(tmp_path: Path, relay: SmtpServer) -> None:
    config = relay.mailer_config(password_file(tmp_path, "not the password"))
    with Mailer(tmp_path, config) as started:
        answer = started.hand_over(MESSAGE)
    assert answer["ok"] is False and "login" in answer["error"]
    assert relay.messages == []


def test_a_relay_that_is_down_is_a_quick_refusal(tmp_path: Path) -> None:
    server = SmtpServer(tmp_path)  # configured, never started
    with Mailer.for_server(tmp_path, server) as started:
        answer = started.hand_over(MESSAGE, timeout=10)
    assert answer["ok"] is False and "cannot be reached" in answer["error"]


def test_a_refused_recipient_is_said(relay: SmtpServer, mailer: Mailer) -> None:
    relay.refuse()
    answer = mailer.hand_over(MESSAGE)
    assert answer["ok"] is False and "alice@example.test" in answer["error"]


def test_a_relay_whose_certificate_is_not_trusted_gets_nothing(
    tmp_path: Path, relay: SmtpServer
) -> None:
    config = relay.mailer_config(password_file(tmp_path)).replace(f"  ca_file: {relay.cert}\n", "")
    with Mailer(tmp_path, config) as started:
        answer = started.hand_over(MESSAGE)
    assert answer["ok"] is False and "TLS" in answer["error"]
    assert relay.messages == []


@pytest.mark.parametrize(
    "forged",
    [
        {**MESSAGE, "subject": "hi\r\nBcc: everyone@example.test"},
        {**MESSAGE, "to": "alice@example.test\r\nBcc: everyone@example.test"},
        {**MESSAGE, "to": "alice@example.test, bob@example.test"},
        {**MESSAGE, "body": "x\x00y"},
        {**MESSAGE, "extra": "field"},
        {"to": "alice@example.test"},
    ],
    ids=["subject", "to", "two", "body", "extra", "missing"],
)
def test_a_message_that_could_forge_a_header_is_refused(
    relay: SmtpServer, mailer: Mailer, forged: dict[str, str]
) -> None:
    answer = mailer.hand_over(forged)
    assert answer["ok"] is False and answer["error"]
    assert relay.messages == []


@pytest.mark.parametrize("line", [b"not json\n", b"x" * 70_000 + b"\n", b"[1, 2]\n"])
def test_garbage_is_refused(relay: SmtpServer, mailer: Mailer, line: bytes) -> None:
    assert mailer.hand_over(line)["ok"] is False
    assert relay.messages == []


def test_a_peer_that_may_not_hand_over_messages_is_refused(
    tmp_path: Path, relay: SmtpServer
) -> None:
    """Anyone may reach the socket (as /run/twofa-mailer/mailer.sock): the uid decides."""
    reachable = Path(tempfile.mkdtemp(prefix="twofa-mailer-test-"))
    reachable.chmod(0o755)  # a test directory any user may enter, like /run/twofa-mailer
    config = relay.mailer_config(password_file(tmp_path))
    mailer = Mailer(tmp_path, config, socket_dir=reachable).start()
    client = (
        "import json, socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.connect(sys.argv[1])\n"
        "s.sendall(json.dumps(json.loads(sys.argv[2])).encode() + b'\\n')\n"
        "print(s.makefile().readline())\n"
    )
    try:
        with throwaway_user() as mallory:
            done = subprocess.run(
                [sys.executable, "-c", client, mailer.socket, json.dumps(MESSAGE)],
                user=mallory.uid,
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
        assert json.loads(done.stdout) == {"ok": False, "error": "not allowed"}, done.stderr
        assert relay.messages == []
        assert mailer.hand_over(MESSAGE) == {"ok": True}  # root, as twofad's stand-in, may
    finally:
        mailer.stop()
        shutil.rmtree(reachable, ignore_errors=True)


def test_check_validates_the_configuration(tmp_path: Path, relay: SmtpServer) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(relay.mailer_config(password_file(tmp_path)))
    checked = subprocess.run(
        [sys.executable, "-m", "twofad.mailer.main", "--config", str(good), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0 and "valid" in checked.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("smtp: {host: 127.0.0.1, securty: none}\nfrom: a@example.test\n")
    refused = subprocess.run(
        [sys.executable, "-m", "twofad.mailer.main", "--config", str(bad), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 1 and "smtp.securty: unknown key" in refused.stderr
