"""The "Two-step verification" page in Debian's Cockpit 287, as people use it: a
headless Chromium logs in (password, then an oathtool code where one is needed), opens
the page from the checkout's cockpit/twofa/, and clicks what a person would.  The
page runs the real `twofa` and `twofactl` against the test's twofad; what it shows is
checked against what the daemon holds.  The QR code is decoded by zbarimg from the
very image the page shows.  Each test saves screenshots under build/screenshots/.
"""

from __future__ import annotations

import base64
import contextlib
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.support.ui import Select, WebDriverWait

from support.cli import twofactl
from support.cockpit import REPO, Browser, CockpitServer, Console
from support.daemon import Daemon
from support.enrollment import HOOK, Enrolled, enroll
from support.oath import oathtool
from support.pam import PAM_PYTHON
from support.users import TestUser, set_password, throwaway_user

pytestmark = pytest.mark.integration

PASSWORD = "web console 7"
PAGE = REPO / "cockpit" / "twofa"


@pytest.fixture
def policy_path(shared_dir: Path) -> Path:
    """The shipped way: the policy includes its drop-ins, which the page writes."""
    path = shared_dir / "policy.yaml"
    path.write_text("default: optional\ninclude: [policy.d/*.yaml]\n")
    return path


@pytest.fixture
def admin(hook_daemon: Daemon) -> Iterator[Enrolled]:
    with throwaway_user("tfa") as user:
        set_password(user.name, PASSWORD)
        codes, recovery = enroll(hook_daemon, user.name)
        yield Enrolled(user, codes, recovery)


@pytest.fixture
def newcomer() -> Iterator[TestUser]:
    """A person with no app yet."""
    with throwaway_user("tfa") as user:
        set_password(user.name, PASSWORD)
        yield user


@pytest.fixture
def cockpit(hook_daemon: Daemon, admin: Enrolled) -> Iterator[CockpitServer]:
    lines = [
        "auth requisite pam_unix.so",
        f"auth required {PAM_PYTHON} {HOOK} socket={hook_daemon.socket}",
        "account required pam_unix.so",
        "session required pam_permit.so",
    ]
    with CockpitServer(
        lines, pages={"twofa": PAGE}, socket=hook_daemon.socket, admins=[admin.user.name]
    ) as server:
        yield server


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    with Browser(downloads=tmp_path / "downloads") as started:
        yield started


def status(daemon: Daemon, user: str) -> dict[str, object]:
    done = twofactl(daemon.socket, "status", user, "--json")
    assert done.returncode == 0, done.stderr
    return dict(done.json()[0])


def click(browser: Browser, element_id: str) -> None:
    browser.wait_for(element_id).click()


def type_into(browser: Browser, element_id: str, text: str) -> None:
    field = browser.wait_for(element_id)
    field.clear()
    field.send_keys(text)


