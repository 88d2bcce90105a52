"""Debian's real Cockpit for the tests: cockpit-ws on 127.0.0.1 and a headless Chromium.

`CockpitServer` runs /usr/lib/cockpit/cockpit-ws --no-tls on a free port of 127.0.0.1
in a private mount namespace (`unshare -m`), where the test's own PAM stack is bind
mounted over /etc/pam.d/cockpit: cockpit-ws and the cockpit-session it starts for
each login read that file, while the machine's own stays as it is, for every other
process.  It is stopped by the process group it was started in.  In the same
namespace, and only there, it can also

- show pages (`pages`): each directory as the Cockpit package of its name, under
  /usr/local/share/cockpit (an overlay on the machine's /usr/local/share, where
  cockpit-bridge looks for packages besides /usr/share/cockpit);
- give `twofa` and `twofactl` (`socket`): two scripts in an overlay on /usr/local/bin
  that run this checkout's commands against the test's daemon.  sudo resets the
  environment and PATH (secure_path has /usr/local/bin), so the scripts set
  TWOFA_SOCKET and PYTHONPATH themselves;
- make administrators (`admins`): a sudoers drop-in `NAME ALL=(ALL:ALL) ALL` in a
  directory bind mounted over /etc/sudoers.d, which the machine's /etc/sudoers
  includes.

`Browser` is Debian's chromium, headless, driven through chromium-driver and
python3-selenium; `screenshot` saves what a person sees as a PNG under
build/screenshots/, named after the test; `downloads` is where the pages' downloads
land, `downloaded` waits for one.  `Browser(dark=True)` asks pages for the dark theme
(prefers-color-scheme: dark); `style` sets Cockpit's own choice ("shell:style").

`LoginForm` fills in Cockpit's login form; `Console` is the console once logged in:
its pages (each in an iframe of the shell), and administrative access.

Administrative access in Cockpit 287: the login form sends the header X-Superuser
with what localStorage "superuser:USER" holds ("none" unless set).  Only when it is
not "none" does cockpit-ws keep the login's password (the first answer, also when
PAM asks a code after it) and hand it to sudo when the login starts its
privileged bridge.  Otherwise the login starts with "Limited access", and the
button of that name in the top bar asks sudo's password in a dialog; once that
worked the shell stores "superuser:USER" = "sudo" for the next login.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "build" / "screenshots"
COCKPIT_WS = "/usr/lib/cockpit/cockpit-ws"
CHROMEDRIVER = "/usr/bin/chromedriver"
PYTHON = "/usr/bin/python3"  # the system's, as the packaged commands run
COMMANDS = {"twofa": "pam_twofa.cli.user", "twofactl": "pam_twofa.cli.ctl"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _overlay(extra: Path, target: str) -> str:
    """A shell line putting `extra` over `target`, the machine's entries still seen.

    A plain bind mount of `extra` (which hides the rest of `target`) where overlayfs
    is not to be had.
    """
    extra_q, target_q = shlex.quote(str(extra)), shlex.quote(target)
    return (
        f"{{ mount -t overlay overlay -o lowerdir={extra_q}:{target_q} {target_q} "
        f"|| mount --bind {extra_q} {target_q}; }}"
    )


class CockpitServer:
    """One cockpit-ws on 127.0.0.1:<free port>, logging in through `pam_lines`.

    pages: package name -> directory, shown as /usr/local/share/cockpit/NAME (a
        "name" in its manifest.json would win over NAME).  The directory and its
        files must be readable by the users who log in; the path to it need not be.
    socket: the test daemon's socket, for the `twofa` and `twofactl` the pages run.
    admins: accounts sudo lets do anything, with their password.
    """

    def __init__(
        self,
        pam_lines: Iterable[str],
        *,
        pages: Mapping[str, Path] | None = None,
        socket: str | None = None,
        admins: Iterable[str] = (),
    ) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="twofa-cockpit-"))
        self.directory.chmod(0o755)  # the users' bridges read pages and scripts here
        self.pam_file = self.directory / "cockpit.pam"
        self.pam_file.write_text("\n".join(pam_lines) + "\n")
        self.log = self.directory / "cockpit-ws.log"
        self.port = _free_port()
        self.pages = {name: Path(path).resolve() for name, path in (pages or {}).items()}
        self.socket = socket
        self.admins = list(admins)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def _mount_lines(self) -> list[str]:
        lines = [f"mount --bind {shlex.quote(str(self.pam_file))} /etc/pam.d/cockpit"]
        if self.pages:
            share = self.directory / "share"
            for name in self.pages:
                if not name or "/" in name or name.startswith("."):
                    raise ValueError(f"not a package name: {name!r}")
                (share / "cockpit" / name).mkdir(parents=True)
            for path in (share, share / "cockpit"):
                path.chmod(0o755)
            lines.append(_overlay(share, "/usr/local/share"))
            # Bound after the overlay (whose layers do not reach into mounts), so that
            # only the directory itself need be readable, not the path to it.
            for name, path in self.pages.items():
                target = f"/usr/local/share/cockpit/{name}"
                lines.append(f"mount --bind {shlex.quote(str(path))} {shlex.quote(target)}")
        if self.socket is not None:
            bin_dir = self.directory / "bin"
            bin_dir.mkdir()
            bin_dir.chmod(0o755)
            for command, module in COMMANDS.items():
                script = bin_dir / command
                script.write_text(
                    "#!/bin/sh\n"
                    f"export TWOFA_SOCKET={shlex.quote(self.socket)}\n"
                    f"export PYTHONPATH={shlex.quote(str(REPO))}\n"
                    f'exec {PYTHON} -m {module} "$@"\n'
                )
                script.chmod(0o755)
            lines.append(_overlay(bin_dir, "/usr/local/bin"))
        if self.admins:
            sudoers = self.directory / "sudoers.d"
            sudoers.mkdir()
            sudoers.chmod(0o755)
            drop_in = sudoers / "twofa-test"
            drop_in.write_text(
                "".join(
                    f"Defaults:{name} lecture=never\n{name} ALL=(ALL:ALL) ALL\n"
                    for name in self.admins
                )
            )
            drop_in.chmod(0o440)
            lines.append(f"mount --bind {shlex.quote(str(sudoers))} /etc/sudoers.d")
        return lines

    def start(self, timeout: float = 20.0) -> CockpitServer:
        script = " && ".join(
            [*self._mount_lines(), f'exec {COCKPIT_WS} --no-tls --address 127.0.0.1 --port "$1"']
        )
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
                + [str(self.port)],
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

    def run(self, *command: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
        """`command` in cockpit-ws's mount namespace (what its logins see), as root or
        as `user` (through runuser, with a login's environment)."""
        assert self.proc is not None and self.proc.poll() is None, "not started"
        argv = list(command)
        if user is not None:
            argv = ["runuser", "-l", user, "-c", shlex.join(argv)]
        return subprocess.run(
            ["nsenter", f"--mount=/proc/{self.proc.pid}/ns/mnt", "--", *argv],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)

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
    """A headless Chromium through chromium-driver, for one test.

    dark: pages see prefers-color-scheme: dark (Cockpit's "Default" style follows it).
    downloads: where downloads land (default: a new temporary directory, removed
        when the browser quits).
    """

    def __init__(self, *, dark: bool = False, downloads: Path | None = None) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self._own_downloads = downloads is None
        if downloads is None:
            downloads = Path(tempfile.mkdtemp(prefix="twofa-downloads-"))
        self.downloads = downloads
        self.downloads.mkdir(parents=True, exist_ok=True)
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
        options.add_experimental_option(
            "prefs",
            {
                "download.default_directory": str(self.downloads),
                "download.prompt_for_download": False,
                "download.directory_upgrade": True,
                "safebrowsing.enabled": False,
            },
        )
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior",
            {"behavior": "allow", "downloadPath": str(self.downloads), "eventsEnabled": True},
        )
        if dark:
            self.color_scheme("dark")

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.driver.quit()
        if self._own_downloads:
            shutil.rmtree(self.downloads, ignore_errors=True)

    def color_scheme(self, scheme: str) -> None:
        """What pages see as prefers-color-scheme: "dark", "light", or "" (the default)."""
        self.driver.execute_cdp_cmd(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
        )

    def style(self, style: str) -> None:
        """Cockpit's own choice of theme, as its top bar sets it: "auto" (follow
        prefers-color-scheme), "light" or "dark".  Kept in the origin's localStorage,
        so a page of the server must be loaded; pages read it when they load, and
        the shell's other frames are told by a storage event."""
        self.driver.execute_script(
            "window.localStorage.setItem('shell:style', arguments[0])", style
        )

    def wait_for(self, element_id: str, timeout: float = 30.0):  # type: ignore[no-untyped-def]
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        wait = WebDriverWait(self.driver, timeout)
        return wait.until(expected_conditions.visibility_of_element_located((By.ID, element_id)))

    def wait_css(self, selector: str, timeout: float = 30.0):  # type: ignore[no-untyped-def]
        """The first visible element `selector` matches, once there is one."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        wait = WebDriverWait(self.driver, timeout)
        return wait.until(
            expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, selector))
        )

    def wait_text(
        self, element_id: str, ready: Callable[[str], bool] = bool, timeout: float = 30.0
    ) -> str:
        """The text of `element_id` once `ready(text)` holds (by default: once it has any)."""
        from selenium.webdriver.common.by import By

        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            found = self.driver.find_elements(By.ID, element_id)
            if found:
                text = str(found[0].get_attribute("textContent") or "")
                if ready(text):
                    return text
            time.sleep(0.1)
        raise TimeoutError(f"#{element_id} did not get there: {text!r}")

    def text(self, element_id: str) -> str:
        from selenium.webdriver.common.by import By

        return str(self.driver.find_element(By.ID, element_id).text)

    def dark(self) -> bool:
        """Whether the current document shows Cockpit's dark theme."""
        return bool(
            self.driver.execute_script(
                "return document.documentElement.classList.contains('pf-theme-dark')"
            )
        )

    def downloaded(self, name: str, timeout: float = 30.0) -> Path:
        """downloads/NAME once Chromium has finished writing it."""
        path = self.downloads / name
        deadline = time.monotonic() + timeout
        last_size = -1
        while time.monotonic() < deadline:
            partial = list(self.downloads.glob("*.crdownload"))
            if path.exists() and not partial:
                size = path.stat().st_size
                if size == last_size:
                    return path
                last_size = size
            time.sleep(0.2)
        present = sorted(p.name for p in self.downloads.iterdir())
        raise TimeoutError(f"{name} was not downloaded; {self.downloads} has {present}")

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


