"""Debian's real Cockpit for the tests: cockpit-ws on 127.0.0.1 and a headless Chromium.

`CockpitServer` runs /usr/lib/cockpit/cockpit-ws --no-tls on a free port of 127.0.0.1
in a private mount namespace (`unshare -m`), where the test's own PAM stack is bind
mounted over /etc/pam.d/cockpit: cockpit-ws and the cockpit-session it starts for
each login read that file, while the machine's own stays as it is, for every other
process.  It is stopped by the process group it was started in.

`Browser` is Debian's chromium, headless, driven through chromium-driver and
python3-selenium; `screenshot` saves what a person sees as a PNG under
build/screenshots/, named after the test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "build" / "screenshots"
COCKPIT_WS = "/usr/lib/cockpit/cockpit-ws"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class CockpitServer:
    """One cockpit-ws on 127.0.0.1:<free port>, logging in through `pam_lines`."""

    def __init__(self, pam_lines: Iterable[str]) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="twofa-cockpit-"))
        self.pam_file = self.directory / "cockpit.pam"
        self.pam_file.write_text("\n".join(pam_lines) + "\n")
        self.log = self.directory / "cockpit-ws.log"
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 20.0) -> CockpitServer:
        script = (
            'mount --bind "$1" /etc/pam.d/cockpit && '
            f'exec {COCKPIT_WS} --no-tls --address 127.0.0.1 --port "$2"'
        )
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
                + [str(self.pam_file), str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: cockpit-session and the bridges too
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cockpit-ws exited: {self.log.read_text(errors='replace')}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("cockpit-ws did not listen")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        for path in (self.pam_file, self.log):
            path.unlink(missing_ok=True)
        self.directory.rmdir()

    def __enter__(self) -> CockpitServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Browser:
    """A headless Chromium through chromium-driver, for one test."""

    def __init__(self, *, dark: bool = False) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        for argument in (
            "--headless=new",
            "--no-sandbox",  # root, in a container
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
            "--lang=en-US",
        ):
            options.add_argument(argument)
        if dark:
            options.add_argument("--force-dark-mode")
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.driver.quit()

    def wait_for(self, element_id: str, timeout: float = 30.0):  # type: ignore[no-untyped-def]
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        wait = WebDriverWait(self.driver, timeout)
        return wait.until(expected_conditions.visibility_of_element_located((By.ID, element_id)))

    def text(self, element_id: str) -> str:
        from selenium.webdriver.common.by import By

        return str(self.driver.find_element(By.ID, element_id).text)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path


class LoginForm:
    """Cockpit's login form as a person fills it in: name and password, then each
    prompt of the PAM conversation (the label above the field, the message above it)."""

    def __init__(self, browser: Browser, server: CockpitServer) -> None:
        self.browser = browser
        browser.driver.get(server.url)

    def log_in(self, user: str, password: str) -> None:
        self.browser.wait_for("login-user-input").send_keys(user)
        self.browser.wait_for("login-password-input").send_keys(password)
        self.browser.wait_for("login-button").click()

    def prompt(self) -> tuple[str, str]:
        """(the message shown above the prompt, the prompt) once the form asks."""
        self.settled()
        self.browser.wait_for("conversation-input")
        return self.browser.text("conversation-message"), self.browser.text("conversation-prompt")

    def answer(self, text: str) -> None:
        field = self.browser.wait_for("conversation-input")
        field.clear()
        field.send_keys(text)
        self.browser.wait_for("login-button").click()

    def settled(self, timeout: float = 30.0) -> None:
        """Wait until the form has its answer: the button no longer spins, or the
        console has taken over the page."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "/system" in self.browser.driver.current_url:
                return
            buttons = self.browser.driver.find_elements("id", "login-button")
            if buttons and buttons[0].get_attribute("spinning") is None:
                return
            time.sleep(0.1)
        raise TimeoutError("the login form did not settle")

    def logged_in(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "/system" in self.browser.driver.current_url:
                return True
            time.sleep(0.2)
        return False

    def error(self, timeout: float = 30.0) -> str:
        return str(self.browser.wait_for("login-error-message", timeout).text)
