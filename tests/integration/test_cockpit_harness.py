"""The Cockpit harness itself, shown with a tiny page of the test's own ("probe"):
Debian's cockpit-ws 287 in a private mount namespace, where the page is a package,
`twofa` and `twofactl` reach the test's twofad, and one account is in a sudoers
drop-in; a headless Chromium logs in with a password and an oathtool code.

The page runs `twofa status --json` as the person, `twofactl status --json` with
{superuser: "require"}, and offers a download made from a Blob.  Each test saves what
the browser showed under build/screenshots/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cockpit import Browser, CockpitServer, Console, write_page
from support.daemon import Daemon
from support.enrollment import HOOK, Enrolled, enroll
from support.pam import PAM_PYTHON
from support.users import set_password, throwaway_user

pytestmark = pytest.mark.integration

PASSWORD = "web console 7"
DOWNLOAD = "abcd-efgh-ijkl\nmnop-qrst-uvwx\n"

PROBE_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
    <meta charset="utf-8">
    <title>Probe</title>
    <link href="probe.css" type="text/css" rel="stylesheet">
    <script src="../base1/cockpit.js"></script>
    <script src="probe.js"></script>
</head>
<body>
    <h1>Probe</h1>
    <h2>twofa status --json</h2>
    <pre id="mine"></pre>
    <h2>twofactl status --json (superuser: require)</h2>
    <pre id="admin"></pre>
    <a id="download" download="recovery-codes.txt">Download recovery codes</a>
</body>
</html>
"""

PROBE_CSS = """
body { font-family: sans-serif; margin: 1em; }
pre { white-space: pre-wrap; max-height: 12em; overflow: auto; border: 1px solid #ccc; }
pre[data-outcome="error"] { color: #a30000; }
"""

# Scripts only from files: Cockpit's default Content-Security-Policy has no inline.
PROBE_JS = """
"use strict";
function show(id, spawned) {
    const element = document.getElementById(id);
    spawned
        .then(out => {
            element.textContent = out;
            element.dataset.outcome = "ok";
        })
        .catch(err => {
            element.textContent = JSON.stringify({ problem: err.problem || null,
                                                   message: err.message || String(err) });
            element.dataset.outcome = "error";
        });
}
document.addEventListener("DOMContentLoaded", () => {
    show("mine", cockpit.spawn(["twofa", "status", "--json"], { err: "message" }));
    show("admin", cockpit.spawn(["twofactl", "status", "--json"],
                                { superuser: "require", err: "message" }));
    const blob = new Blob([@DOWNLOAD@], { type: "text/plain" });
    document.getElementById("download").href = URL.createObjectURL(blob);
});
""".replace("@DOWNLOAD@", json.dumps(DOWNLOAD))

MANIFEST = {"version": 0, "tools": {"index": {"label": "Probe"}}}


@pytest.fixture
def probe(shared_dir: Path) -> Path:
    return write_page(
        shared_dir / "probe",
        {"index.html": PROBE_HTML, "probe.js": PROBE_JS, "probe.css": PROBE_CSS},
        MANIFEST,
    )


@pytest.fixture
def admin(hook_daemon: Daemon) -> Iterator[Enrolled]:
    with throwaway_user("tfa") as user:
        set_password(user.name, PASSWORD)
        codes, recovery = enroll(hook_daemon, user.name)
        yield Enrolled(user, codes, recovery)


@pytest.fixture
def web_user(enrolled: Enrolled) -> Enrolled:
    set_password(enrolled.user.name, PASSWORD)
    return enrolled


@pytest.fixture
def cockpit(hook_daemon: Daemon, probe: Path, admin: Enrolled) -> Iterator[CockpitServer]:
    lines = [
        "auth requisite pam_unix.so",
        f"auth required {PAM_PYTHON} {HOOK} socket={hook_daemon.socket}",
        "account required pam_unix.so",
        "session required pam_permit.so",
    ]
    with CockpitServer(
        lines, pages={"probe": probe}, socket=hook_daemon.socket, admins=[admin.user.name]
    ) as server:
        yield server


@pytest.fixture
def browser() -> Iterator[Browser]:
    with Browser() as started:
        yield started


def outcome(browser: Browser, element_id: str) -> tuple[str, str]:
    """("ok", stdout) or ("error", the problem and message as JSON), once the page has it."""
    browser.wait_text(element_id)
    element = browser.driver.find_element("id", element_id)
    return str(element.get_attribute("data-outcome")), str(element.get_attribute("textContent"))


def test_the_namespace_has_the_page_the_commands_and_the_drop_in(
    cockpit: CockpitServer, web_user: Enrolled, admin: Enrolled
) -> None:
    packages = cockpit.run("cockpit-bridge", "--packages", user=web_user.user.name)
    assert "/usr/local/share/cockpit/probe" in packages.stdout, packages
    mine = cockpit.run("twofa", "status", "--json", user=web_user.user.name)
    assert mine.returncode == 0, mine
    assert json.loads(mine.stdout)["enrollment"] == "active"
    assert cockpit.run("sudo", "-l", "-U", admin.user.name).returncode == 0
    refused = cockpit.run("sudo", "-l", "-U", web_user.user.name)
    assert "not allowed" in refused.stdout + refused.stderr, refused
    # Outside, the machine's own: no package, no command, no drop-in.
    outside = Path("/usr/local/share/cockpit/probe")
    assert not outside.exists() and not Path("/usr/local/bin/twofactl").exists()
    assert not Path("/etc/sudoers.d/twofa-test").exists()


