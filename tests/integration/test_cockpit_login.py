"""Cockpit's login form asks for the code after the password: Debian's cockpit-ws on
127.0.0.1 (its PAM stack the test's own, in a private mount namespace), the hook in
pam_python.so after pam_unix, a real twofad, and a headless Chromium typing what a
person would, codes from oathtool.  Each test saves what the form showed under
build/screenshots/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cockpit import REPO, Browser, CockpitServer, LoginForm
from support.daemon import Daemon
from support.enrollment import HOOK, Enrolled
from support.oath import oathtool
from support.pam import PAM_PYTHON
from support.users import TestUser, set_password, throwaway_user

pytestmark = pytest.mark.integration

PASSWORD = "web console 7"
PROMPT = "Verification code:"


@pytest.fixture
def cockpit(hook_daemon: Daemon) -> Iterator[CockpitServer]:
    lines = [
        "auth requisite pam_unix.so",
        f"auth required {PAM_PYTHON} {HOOK} socket={hook_daemon.socket}",
        "account required pam_unix.so",
        "session required pam_permit.so",
    ]
    with CockpitServer(lines) as server:
        yield server


@pytest.fixture
def browser() -> Iterator[Browser]:
    with Browser() as started:
        yield started


@pytest.fixture
def web_user(enrolled: Enrolled) -> Enrolled:
    set_password(enrolled.user.name, PASSWORD)
    return enrolled


def test_password_then_a_code_opens_the_console(
    cockpit: CockpitServer, browser: Browser, web_user: Enrolled
) -> None:
    form = LoginForm(browser, cockpit)
    form.log_in(web_user.user.name, PASSWORD)
    message, prompt = form.prompt()
    assert prompt == PROMPT and message == ""
    browser.screenshot("cockpit-login-asks-the-code")
    form.answer(web_user.codes.next())
    assert form.logged_in(), browser.driver.current_url
    browser.screenshot("cockpit-login-in")


def test_a_wrong_code_is_said_in_the_form_and_refused(
    cockpit: CockpitServer, browser: Browser, web_user: Enrolled, hook_daemon: Daemon
) -> None:
    form = LoginForm(browser, cockpit)
    form.log_in(web_user.user.name, PASSWORD)
    form.prompt()
    form.answer("000000")
    message, prompt = form.prompt()
    assert message == "Invalid verification code" and prompt == "Press Enter to continue:"
    browser.screenshot("cockpit-login-wrong-code")
    form.answer("")
    assert form.error() == "Authentication failed"
    assert not form.logged_in(timeout=2)
    assert hook_daemon.request("status", user=web_user.user.name)["failures"] == 1


def test_a_recovery_code_says_how_many_are_left(
    cockpit: CockpitServer, browser: Browser, web_user: Enrolled
) -> None:
    form = LoginForm(browser, cockpit)
    form.log_in(web_user.user.name, PASSWORD)
    form.prompt()
    form.answer(web_user.recovery_codes[0])
    message, _ = form.prompt()
    left = len(web_user.recovery_codes) - 1
    assert message == f"Recovery code accepted; {left} left."
    browser.screenshot("cockpit-login-recovery-code")
    form.answer("")
    assert form.logged_in()


def test_a_lock_is_said_in_the_form(
    cockpit: CockpitServer, browser: Browser, web_user: Enrolled, hook_daemon: Daemon
) -> None:
    for _ in range(5):
        hook_daemon.request("verify", user=web_user.user.name, code="000000")
    form = LoginForm(browser, cockpit)
    form.log_in(web_user.user.name, PASSWORD)
    message, _ = form.prompt()
    assert re.fullmatch(r"Too many failed attempts; try again in \d+ seconds", message), message
    browser.screenshot("cockpit-login-locked")


@pytest.fixture
def required_cockpit(shared_dir: Path) -> Iterator[tuple[Daemon, CockpitServer]]:
    policy = shared_dir / "policy.yaml"
    policy.write_text("default: required\n")
    daemon = Daemon(shared_dir, "--policy", str(policy)).start()
    lines = [
        "auth requisite pam_unix.so",
        f"auth required {PAM_PYTHON} {HOOK} socket={daemon.socket}",
        "account required pam_unix.so",
        "session required pam_permit.so",
    ]
    try:
        with CockpitServer(lines) as server:
            yield daemon, server
    finally:
        daemon.stop()


@pytest.fixture
def newcomer() -> Iterator[TestUser]:
    with throwaway_user() as user:
        set_password(user.name, PASSWORD)
        yield user


def test_a_required_person_is_walked_through_set_up_in_the_form(
    required_cockpit: tuple[Daemon, CockpitServer], browser: Browser, newcomer: TestUser
) -> None:
    daemon, cockpit = required_cockpit
    form = LoginForm(browser, cockpit)
    form.log_in(newcomer.name, PASSWORD)
    message, prompt = form.prompt()
    assert "enter a setup key" in message and "█" not in message  # no QR code in a form
    key = re.search(r"Key: ((?:[A-Z2-7]{4} ?)+)", message)
    link = re.search(r"link on the phone: (otpauth://totp/\S+)", message)
    assert key and link, message
    secret = key.group(1).replace(" ", "")
    assert f"secret={secret}" in link.group(1)
    browser.screenshot("cockpit-login-set-up")
    form.answer(oathtool(secret, time.time()))
    message, prompt = form.prompt()
    assert "Recovery codes" in message and prompt == "Press Enter once they are stored:"
    codes = re.findall(r"\b([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})\b", message)
    browser.screenshot("cockpit-login-recovery-codes")
    form.answer("")
    assert form.logged_in()
    status = daemon.request("status", user=newcomer.name)
    assert status["enrollment"] == "active"
    assert len(codes) == status["recovery_codes_left"] == 8  # every code, readable in the form
    # One of them works (a later login's second factor), as read from the form.
    assert daemon.request("verify", user=newcomer.name, code=codes[0])["result"] == "accepted"


def test_the_shipped_example_works_as_written(
    hook_daemon: Daemon, browser: Browser, web_user: Enrolled
) -> None:
    """config/pam.d/cockpit, Debian's stack with the hook after common-auth."""
    installed = "/usr/lib/python3/dist-packages/pam_twofa/hook.py"
    text = (REPO / "config" / "pam.d" / "cockpit").read_text()
    lines = text.replace(installed, f"{HOOK} socket={hook_daemon.socket}").splitlines()
    with CockpitServer([line for line in lines if line.strip()]) as server:
        form = LoginForm(browser, server)
        form.log_in(web_user.user.name, PASSWORD)
        assert form.prompt()[1] == PROMPT
        form.answer(web_user.codes.next())
        assert form.logged_in(), server.log.read_text(errors="replace")