def decoded_qr(browser: Browser, image_id: str, tmp_path: Path) -> str:
    """What zbarimg reads from the PNG the page shows."""
    source = str(browser.wait_for(image_id).get_attribute("src"))
    prefix = "data:image/png;base64,"
    assert source.startswith(prefix)
    image = tmp_path / "qr.png"
    image.write_bytes(base64.b64decode(source[len(prefix) :]))
    done = subprocess.run(
        ["zbarimg", "--quiet", "--raw", str(image)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def shot(browser: Browser, name: str, element_id: str | None = None) -> None:
    """A screenshot with `element_id` (what the test is about) in the middle of the view."""
    if element_id is not None:
        element = browser.wait_for(element_id)
        browser.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    browser.screenshot(name)


def code_now(secret: str) -> str:
    """The current step's code, far enough from its end to be typed in time."""
    left = 30 - time.time() % 30
    if left < 4:
        time.sleep(left + 0.5)
    return oathtool(secret, time.time())


def test_a_person_sets_up_through_the_page(
    hook_daemon: Daemon,
    cockpit: CockpitServer,
    browser: Browser,
    newcomer: TestUser,
    tmp_path: Path,
) -> None:
    console = Console(browser, cockpit)
    console.log_in(newcomer.name, PASSWORD)  # optional, and no app yet: no code asked
    console.open_page("twofa")
    assert browser.wait_text("my-state") == "Disabled"
    browser.screenshot("cockpit-page-person-start")
    click(browser, "setup-start")

    key = browser.wait_text("setup-key").replace(" ", "")
    assert re.fullmatch(r"(\S{4} )*\S{1,4}", browser.text("setup-key"))
    link = str(browser.wait_for("setup-link").get_attribute("href"))
    uri = decoded_qr(browser, "setup-qr", tmp_path)
    assert uri == link and uri.startswith("otpauth://totp/")
    assert f"secret={key}" in uri
    shot(browser, "cockpit-page-person-setup", "setup-key")

    wrong = "000000" if oathtool(key, time.time()) != "000000" else "111111"
    type_into(browser, "setup-code", wrong)
    click(browser, "setup-confirm")
    refusal = browser.wait_text("setup-error")
    assert "[invalid_code]" in refusal and status(hook_daemon, newcomer.name)["state"] != "enabled"

    type_into(browser, "setup-code", code_now(key))
    click(browser, "setup-confirm")
    browser.wait_for("recovery-codes")
    items = browser.driver.find_elements("css selector", "#recovery-codes li")
    codes = [str(item.text) for item in items]
    assert all(re.fullmatch(r"[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}", code) for code in codes)
    assert len(codes) == 8
    shot(browser, "cockpit-page-person-recovery-codes", "recovery-codes")
    click(browser, "recovery-download")
    saved = browser.downloaded(f"recovery-codes-{newcomer.name}.txt").read_text()
    assert re.findall(r"[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}", saved) == codes
    assert newcomer.name in saved

    account = status(hook_daemon, newcomer.name)
    assert account["state"] == "enabled" and account["recovery_codes_left"] == 8
    # One of the codes the page gave is a working recovery code, and works once.
    used = hook_daemon.request("verify", user=newcomer.name, code=codes[0], service="sshd")
    assert used["result"] == "accepted"
    again = hook_daemon.request("verify", user=newcomer.name, code=codes[0], service="sshd")
    assert again["result"] != "accepted"

    click(browser, "recovery-done")
    assert browser.wait_text("my-state") == "Enabled"
    assert browser.wait_text("my-recovery-left") == "7"


def test_a_person_adds_renames_and_removes_a_device(
    hook_daemon: Daemon,
    cockpit: CockpitServer,
    browser: Browser,
    admin: Enrolled,
    tmp_path: Path,
) -> None:
    person = admin  # an enrolled account, logged in without administrative access
    console = Console(browser, cockpit)
    console.log_in(person.user.name, PASSWORD, person.codes.next)
    console.open_page("twofa")
    browser.wait_for("devices")
    type_into(browser, "device-name", "tablet")
    click(browser, "device-add")
    type_into(browser, "code-input", person.codes.next())
    click(browser, "code-submit")
    tablet_key = browser.wait_text("setup-key").replace(" ", "")
    assert decoded_qr(browser, "setup-qr", tmp_path) == browser.wait_for(
        "setup-link"
    ).get_attribute("href")
    type_into(browser, "setup-code", code_now(tablet_key))
    click(browser, "setup-confirm")
    browser.wait_text("my-alert", lambda text: "tablet" in text)
    devices = {d["name"]: d["state"] for d in status(hook_daemon, person.user.name)["devices"]}  # type: ignore[attr-defined]
    assert devices == {"phone": "active", "tablet": "active"}

    # A name that looks like markup stays text: the page shows it as typed.
    odd = "<b>ipad</b>"
    browser.wait_css('button[data-device="tablet"][data-action="rename"]').click()
    type_into(browser, "rename-input", odd)
    click(browser, "rename-submit")
    cell = browser.wait_css(f'tr[data-device="{odd}"] td')
    assert cell.text == odd and not browser.driver.find_elements("css selector", "#devices b")
    shot(browser, "cockpit-page-person-devices", "devices")

    browser.wait_css(f'button[data-device="{odd}"][data-action="remove"]').click()
    type_into(browser, "code-input", "000000")
    click(browser, "code-submit")
    assert "[invalid_code]" in browser.wait_text("code-error")
    assert len(status(hook_daemon, person.user.name)["devices"]) == 2  # type: ignore[arg-type]
    type_into(browser, "code-input", person.recovery_codes[0])
    click(browser, "code-submit")
    browser.wait_text("my-alert", lambda text: "removed" in text)
    names = [d["name"] for d in status(hook_daemon, person.user.name)["devices"]]  # type: ignore[attr-defined]
    assert names == ["phone"]


def lock(daemon: Daemon, user: str) -> None:
    for _ in range(8):
        daemon.request("verify", user=user, code="000000", service="sshd", rhost="127.0.0.1")
    assert status(daemon, user)["locked"]


def test_an_administrator_filters_requires_a_group_and_unlocks(
    hook_daemon: Daemon,
    cockpit: CockpitServer,
    browser: Browser,
    admin: Enrolled,
    newcomer: TestUser,
    policy_path: Path,
) -> None:
    with throwaway_user("tfa") as locked_out:
        locked_codes, _ = enroll(hook_daemon, locked_out.name)
        lock(hook_daemon, locked_out.name)
        policy_before = policy_path.read_bytes()

        console = Console(browser, cockpit)
        console.log_in(admin.user.name, PASSWORD, admin.codes.next, admin=True)
        console.open_page("twofa")
        browser.wait_css("#tab-admin button").click()
        browser.wait_css(f'tr[data-user="{locked_out.name}"]')

        # Require the newcomer's group (every account has a group of its own name).
        browser.wait_text("require-file")  # the drop-in's users and groups are read
        type_into(browser, "require-groups", newcomer.name)
        click(browser, "require-preview")
        warning = browser.wait_text("require-incomplete")
        assert newcomer.name in warning and "not set up yet" in warning
        shot(browser, "cockpit-page-admin-require-preview", "require-incomplete")
        assert not (policy_path.parent / "policy.d" / "web-console.yaml").exists()
        click(browser, "require-apply")
        browser.wait_for("require-applied")
        assert policy_path.read_bytes() == policy_before
        explained = twofactl(
            hook_daemon.socket, "policy", "explain", newcomer.name, "--service", "sshd", "--json"
        ).json()
        assert explained["action"] == "required" and explained["rule"] == "web-console-groups"
        # Read back, and emptied: the preview says who the page would no longer require.
        groups = browser.wait_for("require-groups")
        WebDriverWait(browser.driver, 30).until(
            lambda _: groups.get_attribute("value") == newcomer.name
        )
        groups.clear()
        groups.send_keys(" ")
        click(browser, "require-preview")
        dropped = browser.wait_text("require-dropped")
        assert f"No longer required by this page: group {newcomer.name}" in dropped

        # Filter to Incomplete: the newcomer, and only accounts in that state.
        Select(browser.wait_for("accounts-filter")).select_by_value("incomplete")
        row = browser.wait_css(f'tr[data-user="{newcomer.name}"]')
        assert "Incomplete" in row.text
        states = browser.driver.find_elements("css selector", "#accounts-body [data-state]")
        assert states and {s.get_attribute("data-state") for s in states} == {"incomplete"}
        shot(browser, "cockpit-page-admin-incomplete", "accounts")

        # Unlock the locked account.
        Select(browser.wait_for("accounts-filter")).select_by_value("locked")
        browser.wait_css(f'button[data-user="{locked_out.name}"][data-action="unlock"]').click()
        assert "unlocked" in browser.wait_text("admin-alert", lambda text: "unlocked" in text)
        assert not status(hook_daemon, locked_out.name)["locked"]
        assert (
            hook_daemon.request(
                "verify", user=locked_out.name, code=locked_codes.next(), service="sshd"
            )["result"]
            == "accepted"
        )
        shot(browser, "cockpit-page-admin-unlocked", "admin-alert")


def test_the_lockout_guard_is_shown_and_holds(
    hook_daemon: Daemon,
    cockpit: CockpitServer,
    browser: Browser,
    admin: Enrolled,
    newcomer: TestUser,
    policy_path: Path,
) -> None:
    # The administrators are root and the newcomer (by group), neither with an app, and
    # no set-up is offered at login: requiring both would leave no way in.
    policy_path.write_text(
        "default: optional\ninclude: [policy.d/*.yaml]\n"
        f"admins:\n  groups: [{newcomer.name}]\nenrollment:\n  at_login: false\n"
    )
    assert twofactl(hook_daemon.socket, "reload").returncode == 0
    console = Console(browser, cockpit)
    console.log_in(admin.user.name, PASSWORD, admin.codes.next, admin=True)
    console.open_page("twofa")
    browser.wait_css("#tab-admin button").click()
    browser.wait_text("require-file")
    # A name twofactl would read as an option (run as root) never reaches it.
    type_into(browser, "require-users", f"{newcomer.name} --socket=/tmp/elsewhere")
    click(browser, "require-preview")
    refused = browser.wait_text("require-error")
    assert 'Not a user name: --socket=/tmp/elsewhere (a name cannot begin with "-")' in refused
    type_into(browser, "require-users", f"{newcomer.name}, root")
    click(browser, "require-preview")
    assert "no administrator could log in" in browser.wait_text("require-lockout")
    shot(browser, "cockpit-page-admin-lockout", "require-lockout")
    # Changed after the preview, the preview is gone: Apply is only ever of what was shown.
    browser.wait_for("require-users").send_keys(" alice")
    assert browser.driver.find_elements("id", "require-apply") == []
    type_into(browser, "require-users", f"{newcomer.name}, root")
    click(browser, "require-preview")
    browser.wait_text("require-lockout")
    click(browser, "require-apply")
    refused = browser.wait_text("require-error")
    assert "--force" in refused or "lock" in refused
    assert not (policy_path.parent / "policy.d" / "web-console.yaml").exists()
    explained = twofactl(
        hook_daemon.socket, "policy", "explain", newcomer.name, "--service", "sshd", "--json"
    ).json()
    assert explained["action"] == "optional"


def test_a_person_never_sees_the_administrators_part(
    hook_daemon: Daemon,
    cockpit: CockpitServer,
    browser: Browser,
    admin: Enrolled,
    newcomer: TestUser,
) -> None:
    lock(hook_daemon, admin.user.name)
    console = Console(browser, cockpit)
    console.log_in(newcomer.name, PASSWORD)
    console.open_page("twofa")
    browser.wait_for("my-state")
    assert not browser.driver.find_element("id", "tabs").is_displayed()
    assert not browser.driver.find_element("id", "admin").is_displayed()
    assert browser.driver.find_elements("css selector", "#admin *") == []
    browser.screenshot("cockpit-page-person-limited")
    # What the page's scripts could do, tried from the page: twofactl, with and
    # without asking for administrative access; and twofa, which has no way to name
    # another account.
    tried = console.run_js(
        """
        const runs = [
            cockpit.spawn(["twofactl", "unlock", "--json", "--", arguments[0]],
                          { superuser: "require", err: "message" }),
            cockpit.spawn(["twofactl", "unlock", "--json", "--", arguments[0]], { err: "message" }),
            cockpit.spawn(["twofactl", "status", "--json"], { err: "message" }),
        ];
        Promise.allSettled(runs).then(results => done(results.map(r =>
            r.status === "fulfilled" ? "ok" : (r.reason.problem || "") + " " + (r.reason.message || ""))));
        """,
        admin.user.name,
    )
    assert all(result != "ok" for result in tried), tried
    assert tried[0].startswith("access-denied")
    assert "administrator" in tried[1] or "root" in tried[1]
    assert status(hook_daemon, admin.user.name)["locked"]


def test_the_page_in_the_dark_theme(
    cockpit: CockpitServer, browser: Browser, admin: Enrolled
) -> None:
    console = Console(browser, cockpit)
    console.log_in(admin.user.name, PASSWORD, admin.codes.next, admin=True)
    browser.style("dark")
    console.open_page("twofa")
    browser.wait_for("my-state")
    assert browser.dark()
    browser.screenshot("cockpit-page-person-dark")
    browser.wait_css("#tab-admin button").click()
    browser.wait_css(f'tr[data-user="{admin.user.name}"]')
    browser.screenshot("cockpit-page-admin-dark")
    console.in_shell()
    assert browser.dark()


def test_hundreds_of_accounts_are_searched_and_paged(
    hook_daemon: Daemon, cockpit: CockpitServer, browser: Browser, admin: Enrolled
) -> None:
    with contextlib.ExitStack() as accounts:
        names = [accounts.enter_context(throwaway_user("tfp")).name for _ in range(120)]
        for name in names:
            hook_daemon.request("enroll.begin", user=name)
        console = Console(browser, cockpit)
        console.log_in(admin.user.name, PASSWORD, admin.codes.next, admin=True)
        console.open_page("twofa")
        browser.wait_css("#tab-admin button").click()
        total = len(names) + 1
        assert browser.wait_text("accounts-count", lambda t: "of" in t) == f"1–50 of {total}"
        assert len(browser.driver.find_elements("css selector", "#accounts-body tr")) == 50
        click(browser, "accounts-next")
        click(browser, "accounts-next")
        assert browser.wait_text("accounts-count") == f"101–{total} of {total}"
        assert not browser.wait_for("accounts-next").is_enabled()
        shot(browser, "cockpit-page-admin-last-page", "accounts")
        # A search starts from the first page again, and finds by part of a name.
        type_into(browser, "accounts-search", names[77][3:])
        row = browser.wait_css(f'tr[data-user="{names[77]}"]')
        assert browser.text("accounts-count") == "1–1 of 1" and names[77] in row.text
        # Set-ups begun and never confirmed are Disabled, not Enabled.
        assert "Disabled" in row.text
