"""Codes by email at a real SSH login: the OpenSSH client against a real sshd on
127.0.0.1 (password by pam_unix, then the hook in pam_python.so), a real twofad that
hands each message to the real twofa-mailer, which delivers it by STARTTLS and AUTH to
a real SMTP server (aiosmtpd) the test reads the code from, as a person reads their
mailbox.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.daemon import Daemon
from support.enrollment import HOOK, enroll
from support.mailer import Mailer
from support.oath import CodeSource
from support.pam import PAM_PYTHON, pam_service, pamtester
from support.smtp import SmtpServer, code_in
from support.sshd import SshServer, ssh_login
from support.users import TestUser, set_password, throwaway_user

pytestmark = pytest.mark.integration

PASSWORD = "correct horse 7"
POLICY = """
email: {allowed: true, per_hour: 2, per_day: 5}
rules:
  - {name: no-email-group, groups: [twofanomail], action: optional, email: false}
"""
HINT = "No phone at hand? Type email to get a code by email."
SENT = "If this account has an email address set up, a code was sent to it."


@dataclass
class Stack:
    daemon: Daemon
    sshd: SshServer
    relay: SmtpServer
    mailer: Mailer


@pytest.fixture
def stack(shared_dir: Path, tmp_path: Path) -> Iterator[Stack]:
    policy = shared_dir / "policy.yaml"
    policy.write_text(POLICY)
    with SmtpServer(tmp_path) as relay, Mailer.for_server(tmp_path, relay) as mailer:
        daemon = Daemon(
            shared_dir, "--policy", str(policy), "--mailer-socket", mailer.socket
        ).start()
        try:
            lines = [
                "auth requisite pam_unix.so",
                f"auth required {PAM_PYTHON} {HOOK} socket={daemon.socket}",
                "account required pam_unix.so",
                "session required pam_permit.so",
            ]
            with SshServer(lines, authentication_methods="keyboard-interactive:pam") as sshd:
                yield Stack(daemon, sshd, relay, mailer)
        finally:
            daemon.stop()


@dataclass
class Person:
    user: TestUser
    codes: CodeSource
    address: str | None


@pytest.fixture
def person(stack: Stack) -> Iterator[Person]:
    with throwaway_user() as user:
        set_password(user.name, PASSWORD)
        codes, _ = enroll(stack.daemon, user.name)
        address = f"{user.name}@example.test"
        stack.daemon.request("email.set", user=user.name, address=address)
        yield Person(user, codes, address)


def login(stack: Stack, user: TestUser | str, *answers: object) -> object:
    return ssh_login(stack.sshd, user, [PASSWORD, *answers], timeout=60)  # type: ignore[list-item]


def mailed(stack: Stack, count: int) -> str:
    """The code of the `count`-th message the relay received."""
    return code_in(stack.relay.wait_for(count)[count - 1])


def test_password_then_email_then_the_mailed_code_gets_in(stack: Stack, person: Person) -> None:
    done = ssh_login(
        stack.sshd, person.user, [PASSWORD, "email", lambda _: mailed(stack, 1)], timeout=60
    )
    assert done.ok and "LOGIN-OK" in done.output, done
    assert HINT in done.output and SENT in done.output
    [message] = stack.relay.messages
    assert message["To"] == person.address and "Verification code" in message["Subject"]
    text = message.get_body(("plain",)).get_content()
    assert "from 127.0.0.1" in text and "If this was not you" in text  # where it came from
    code = code_in(message)
    for log in (stack.daemon.log_text(), stack.mailer.log_text(), stack.sshd.log_text()):
        assert code not in log  # never in a log
    again = login(stack, person.user, "email", code)  # a new code is mailed; the old one
    assert again.returncode == 255 and "Invalid verification code" in again.output


def test_the_app_still_works_where_email_is_offered(stack: Stack, person: Person) -> None:
    done = login(stack, person.user, person.codes.next())
    assert done.ok and HINT in done.output
    assert stack.relay.messages == []


def test_a_wrong_mailed_code_counts_toward_the_lock(stack: Stack, person: Person) -> None:
    done = login(stack, person.user, "email", "00000000")
    assert done.returncode == 255 and "Invalid verification code" in done.output
    status = stack.daemon.request("status", user=person.user.name)
    assert status["failures"] == 1 and status["strikes"] == 1


def test_the_limit_on_sends_holds(stack: Stack, person: Person) -> None:
    for _ in range(2):
        assert login(stack, person.user, "email", "00000000").returncode == 255
    third = login(stack, person.user, "email")
    assert third.returncode == 255
    assert "Too many codes were sent by email" in third.output
    assert len(stack.relay.messages) == 2


def test_a_relay_that_is_down_gives_the_clear_message_and_changes_nothing(
    stack: Stack, person: Person
) -> None:
    stack.relay.stop()
    before = stack.daemon.request("status", user=person.user.name)
    done = login(stack, person.user, "email")
    assert done.returncode == 255
    assert "The code could not be sent by email. Try again later, or use a recovery code." in (
        done.output
    )
    after = stack.daemon.request("status", user=person.user.name)
    assert (after["failures"], after["strikes"]) == (before["failures"], before["strikes"])
    assert "not delivered" in stack.daemon.log_text()


def prompts_of(done: object, name: str) -> list[str]:
    """What a person was shown, with their name taken out."""
    return [line.replace(name, "NAME") for line in done.prompts]  # type: ignore[attr-defined]


def test_an_unknown_name_and_a_user_without_an_address_see_the_same_words(
    stack: Stack, person: Person
) -> None:
    with throwaway_user() as plain:
        set_password(plain.name, PASSWORD)
        enroll(stack.daemon, plain.name)  # an account, but no address
        without = login(stack, plain, "email", "12345678")
        with_address = login(stack, person.user, "email", "12345678")
    assert without.returncode == with_address.returncode == 255
    assert prompts_of(without, plain.name) == prompts_of(with_address, person.user.name)
    assert SENT in without.output
    assert len(stack.relay.messages) == 1  # only the account with an address got mail


def test_a_name_with_no_account_sees_the_same_words_and_nothing_is_sent(
    stack: Stack, person: Person
) -> None:
    """Through the real PAM stack (pamtester) with the hook alone: sshd itself answers
    for a name with no account with a bogus response, so a stranger never types
    `email` there; any other PAM client lets them, and must learn nothing."""
    hook = f"auth required {PAM_PYTHON} {HOOK} socket={stack.daemon.socket}"
    with pam_service("twofa-test-email", [hook]) as service:
        items = {"rhost": "127.0.0.1"}
        stranger = pamtester(service, "nosuchuser7", ["email", "12345678"], items=items)
        real = pamtester(service, person.user.name, ["email", "12345678"], items=items)
    assert stranger.returncode == real.returncode != 0
    assert prompts_of(stranger, "nosuchuser7") == prompts_of(real, person.user.name)
    assert HINT in stranger.output and SENT in stranger.output
    assert len(stack.relay.wait_for(1)) == 1  # the real account's message only


def test_nothing_is_sent_where_the_policy_does_not_allow_it(stack: Stack) -> None:
    import subprocess

    subprocess.run(["groupadd", "-f", "twofanomail"], check=True)
    with throwaway_user(groups=("twofanomail",)) as kept_out:
        set_password(kept_out.name, PASSWORD)
        enroll(stack.daemon, kept_out.name)
        stack.daemon.request("email.set", user=kept_out.name, address="k@example.test")
        done = login(stack, kept_out, "email")
    assert done.returncode == 255 and HINT not in done.output
    assert "Invalid verification code" in done.output
    time.sleep(0.5)
    assert stack.relay.messages == []
