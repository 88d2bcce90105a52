"""The address for codes by email, through the real commands: twofa as the person
themself (a throwaway account), twofactl as root; the real twofad hands the messages to
the real twofa-mailer, which delivers them to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cli import Run, run_cli, twofactl
from support.daemon import Daemon
from support.enrollment import Enrolled, enroll
from support.mailer import Mailer
from support.smtp import SmtpServer, code_in
from support.users import throwaway_user

pytestmark = pytest.mark.integration


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[SmtpServer]:
    with SmtpServer(tmp_path) as server:
        yield server


@pytest.fixture
def mail_daemon(shared_dir: Path, tmp_path: Path, relay: SmtpServer) -> Iterator[Daemon]:
    policy = shared_dir / "policy.yaml"
    policy.write_text("email: {allowed: true}\n")
    with Mailer.for_server(tmp_path, relay) as mailer:
        daemon = Daemon(shared_dir, "--policy", str(policy), "--mailer-socket", mailer.socket)
        yield daemon.start()
        daemon.stop()


@pytest.fixture
def someone(mail_daemon: Daemon) -> Iterator[Enrolled]:
    with throwaway_user() as user:
        codes, recovery = enroll(mail_daemon, user.name)
        yield Enrolled(user, codes, recovery)


def twofa(daemon: Daemon, enrolled: Enrolled, *args: str) -> Run:
    return run_cli("user", daemon.socket, *args, user=enrolled.user.uid)


def test_a_person_proves_their_address_with_the_code_mailed_to_it(
    mail_daemon: Daemon, someone: Enrolled, relay: SmtpServer
) -> None:
    address = f"{someone.user.name}@example.test"
    refused = twofa(mail_daemon, someone, "email", "set", address, "--code", "000000")
    assert refused.returncode == 1 and "invalid_code" in refused.stderr
    assert relay.messages == []
    sent = twofa(mail_daemon, someone, "email", "set", address, "--code", someone.codes.next())
    assert sent.returncode == 0, sent.stderr
    assert f"A code was mailed to {address}" in sent.stdout
    [message] = relay.wait_for(1)
    assert message["To"] == address and "Confirm your address" in message["Subject"]
    status = twofa(mail_daemon, someone, "status", "--json").json()
    assert status["email"] is None and status["email_pending"] == address
    wrong = twofa(mail_daemon, someone, "email", "confirm", "00000000")
    assert wrong.returncode == 1 and "invalid_code" in wrong.stderr
    done = twofa(mail_daemon, someone, "email", "confirm", code_in(message), "--json")
    assert done.returncode == 0 and done.json()["email"] == address
    assert f"codes by email go to: {address}" in twofa(mail_daemon, someone, "status").stdout
    removed = twofa(mail_daemon, someone, "email", "remove")
    assert removed.returncode == 0 and address in removed.stdout
    assert twofa(mail_daemon, someone, "status", "--json").json()["email"] is None


def test_an_administrator_sets_an_address_directly_and_sends_a_test(
    mail_daemon: Daemon, someone: Enrolled, relay: SmtpServer
) -> None:
    name = someone.user.name
    done = twofactl(mail_daemon.socket, "email", name, "a@example.test", "--json")
    assert done.returncode == 0 and done.json()["email"] == "a@example.test"
    assert relay.messages == []  # an administrator is trusted: nothing to prove
    shown = twofactl(mail_daemon.socket, "status", name)
    assert "a@example.test" in shown.stdout
    explained = twofactl(mail_daemon.socket, "policy", "explain", name, "--service", "sshd")
    assert "codes by email: allowed" in explained.stdout
    tested = twofactl(mail_daemon.socket, "email", "test", "ops@example.test")
    assert tested.returncode == 0, tested.stderr
    [message] = relay.wait_for(1)
    assert message["To"] == "ops@example.test" and "test message" in message["Subject"]
    assert twofactl(mail_daemon.socket, "email", name, "--remove").returncode == 0


@pytest.mark.parametrize(
    "bad", ["alice", "a@b", "a@@example.test", "a b@example.test", "a@example.test\nBcc: x@y.z"]
)
def test_a_bad_address_is_refused_clearly_and_changes_nothing(
    mail_daemon: Daemon, someone: Enrolled, relay: SmtpServer, bad: str
) -> None:
    tried = twofactl(mail_daemon.socket, "email", someone.user.name, bad)
    assert tried.returncode != 0 and "address" in tried.stderr
    assert len(tried.stderr.strip().splitlines()) == 1
    assert (
        twofactl(mail_daemon.socket, "status", someone.user.name, "--json").json()[0]["email"]
        is None
    )


def test_a_person_cannot_set_another_persons_address(
    mail_daemon: Daemon, someone: Enrolled, relay: SmtpServer
) -> None:
    with throwaway_user() as mallory:
        tried = run_cli(
            "ctl",
            mail_daemon.socket,
            "email",
            someone.user.name,
            "mallory@example.test",
            user=mallory.uid,
        )
    assert tried.returncode != 0 and "unauthorized" in tried.stderr
    assert relay.messages == []


def test_a_mailer_that_cannot_deliver_changes_nothing(
    mail_daemon: Daemon, someone: Enrolled, relay: SmtpServer
) -> None:
    relay.stop()
    address = f"{someone.user.name}@example.test"
    sent = twofa(mail_daemon, someone, "email", "set", address, "--code", someone.codes.next())
    assert sent.returncode != 0 and "not_sent" in sent.stderr
    status = twofa(mail_daemon, someone, "status", "--json").json()
    assert status["email_pending"] is None and status["email"] is None


def test_twofactl_email_says_what_it_needs(mail_daemon: Daemon, someone: Enrolled) -> None:
    name = someone.user.name
    alone = twofactl(mail_daemon.socket, "email", name)
    assert alone.returncode != 0 and "give the address" in alone.stderr
    both = twofactl(mail_daemon.socket, "email", name, "a@example.test", "--remove")
    assert both.returncode != 0 and "--remove takes the user only" in both.stderr
    status = twofactl(mail_daemon.socket, "status", name, "--json").json()[0]
    assert status["email"] is None


def doctor_mailer(daemon: Daemon) -> dict[str, object]:
    checks = twofactl(daemon.socket, "doctor", "--json").json()
    return next(check for check in checks if check["check"] == "mailer")


def test_doctor_says_whether_the_mailer_answers_where_email_is_allowed(
    shared_dir: Path, tmp_path: Path, relay: SmtpServer
) -> None:
    policy = shared_dir / "policy.yaml"
    policy.write_text("email: {allowed: true}\n")
    mailer = Mailer.for_server(tmp_path, relay).start()
    daemon = Daemon(shared_dir, "--policy", str(policy), "--mailer-socket", mailer.socket)
    daemon.start()
    try:
        assert doctor_mailer(daemon)["ok"] is True
        mailer.stop()
        missing = doctor_mailer(daemon)
        assert missing["ok"] is False and "twofa-mailer" in str(missing["fix"])
    finally:
        mailer.stop()
        daemon.stop()