# What the page-side checks run in a page's frame: Cockpit's own record of the
# login's administrative access ("none", "init", "sudo", "root", ...).
_SUPERUSER_CURRENT = """
const done = arguments[arguments.length - 1];
if (typeof cockpit === "undefined") { done("no cockpit.js in this frame"); return; }
const proxy = cockpit.dbus(null, { bus: "internal" }).proxy("cockpit.Superuser", "/superuser");
proxy.wait(() => done(String(proxy.Current)));
"""


class Console:
    """The web console as a person uses it: log in, open pages, become administrator.

    Selenium's commands act on one document at a time: the shell (the top bar, the
    menu) or the page open in its iframe.  `open_page` ends in the page's frame,
    `in_shell` goes back; `gain_admin` and `log_in` go to the shell themselves.
    """

    def __init__(self, browser: Browser, server: CockpitServer) -> None:
        self.browser = browser
        self.server = server
        self.user: str | None = None
        self.page: str | None = None  # the component whose frame selenium is in

    @property
    def driver(self) -> Any:
        return self.browser.driver

    def log_in(
        self,
        user: str,
        password: str,
        code: str | Callable[[], str] | None = None,
        *,
        admin: bool = False,
    ) -> None:
        """Name and password, then `code` when the form asks for one (a callable is
        called only then, so a TOTP step is not spent for nothing).

        admin: ask for administrative access at login, as the form does once the
        browser remembers it for `user`; sudo is given the login's password.
        """
        form = LoginForm(self.browser, self.server)
        form.settled()
        self.driver.execute_script(
            "window.localStorage.setItem(arguments[0], arguments[1])",
            f"superuser:{user}",
            "any" if admin else "none",
        )
        form.log_in(user, password)
        if code is not None:
            _, prompt = form.prompt()
            if not prompt:
                raise AssertionError("the form asked for no code")
            form.answer(code() if callable(code) else code)
        if not form.logged_in():
            message = self.driver.find_elements("id", "login-error-message")
            shown = message[0].text if message else ""
            raise AssertionError(f"not logged in ({shown!r}): {self.server.log.read_text()}")
        self.user = user
        self.page = None
        self.wait_shell()

    def wait_shell(self, timeout: float = 30.0) -> None:
        """Until the shell has drawn its top bar."""
        self.in_shell()
        self.browser.wait_css("#toolbar", timeout)

    def in_shell(self) -> None:
        """Selenium back in the shell's document (the top bar, the menu)."""
        self.driver.switch_to.default_content()
        self.page = None

    def open_page(self, component: str, timeout: float = 30.0) -> None:
        """Go to <url>/COMPONENT ("twofa", or "PACKAGE/FILE" without .html) as a person
        would by the menu, and switch into the page's iframe once its document has
        loaded."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        self.in_shell()
        self.driver.get(self.server.url + component)
        frame = f'iframe[name="cockpit1:localhost/{component}"]'
        WebDriverWait(self.driver, timeout).until(
            expected_conditions.frame_to_be_available_and_switch_to_it((By.CSS_SELECTOR, frame))
        )
        deadline = time.monotonic() + timeout
        while self.driver.execute_script("return document.readyState") != "complete":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{component} did not load")
            time.sleep(0.1)
        self.page = component

    def superuser(self, timeout: float = 30.0) -> str:
        """The login's administrative access as Cockpit's pages see it: "none"
        (limited), "init" (still starting), "sudo" (administrative) or "root"; asked
        in the current document (the shell, or a page that loads cockpit.js)."""
        self.driver.set_script_timeout(timeout)
        current = str(self.driver.execute_async_script(_SUPERUSER_CURRENT))
        if current.startswith("no cockpit.js"):
            raise RuntimeError(f"{current}: {self.page or 'the shell'}")
        return current

    def admin(self, timeout: float = 30.0) -> bool:
        """Whether the login has administrative access (once it has finished starting)."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.superuser(timeout)
            if current != "init" or time.monotonic() > deadline:
                return current not in ("none", "init")
            time.sleep(0.2)

    def access_button(self, timeout: float = 30.0):  # type: ignore[no-untyped-def]
        """The top bar's "Limited access" / "Administrative access" button (React draws
        it anew when the access changes: a found element can go stale)."""
        self.in_shell()
        return self.browser.wait_css("#super-user-indicator button", timeout)

    def access(self, timeout: float = 30.0) -> str:
        """What the top bar's button says: "Limited access" or "Administrative access"
        (or "" while the login's access is still starting)."""
        self.access_button(timeout)
        script = (
            "const b = document.querySelector('#super-user-indicator button');"
            "return b ? b.textContent.trim() : '';"
        )
        return str(self.driver.execute_script(script))

    def gain_admin(self, password: str, timeout: float = 30.0) -> None:
        """Administrative access for the login, as a person gets it: "Limited access"
        in the top bar, sudo's password in the dialog, "Authenticate" (or "Close",
        when sudo asked nothing).  Nothing to do when the login has it already.
        Selenium ends where it was, a page opened anew (the shell reloads its pages
        when the access changes), and the access is checked there: cockpit.Superuser
        as the page sees it.  A wrong password is an AssertionError with what sudo
        said."""
        page = self.page
        if self.access(timeout) == "Limited access":
            if self.open_access_dialog(timeout):
                self.browser.wait_for("switch-to-admin-access-password", timeout).send_keys(
                    password
                )
                footer = ".pf-c-modal-box__footer button.pf-m-primary"
                self._poll(lambda: self._click(footer), timeout, "Authenticate")
            self._poll(self._unlocked, timeout, "administrative access")
        if page is not None:
            self.open_page(page, timeout)
        if not self.admin(timeout):
            raise AssertionError("no administrative access, as the page sees it")

    def open_access_dialog(self, timeout: float = 30.0) -> bool:
        """Click "Limited access" in the top bar; True once the dialog asks sudo's
        password (#switch-to-admin-access-password), False when sudo asked nothing
        and the access is there (the dialog that says so closed)."""
        self.in_shell()
        self._poll(lambda: self._click("#super-user-indicator button.ct-locked"), timeout, "click")
        return self._poll(self._password_asked, timeout, "the access dialog")

    def _click(self, selector: str) -> bool:
        self.browser.wait_css(selector).click()
        return True

    def _poll(self, check: Callable[[], bool | None], timeout: float, what: str) -> bool:
        """check() until it says True or False (None: not yet), through the shell
        drawing its elements anew."""
        from selenium.common.exceptions import StaleElementReferenceException

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                answer = check()
            except StaleElementReferenceException:
                answer = None
            if answer is not None:
                return answer
            time.sleep(0.2)
        raise TimeoutError(f"{what} did not come")

    def _shown(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, selector))

    def _password_asked(self) -> bool | None:
        """After "Limited access": True once the dialog asks sudo's password; False
        when it says access was given without one (and is closed here)."""
        if self._shown("#switch-to-admin-access-password"):
            return True
        dialog = self._shown(".pf-c-modal-box")
        if dialog and "You now have administrative access" in dialog[0].text:
            dialog[0].find_element("css selector", "button.btn-cancel").click()
            return False
        if dialog and "Problem becoming administrator" in dialog[0].text:
            raise AssertionError(dialog[0].text)
        return None

    def _unlocked(self) -> bool | None:
        """True once the top bar says "Administrative access" and the dialog is gone;
        sudo asking again (a wrong password) or giving up is an AssertionError."""
        dialog = self._shown(".pf-c-modal-box")
        if not dialog and self._shown("#super-user-indicator .ct-unlocked"):
            return True
        alert = self._shown(".pf-c-modal-box .pf-c-alert__title")
        field = self._shown("#switch-to-admin-access-password")
        if alert and field and field[0].is_enabled():
            said = alert[0].text.splitlines()[-1]  # after "Danger alert:", for screen readers
            raise AssertionError(f"sudo asked again: {said}")
        if dialog and "Problem becoming administrator" in dialog[0].text:
            raise AssertionError(dialog[0].text)
        return None

    def run_js(self, script: str, *args: object, timeout: float = 30.0) -> Any:
        """An async script in the current document (the page's frame after
        `open_page`): it ends by calling `done(value)`, the last argument."""
        self.driver.set_script_timeout(timeout)
        body = "const done = arguments[arguments.length - 1];\n" + script
        return self.driver.execute_async_script(body, *args)


def write_page(directory: Path, files: Mapping[str, str], manifest: Mapping[str, Any]) -> Path:
    """A Cockpit package in `directory` (created, 0755, files 0644): manifest.json and
    `files`; returned for CockpitServer(pages=...)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for name, text in files.items():
        (directory / name).write_text(text)
    for path in directory.iterdir():
        path.chmod(0o644)
    return directory