def test_a_person_sees_his_own_status_and_is_no_administrator(
    cockpit: CockpitServer, browser: Browser, web_user: Enrolled
) -> None:
    console = Console(browser, cockpit)
    console.log_in(web_user.user.name, PASSWORD, web_user.codes.next)
    console.open_page("probe")
    kind, text = outcome(browser, "mine")
    assert kind == "ok", text
    status = json.loads(text)
    assert status["enrollment"] == "active"
    assert status["recovery_codes_left"] == len(web_user.recovery_codes)
    kind, text = outcome(browser, "admin")
    assert kind == "error" and json.loads(text)["problem"] == "access-denied", text
    assert console.superuser() == "none" and not console.admin()
    browser.screenshot("cockpit-harness-person")
    assert console.access() == "Limited access"


def test_an_administrator_gets_access_by_the_top_bar(
    cockpit: CockpitServer, browser: Browser, admin: Enrolled
) -> None:
    console = Console(browser, cockpit)
    console.log_in(admin.user.name, PASSWORD, admin.codes.next)
    console.open_page("probe")
    assert outcome(browser, "admin")[0] == "error"  # limited access, at first
    assert console.open_access_dialog()
    browser.screenshot("cockpit-harness-sudo-asks")
    console.open_page("probe")  # anew: the dialog gone, as a person who cancelled
    console.gain_admin(PASSWORD)
    assert console.page == "probe" and console.superuser() == "sudo"
    kind, text = outcome(browser, "admin")
    assert kind == "ok", text
    assert admin.user.name in [entry["user"] for entry in json.loads(text)]
    browser.screenshot("cockpit-harness-admin")
    assert console.access() == "Administrative access"


def test_a_wrong_password_for_sudo_is_said(
    cockpit: CockpitServer, browser: Browser, admin: Enrolled
) -> None:
    console = Console(browser, cockpit)
    console.log_in(admin.user.name, PASSWORD, admin.codes.next)
    with pytest.raises(AssertionError, match=r"sudo asked again: Sorry, try again\."):
        console.gain_admin("not the password")
    browser.screenshot("cockpit-harness-sudo-wrong-password")


def test_an_administrator_gets_access_at_login_with_the_password(
    cockpit: CockpitServer, browser: Browser, admin: Enrolled
) -> None:
    """The login's password (the first answer, before the code) goes to sudo."""
    console = Console(browser, cockpit)
    console.log_in(admin.user.name, PASSWORD, admin.codes.next, admin=True)
    assert console.admin()
    assert console.access() == "Administrative access"
    console.open_page("probe")
    kind, text = outcome(browser, "admin")
    assert kind == "ok", text
    browser.screenshot("cockpit-harness-admin-at-login")


def test_a_person_cannot_ask_for_access_at_login(
    cockpit: CockpitServer, browser: Browser, web_user: Enrolled
) -> None:
    console = Console(browser, cockpit)
    console.log_in(web_user.user.name, PASSWORD, web_user.codes.next, admin=True)
    assert not console.admin()
    console.open_page("probe")
    assert outcome(browser, "admin")[0] == "error"


def test_a_page_download_lands(
    cockpit: CockpitServer, browser: Browser, web_user: Enrolled
) -> None:
    console = Console(browser, cockpit)
    console.log_in(web_user.user.name, PASSWORD, web_user.codes.next)
    console.open_page("probe")
    outcome(browser, "mine")
    browser.wait_for("download").click()
    path = browser.downloaded("recovery-codes.txt")
    assert path.read_text() == DOWNLOAD and path.parent == browser.downloads
    browser.screenshot("cockpit-harness-download")


@pytest.fixture
def dark_browser() -> Iterator[Browser]:
    with Browser(dark=True) as started:
        yield started


def test_dark_mode_shows_on_cockpits_own_page(
    cockpit: CockpitServer, dark_browser: Browser, web_user: Enrolled
) -> None:
    console = Console(dark_browser, cockpit)
    console.log_in(web_user.user.name, PASSWORD, web_user.codes.next)
    console.open_page("system")
    dark_browser.wait_css(".pf-c-card")
    assert dark_browser.dark()
    dark_browser.screenshot("cockpit-harness-dark")
    console.in_shell()
    assert dark_browser.dark()


def test_cockpits_own_style_choice_wins_over_the_browsers(
    cockpit: CockpitServer, dark_browser: Browser, web_user: Enrolled
) -> None:
    console = Console(dark_browser, cockpit)
    console.log_in(web_user.user.name, PASSWORD, web_user.codes.next)
    dark_browser.style("light")
    console.open_page("system")
    dark_browser.wait_css(".pf-c-card")
    assert not dark_browser.dark()
    dark_browser.screenshot("cockpit-harness-light-chosen")


def test_a_light_browser_can_be_told_dark(
    cockpit: CockpitServer, browser: Browser, web_user: Enrolled
) -> None:
    console = Console(browser, cockpit)
    console.log_in(web_user.user.name, PASSWORD, web_user.codes.next)
    console.open_page("system")
    assert not browser.dark()
    browser.style("dark")
    console.open_page("system")
    browser.wait_css(".pf-c-card")
    assert browser.dark()
