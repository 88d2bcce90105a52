"""The Debian packages as people get them: `apt install ./pam-twofa_*.deb` (and
./cockpit-twofa_*.deb, the web console page) into a clean root.

A Debian 12 root made by debootstrap (once; cached as a tarball under .cache/debootstrap/)
is unpacked afresh for this module. In it, with its own python3 and no virtual
environment, the tests install the package with apt, start twofad from the installed
files the way twofad.socket and twofad.service would (as _twofad, on a socket it did not
make, reporting READY=1), follow the README's steps to switch two-step verification on
for SSH, and log in with a password and a TOTP code from oathtool through a real sshd of
that root on 127.0.0.1 and the OpenSSH client outside it. They install cockpit-twofa
beside it, find the page in cockpit-bridge's packages and fetch it over HTTP from the
root's cockpit-ws (installed for that test only), then remove and purge it. Then they
upgrade, remove and purge pam-twofa and check what stays behind.

systemd does not run in the root: the unit files are checked with systemd-analyze
(offline). /proc, /dev and /dev/pts are mounted in a private mount namespace that exists
only for the root's processes, so no mount can outlive the test or show on the host.

The .debs are $TWOFA_DEB and $TWOFA_COCKPIT_DEB (set by `make test` and `make test-deb`;
the second defaults to cockpit-twofa's beside the first), else built with `make deb`.
The tests run in file order; each needs the ones before it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support.oath import CodeSource, oathtool
from support.pam import Conversation, run_in_pty, stop_started

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: debootstrap, chroot, mounts"),
]

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "debootstrap"
SUITE = "bookworm"
# What the root has besides debootstrap's minbase: test equipment, not the package's
# dependencies (apt must find those itself from the .deb's Depends).
BASE_PACKAGES = ("openssh-server",)
# Downloaded into the cache too (not installed): systemd for the test that boots the
# root as a container, to run the units themselves.
SYSTEMD_PACKAGES = ("systemd", "systemd-sysv", "dbus")
# And for the web console page's test: the web server that serves it (installed for that
# test only; cockpit-bridge comes from cockpit-twofa's Depends).
COCKPIT_WS_PACKAGES = ("cockpit-ws",)
CACHE_FORMAT = "3"  # bump to remake every cached root
DEFAULT_MIRROR = "http://deb.debian.org/debian"

HOOK = "/usr/lib/python3/dist-packages/pam_twofa/hook.py"
UNIT_DIR = "/lib/systemd/system"
STATE_DIR = "/var/lib/twofad"
KEY = f"{STATE_DIR}/twofad.key"
DATABASE = f"{STATE_DIR}/twofad.db"
SOCKET_DIR = "/run/twofad"
NOTIFY = "/run/twofad-test-notify"
USER = "alice"
PASSWORD = "Correct-Horse-42"
EXAMPLES = "/usr/share/doc/pam-twofa/examples"
PAGE_DIR = "/usr/share/cockpit/twofa"
PAGE_SOURCE = REPO / "cockpit" / "twofa"
PAGE_LABEL = "Two-step verification"
APT_OPTIONS = (
    "-y",
    "-o",
    "Dpkg::Options::=--force-confdef",
    "-o",
    "Dpkg::Options::=--force-confold",
)
# Not looked at when comparing the root before and after: the kernel's, the test's own,
# and the package manager's and logs' (what Debian policy lets stay after a purge).
UNWATCHED = ("proc", "dev", "sys", "run", "tmp", "var/tmp", "var/log", "var/cache", "var/lib/apt")
# A name of ours (not cryptography's hazmat/primitives/twofactor).
OURS = re.compile(r"twofa(?!ctor)")
# State of other packages that may name pam-twofa after a purge, and the system account.
ALLOWED_MENTIONS = re.compile(
    r"^(etc/(passwd|group|shadow|gshadow|subuid|subgid)-?"
    r"|var/lib/dpkg/(status-old|available|diversions|triggers/.*)"
    r"|var/lib/pam/.*|var/log/.*|var/cache/.*|var/lib/apt/.*)$"
)
# New files no package owns that may appear after install and purge: made by the
# maintainer scripts of the dependencies (byte code, alternatives, certificates, ...).
ALLOWED_UNOWNED = re.compile(
    r"^(etc/(passwd|group|shadow|gshadow|subuid|subgid)-"
    r"|etc/ld\.so\.cache"
    r"|etc/alternatives(/.*)?"
    r"|etc/ssl/certs(/.*)?"
    r"|etc/(ca-certificates\.conf|inputrc|python3(/debian_config)?)"
    r"|usr/local/(lib/python3[.\d]*(/dist-packages)?|share/ca-certificates)"
    r"|etc/systemd/system(/.*\.wants)?"
    r"|var/lib/(dpkg|pam|systemd|ucf|python)(/.*)?"
    r"|usr/(lib|share)/.*/__pycache__(/.*)?"
    r"|usr/lib/python3/dist-packages/__pycache__(/.*)?)$"
)


# --------------------------------------------------------------------------- the root


def _debian_mirror() -> str:
    """The host's own Debian mirror (not the security one), so no other host is needed."""
    if os.environ.get("TWOFA_DEBIAN_MIRROR"):
        return os.environ["TWOFA_DEBIAN_MIRROR"]
    sources = Path("/etc/apt/sources.list.d")
    for path in sorted(sources.glob("*.sources")) if sources.is_dir() else []:
        for stanza in path.read_text().split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                key, _, value = line.partition(":")
                if not line.startswith("#") and value.strip():
                    fields[key.strip().lower()] = value.strip()
            suites = fields.get("suites", "").split()
            if SUITE in suites and fields.get("uris"):
                return fields["uris"].split()[0]
    with contextlib.suppress(OSError):
        for line in Path("/etc/apt/sources.list").read_text().splitlines():
            words = line.split()
            if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE:
                return words[1]
    return DEFAULT_MIRROR


class Root:
    """A directory holding a Debian root, with /proc, /dev and /dev/pts mounted for it.

    The mounts live in a mount namespace of their own, held open by one process that
    exits when its stdin closes (also if this process dies); commands enter it with
    nsenter, then chroot. On exit every process whose root is this directory is stopped
    (by its PID: they are ours), the mounts are unmounted, and the holder ends.
    """

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        self.holder: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Root:
        script = (
            'set -e; mount -t proc proc "$1/proc"; mount --bind /dev "$1/dev"; '
            'mount --bind /dev/pts "$1/dev/pts"; echo mounted; exec cat >/dev/null'
        )
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
            + [str(self.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.holder.stdout is not None
        ready, _, _ = select.select([self.holder.stdout], [], [], 30)
        line = self.holder.stdout.readline() if ready else b""
        if line.strip() != b"mounted":
            self.__exit__(None, None, None)
            raise RuntimeError(f"cannot mount /proc, /dev, /dev/pts in {self.path}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_processes()
        holder = self.holder
        if holder is None:
            return
        if holder.poll() is None:
            subprocess.run(
                [*self._enter(), "umount", "--recursive", "--lazy"]
                + [str(self.path / "dev"), str(self.path / "proc")],
                check=False,
                capture_output=True,
                timeout=30,
            )
        assert holder.stdin is not None
        with contextlib.suppress(OSError):
            holder.stdin.close()
        try:
            holder.wait(10)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait(10)
        self.holder = None
        mounts = Path("/proc/self/mountinfo").read_text()
        assert f" {self.path}/" not in mounts, f"a mount under {self.path} is visible here"

    def _enter(self) -> list[str]:
        assert self.holder is not None
        return ["nsenter", f"--mount=/proc/{self.holder.pid}/ns/mnt", "--"]

    def command(self, argv: Sequence[str]) -> list[str]:
        return [*self._enter(), "chroot", str(self.path), *argv]

    @staticmethod
    def environment(**extra: str) -> dict[str, str]:
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "HOME": "/root",
            "DEBIAN_FRONTEND": "noninteractive",
            **extra,
        }

    def run(
        self,
        *argv: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self.command(argv),
            input=input,
            capture_output=True,
            text=True,
            env=self.environment(),
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done

    def file(self, path: str) -> Path:
        return self.path / path.lstrip("/")

    def processes(self) -> list[int]:
        """PIDs of the processes whose root directory is this one."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if os.readlink(entry / "root") == str(self.path):
                        found.append(int(entry.name))
        return found

    def stop_processes(self) -> None:
        _end_processes(self.processes)


def _end_processes(alive: Callable[[], list[int]]) -> None:
    """SIGTERM to what `alive()` lists, then SIGKILL to what is still listed after 5 s."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        pids = alive()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        deadline = time.monotonic() + 5
        while pids and time.monotonic() < deadline:
            time.sleep(0.05)
            pids = alive()
        if not pids:
            return


def _apt_get(root: Root, *args: str, timeout: float = 600) -> None:
    """apt-get in the root: from its cached lists and packages first; if the mirror has
    moved on since, refresh the lists and try again."""
    done = root.run("apt-get", *APT_OPTIONS, *args, check=False, timeout=timeout)
    if done.returncode != 0:
        root.run("apt-get", "update", "-qq", timeout=timeout)
        root.run("apt-get", *APT_OPTIONS, *args, timeout=timeout)


def base_tarball(deb: Path, cockpit_deb: Path) -> Path:
    """The cached clean root: debootstrap --variant=minbase, the test's sshd, and the
    packages' dependencies downloaded (not installed), so each run installs offline."""
    mirror = _debian_mirror()
    recipe = f"{CACHE_FORMAT} {SUITE} minbase {','.join(BASE_PACKAGES)} {mirror}"
    recipe += " " + ",".join(SYSTEMD_PACKAGES + COCKPIT_WS_PACKAGES)
    tarball = CACHE / f"{SUITE}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}.tar"
    if tarball.exists():
        return tarball
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=CACHE))
    try:
        path = work / "root"
        done = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}"]
            + [SUITE, str(path), mirror],
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"debootstrap failed:\n{done.stdout[-3000:]}\n{done.stderr}")
        # No package may start a service in this root (there is no init in it anyway).
        policy = path / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        for package in (deb, cockpit_deb):
            shutil.copy(package, path / "tmp" / package.name)
        with Root(path) as root:
            _apt_get(
                root,
                "install",
                "--download-only",
                f"/tmp/{deb.name}",
                f"/tmp/{cockpit_deb.name}",
                *SYSTEMD_PACKAGES,
                *COCKPIT_WS_PACKAGES,
            )
        for package in (deb, cockpit_deb):
            (path / "tmp" / package.name).unlink()
        partial = tarball.with_suffix(".partial")
        subprocess.run(
            ["tar", "-C", str(path), "--numeric-owner", "-cf", str(partial), "."],
            check=True,
            timeout=600,
        )
        partial.rename(tarball)
        for old in CACHE.glob(f"{SUITE}-*.tar"):
            if old != tarball:
                old.unlink()
    finally:
        _remove_tree(work)
    return tarball


def _remove_tree(path: Path) -> None:
    """Delete a tree we made, never crossing into a mount (there should be none here)."""
    top = str(path.resolve())
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        if point == top or point.startswith(top + "/"):
            raise RuntimeError(f"{point} is still mounted: not deleting {top}")
    subprocess.run(["rm", "-rf", "--one-file-system", top], check=True, timeout=300)


# --------------------------------------------------------------------------- the package


def _built_deb() -> Path:
    given = os.environ.get("TWOFA_DEB")
    if given:
        return Path(given).resolve()
    subprocess.run(["make", "-C", str(REPO), "deb"], check=True, timeout=900)
    version = re.search(r'^version = "(.+)"$', (REPO / "pyproject.toml").read_text(), re.MULTILINE)
    assert version is not None
    return REPO / "dist" / "deb" / f"pam-twofa_{version.group(1)}_all.deb"


def _built_cockpit_deb(deb: Path) -> Path:
    """$TWOFA_COCKPIT_DEB, else cockpit-twofa's .deb of the same version beside `deb`
    (`make deb` builds both from the one source package)."""
    given = os.environ.get("TWOFA_COCKPIT_DEB")
    if given:
        return Path(given).resolve()
    return deb.with_name(deb.name.replace("pam-twofa_", "cockpit-twofa_", 1))


def _repacked(deb: Path, directory: Path, version: str) -> Path:
    """The same package as a later version whose shipped policy.yaml has changed."""
    tree = directory / "repack"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True, timeout=60)
    control = tree / "DEBIAN" / "control"
    control.write_text(re.sub(r"(?m)^Version: .*$", f"Version: {version}", control.read_text()))
    policy = tree / "etc/twofa/policy.yaml"
    policy.write_text(policy.read_text() + "# (a comment added upstream in a later version)\n")
    sums = tree / "DEBIAN" / "md5sums"
    digest = hashlib.md5(policy.read_bytes()).hexdigest()  # noqa: S324 - dpkg's format
    sums.write_text(
        re.sub(r"(?m)^\w+(  etc/twofa/policy\.yaml)$", rf"{digest}\1", sums.read_text())
    )
    out = directory / f"pam-twofa_{version}_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-b", str(tree), str(out)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    shutil.rmtree(tree)
    return out


# --------------------------------------------------------------------------- helpers


def _unit(root: Root, name: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in root.file(f"{UNIT_DIR}/{name}").read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _walk(top: Path) -> set[str]:
    """Every path under the root, relative, except the unwatched ones."""
    found: set[str] = set()
    for directory, subdirs, files in os.walk(top):
        relative = os.path.relpath(directory, top)
        relative = "" if relative == "." else relative
        subdirs[:] = [d for d in subdirs if os.path.join(relative, d) not in UNWATCHED]
        for name in subdirs + files:
            found.add(os.path.join(relative, name))
    return found


def _owned(root: Path) -> set[str]:
    """The paths the installed packages own, as dpkg lists them."""
    owned: set[str] = set()
    for listing in (root / "var/lib/dpkg/info").glob("*.list"):
        for line in listing.read_text().splitlines():
            path = line.strip().lstrip("/")
            owned.add(path)
            top = path.split("/", 1)[0]
            if (root / top).is_symlink():  # merged /usr: /lib is usr/lib, and so on
                owned.add(
                    os.path.normpath(os.path.join(os.readlink(root / top), path[len(top) + 1 :]))
                )
    return owned


def _unowned_since(root: Path, before: set[str]) -> list[str]:
    """New paths since `before` that no installed package owns and that are not the
    package manager's own (ALLOWED_UNOWNED)."""
    owned = _owned(root)
    return sorted(
        path
        for path in _walk(root) - before
        if path not in owned and not ALLOWED_UNOWNED.match(path)
    )


def _mentions_ours(path: Path) -> bool:
    """A regular text file under the root that names twofa (not cryptography's
    hazmat/primitives/twofactor)."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        return OURS.search(path.read_text()) is not None
    except (OSError, UnicodeDecodeError):
        return False


def _cockpit_packages(root: Root) -> dict[str, tuple[str, str]]:
    """`cockpit-bridge --packages` in the root: name -> (label, directory)."""
    listed: dict[str, tuple[str, str]] = {}
    for line in root.run("cockpit-bridge", "--packages").stdout.splitlines():
        words = line.split()
        if len(words) >= 2 and words[-1].startswith("/") and "=" not in line:
            listed[words[0]] = (" ".join(words[1:-1]), words[-1])
    return listed


def _page_files(top: Path) -> set[str]:
    """The files of a page directory, relative to it."""
    return {
        os.path.relpath(os.path.join(directory, name), top)
        for directory, _, files in os.walk(top)
        for name in files
    }


@dataclass
class Checks:
    """`twofactl doctor --json`, as a mapping of check name to (ok, detail)."""

    results: dict[str, tuple[bool, str]]
    text: str

    def ok(self, name: str) -> bool:
        return self.results[name][0]


@dataclass
class Bookworm:
    """The root, and what the tests learn on the way through it."""

    root: Root
    deb: Path
    cockpit_deb: Path
    workdir: Path
    daemon: subprocess.Popen[bytes] | None = None
    sshd: subprocess.Popen[bytes] | None = None
    port: int = 0
    codes: CodeSource | None = None
    before: set[str] = field(default_factory=set)
    before_page: set[str] = field(default_factory=set)
    common_auth: str = ""
    key_digest: str = ""
    failed: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    doctor: dict[str, Checks] = field(default_factory=dict)

    # -- twofad, as twofad.socket and twofad.service start it ---------------------------

    def start_daemon(self) -> None:
        """Run the installed ExecStart as the unit's User and Group, on a listening socket
        made by root at ListenStream with SocketMode (socket activation), and wait for
        READY=1 on $NOTIFY_SOCKET, as systemd would."""
        service = _unit(self.root, "twofad.service")
        listen = _unit(self.root, "twofad.socket")
        path = self.root.file(listen["ListenStream"][0])
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listening.bind(str(path))
        os.chmod(path, int(listen["SocketMode"][0], 8))
        listening.listen(128)
        notify_path = self.root.file(NOTIFY)
        notify_path.unlink(missing_ok=True)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(notify_path))
        os.chmod(notify_path, 0o666)  # noqa: S103 - _twofad must be able to send to it
        fd = listening.fileno()
        to_three = "" if fd == 3 else f"exec 3<&{fd} {fd}<&-; "
        script = (
            f"{to_three}export LISTEN_PID=$$ LISTEN_FDS=1 NOTIFY_SOCKET={NOTIFY}; "
            f"exec setpriv --reuid={service['User'][0]} --regid={service['Group'][0]} "
            f"--init-groups --no-new-privs -- {service['ExecStart'][0]}"
        )
        try:
            with open(self.workdir / "twofad.log", "ab") as log:
                self.daemon = subprocess.Popen(
                    self.root.command(["bash", "-c", script]),  # dash: fds 0-9 only
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=(fd,),
                    env=self.root.environment(),
                )
            notify.settimeout(30)
            try:
                message = notify.recv(4096).decode()
            except TimeoutError:
                message = ""
            assert "READY=1" in message, f"no READY=1 from twofad:\n{self.daemon_log()}"
        finally:
            listening.close()
            notify.close()
            notify_path.unlink(missing_ok=True)

    def stop_daemon(self) -> None:
        _stop(self.daemon)
        self.daemon = None

    def daemon_log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.workdir / "twofad.log").read_text(errors="replace")
        return ""

    def twofactl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.root.run("twofactl", *args, check=check)

    def run_doctor(self, step: str) -> Checks:
        done = self.twofactl("doctor", "--json", check=False)
        results = {
            item["check"]: (bool(item["ok"]), str(item["detail"]))
            for item in json.loads(done.stdout)
        }
        text = self.twofactl("doctor", check=False).stdout
        self.doctor[step] = Checks(results, text)
        return self.doctor[step]

    # -- sshd of the root, the client outside it ----------------------------------------

    def start_sshd(self) -> None:
        self.root.file("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        for _attempt in range(5):
            self.port = _free_port()
            with open(self.workdir / "sshd.log", "ab") as log:
                self.sshd = subprocess.Popen(
                    self.root.command(
                        ["/usr/sbin/sshd", "-D", "-e", "-p", str(self.port)]
                        + ["-o", "ListenAddress=127.0.0.1", "-o", "PidFile=none"]
                    ),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.root.environment(),
                )
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and self.sshd.poll() is None:
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn,
                ):
                    if conn.recv(64).startswith(b"SSH-2.0-"):
                        return
                time.sleep(0.1)
            _stop(self.sshd)
        raise AssertionError(f"sshd did not start:\n{(self.workdir / 'sshd.log').read_text()}")

    def stop_sshd(self) -> None:
        _stop(self.sshd)
        self.sshd = None

    def ssh(self, answers: Sequence[str]) -> Conversation:
        return _ssh(self.port, answers)

    def close(self) -> None:
        self.stop_sshd()
        self.stop_daemon()


def _ssh(port: int, answers: Sequence[str]) -> Conversation:
    """The OpenSSH client, outside the root, logging in as USER with keyboard-interactive
    answers; `echo LOGIN-OK` on success."""
    argv = [
        "ssh",
        "-F",
        "/dev/null",
        "-T",
        "-p",
        str(port),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "PreferredAuthentications=keyboard-interactive",
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "NumberOfPasswordPrompts=1",
        "-o",
        "IdentityAgent=none",
        "-o",
        "ConnectTimeout=30",
        f"{USER}@127.0.0.1",
        "echo LOGIN-OK",
    ]
    return run_in_pty(argv, answers, timeout=60)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    stop_started(proc, grace=10)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def bookworm() -> Iterator[Bookworm]:
    started = time.monotonic()
    deb = _built_deb()
    cockpit_deb = _built_cockpit_deb(deb)
    assert deb.is_file(), f"no package at {deb}"
    assert cockpit_deb.is_file(), f"no package at {cockpit_deb}"
    tarball = base_tarball(deb, cockpit_deb)
    cached = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="twofa-deb-test-"))
    path = workdir / "root"
    path.mkdir(mode=0o755)
    try:
        subprocess.run(
            ["tar", "-C", str(path), "--numeric-owner", "-xf", str(tarball)],
            check=True,
            timeout=300,
        )
        shutil.copy("/etc/resolv.conf", path / "etc/resolv.conf")
        with Root(path) as root:
            scenario = Bookworm(root, deb, cockpit_deb, workdir)
            scenario.timings["debootstrap (or cache)"] = cached - started
            try:
                yield scenario
            finally:
                scenario.close()
                for name, checks in scenario.doctor.items():
                    print(f"\n--- twofactl doctor, {name}:\n{checks.text}", end="")
                print(
                    "\npackage test timings (s): "
                    + ", ".join(
                        f"{name} {seconds:.1f}" for name, seconds in scenario.timings.items()
                    )
                )
    finally:
        _remove_tree(workdir)


@pytest.fixture
def step(bookworm: Bookworm, request: pytest.FixtureRequest) -> Iterator[Bookworm]:
    """Each test goes on from where the one before left the root: skip after a failure."""
    if bookworm.failed:
        pytest.skip(f"needs {bookworm.failed}, which failed")
    started = time.monotonic()
    failures = request.session.testsfailed
    yield bookworm
    bookworm.timings[request.node.name.removeprefix("test_")] = time.monotonic() - started
    if request.session.testsfailed > failures:  # the call's report is in by teardown
        bookworm.failed = request.node.name


# --------------------------------------------------------------------------- the tests


def test_apt_installs_the_package_and_its_dependencies(step: Bookworm) -> None:
    root = step.root
    root.run("useradd", "--create-home", "--shell", "/bin/bash", USER)
    root.run("chpasswd", input=f"{USER}:{PASSWORD}\n")
    step.before = _walk(root.path)
    step.common_auth = root.file("/etc/pam.d/common-auth").read_text()
    shutil.copy(step.deb, root.file(f"/tmp/{step.deb.name}"))
    assert root.run("dpkg-query", "-W", "python3", check=False).returncode != 0, (
        "the clean root already has python3: the test could not see a missing Depends"
    )

    _apt_get(root, "install", f"/tmp/{step.deb.name}")

    status = root.run("dpkg-query", "-W", "-f=${Status} ${Version}", "pam-twofa").stdout
    assert status.startswith("install ok installed")
    for path in (
        "/usr/bin/twofad",
        "/usr/bin/twofactl",
        "/usr/bin/twofa",
        HOOK,
        "/usr/lib/python3/dist-packages/twofad/main.py",
        f"{UNIT_DIR}/twofad.service",
        f"{UNIT_DIR}/twofad.socket",
        "/usr/lib/tmpfiles.d/pam-twofa.conf",
        "/usr/share/pam-configs/twofa",
        f"{EXAMPLES}/sshd_config.d/twofa-key-then-code.conf",
        f"{EXAMPLES}/sshd_config.d/twofa-password-then-code.conf",
        f"{EXAMPLES}/pam.d/sshd-key-then-code",
        f"{EXAMPLES}/pam.d/sshd-password-then-code",
        f"{EXAMPLES}/pam.d/login",
        f"{EXAMPLES}/pam.d/cockpit",
        "/usr/share/man/man8/twofad.8.gz",
        "/usr/share/man/man8/twofactl.8.gz",
        "/usr/share/man/man1/twofa.1.gz",
        "/usr/bin/twofa-mailer",
        f"{UNIT_DIR}/twofa-mailer.service",
        "/usr/share/man/man8/twofa-mailer.8.gz",
        f"{EXAMPLES}/mailer.yaml",
    ):
        assert root.file(path).exists(), path
    conffiles = root.run("dpkg-query", "-W", "-f=${Conffiles}", "pam-twofa").stdout
    assert "/etc/twofa/policy.yaml" in conffiles
    assert (
        root.file("/etc/twofa/policy.yaml").read_text()
        == (REPO / "config" / "policy.yaml").read_text()
    )
    # The system python finds both packages where the package put them, and only there.
    where = root.run(
        "python3", "-c", "import pam_twofa, twofad; print(pam_twofa.__file__, twofad.__file__)"
    ).stdout.split()
    assert where == [
        "/usr/lib/python3/dist-packages/pam_twofa/__init__.py",
        "/usr/lib/python3/dist-packages/twofad/__init__.py",
    ]
    for command in ("twofad", "twofactl", "twofa", "twofa-mailer"):
        assert "usage:" in root.run(command, "--help").stdout

    # The daemon's account, and its private state directory.
    account = root.run("getent", "passwd", "_twofad").stdout.strip().split(":")
    assert int(account[2]) < 1000 and account[6] in ("/usr/sbin/nologin", "/bin/false")
    state = root.file(STATE_DIR).stat()
    assert stat.S_IMODE(state.st_mode) == 0o700 and state.st_uid == int(account[2])

    # Switching 2FA on is the administrator's decision: the PAM stacks are untouched.
    assert root.file("/etc/pam.d/common-auth").read_text() == step.common_auth
    for stack in root.file("/etc/pam.d").iterdir():
        assert "pam_twofa" not in stack.read_text(), stack
    # ... while the socket is enabled, for systemd to start at the next boot.
    assert root.file("/etc/systemd/system/sockets.target.wants/twofad.socket").is_symlink()
    # The mailer: its own account, and off until an administrator configures it.
    mailer = root.run("getent", "passwd", "_twofa-mailer").stdout.strip().split(":")
    assert int(mailer[2]) < 1000 and mailer[2] != account[2]
    assert not root.file(
        "/etc/systemd/system/multi-user.target.wants/twofa-mailer.service"
    ).exists()
    assert not root.file("/etc/twofa/mailer.yaml").exists()


def test_units_are_as_the_issue_asks_and_hardened(step: Bookworm) -> None:
    service = _unit(step.root, "twofad.service")
    listen = _unit(step.root, "twofad.socket")
    assert listen["ListenStream"] == ["/run/twofad/twofad.sock", "/run/twofad/root/twofad.sock"]
    assert listen["SocketMode"] == ["0666"]
    assert service["Type"] == ["notify"]
    assert service["User"] == ["_twofad"]
    assert service["StateDirectory"] == ["twofad"]
    assert service["StateDirectoryMode"] == ["0700"]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert service["CapabilityBoundingSet"] == [""]
    assert service["RestrictAddressFamilies"] == ["AF_UNIX"]
    for setting in ("ProtectSystem", "ProtectHome", "PrivateTmp", "NoNewPrivileges"):
        assert service[setting] in (["strict"], ["yes"]), setting
    assert "@system-service" in service["SystemCallFilter"]
    unit = step.root.file(f"{UNIT_DIR}/twofad.service")
    analysis = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(r"Overall exposure level for twofad\.service: (\d+\.\d+)", analysis.stdout)
    assert found, analysis.stdout + analysis.stderr
    print(f"\nsystemd-analyze security: exposure {found.group(1)}")
    assert float(found.group(1)) <= 2.0, analysis.stdout
    # The root has no systemd to verify against: the host's, on the installed files.
    # Its only complaint may be that /usr/bin/twofad is not on the host.
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no"]
        + [str(step.root.file(f"{UNIT_DIR}/twofad.{kind}")) for kind in ("socket", "service")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    complaints = [
        line
        for line in (verify.stdout + verify.stderr).splitlines()
        if line.strip() and "/usr/bin/twofad is not executable" not in line
    ]
    assert complaints == [], verify.stdout + verify.stderr


def test_the_mailer_unit_is_hardened_with_network_only(step: Bookworm) -> None:
    service = _unit(step.root, "twofa-mailer.service")
    assert service["User"] == ["_twofa-mailer"]
    assert service["ConditionPathExists"] == ["/etc/twofa/mailer.yaml"]
    assert service["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert service["CapabilityBoundingSet"] == [""]
    for setting in ("ProtectSystem", "ProtectHome", "PrivateTmp", "NoNewPrivileges"):
        assert service[setting] in (["strict"], ["yes"]), setting
    unit = step.root.file(f"{UNIT_DIR}/twofa-mailer.service")
    analysis = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(
        r"Overall exposure level for twofa-mailer\.service: (\d+\.\d+)", analysis.stdout
    )
    assert found, analysis.stdout + analysis.stderr
    print(f"\nsystemd-analyze security twofa-mailer: exposure {found.group(1)}")


def test_twofad_starts_as_its_user_from_the_installed_files(step: Bookworm) -> None:
    step.start_daemon()
    key = step.root.file(KEY).stat()
    uid = int(step.root.run("id", "-u", "_twofad").stdout)
    assert stat.S_IMODE(key.st_mode) == 0o400 and key.st_uid == uid
    assert step.root.file(DATABASE).stat().st_uid == uid
    assert step.root.run("twofactl", "status").returncode == 0
    step.root.file("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # as on a running system
    installed = step.run_doctor("installed")
    assert installed.ok("daemon") and installed.ok("policy"), installed.text
    assert installed.ok("key file") and installed.ok("state directory"), installed.text
    assert not installed.ok("PAM sshd") and not installed.ok("sshd"), installed.text


def test_the_readme_steps_then_ssh_asks_for_the_password_and_a_code(step: Bookworm) -> None:
    root = step.root
    # 1. sshd: the password-then-code drop-in from the examples.
    shutil.copy(
        root.file(f"{EXAMPLES}/sshd_config.d/twofa-password-then-code.conf"),
        root.file("/etc/ssh/sshd_config.d/twofa.conf"),
    )
    after_sshd = step.run_doctor("sshd drop-in")
    assert after_sshd.ok("sshd") and not after_sshd.ok("PAM sshd"), after_sshd.text
    # 2. PAM: the hook after the password in common-auth, through pam-auth-update.
    root.run("pam-auth-update", "--enable", "twofa")
    common_auth = root.file("/etc/pam.d/common-auth").read_text()
    assert f"pam_python.so {HOOK}" in common_auth
    # The setcred jump sits right before the hook, so sshd's monitor skips the interpreter.
    stack = [line.split() for line in common_auth.splitlines() if line.startswith("auth")]
    hook_at = next(i for i, words in enumerate(stack) if HOOK in words)
    assert stack[hook_at - 1][:3] == ["auth", "[ignore=1", "default=ignore]"], stack
    assert "pam_succeed_if.so" in stack[hook_at - 1]
    after_pam = step.run_doctor("pam-auth-update")
    assert after_pam.ok("PAM sshd") and after_pam.ok("PAM login"), after_pam.text
    # 3. Set up the app (here oathtool) for the user, then log in.
    secret = json.loads(step.twofactl("enroll", USER, "--json").stdout)["secret"]
    step.codes = CodeSource(secret)
    earlier = time.time() - 30  # the previous step: leaves this one and the next free
    step.twofactl("confirm", USER, oathtool(secret, earlier))
    step.codes.spend(earlier)
    enrolled = step.run_doctor("enrolled")
    status = json.loads(step.twofactl("status", USER, "--json").stdout)
    assert status[0]["state"] == "enabled", status
    step.start_sshd()

    wrong = step.ssh([PASSWORD, "000000"])
    assert wrong.returncode == 255 and "LOGIN-OK" not in wrong.output, wrong
    assert "Invalid verification code" in wrong.output, (
        f"{wrong}\n{(step.workdir / 'sshd.log').read_text()}\n{step.daemon_log()}"
    )

    login = step.ssh([PASSWORD, step.codes.next()])
    assert login.ok and "LOGIN-OK" in login.output, (
        f"{login}\n{(step.workdir / 'sshd.log').read_text()}\n{step.daemon_log()}"
    )
    assert [p.strip().endswith(("Password:", "Verification code:")) for p in login.prompts] == [
        True,
        True,
    ], login.prompts
    for name in ("daemon", "policy", "PAM sshd", "sshd", "key file", "state directory"):
        assert enrolled.ok(name), enrolled.text


# --------------------------------------------------------------------------- the web page


def test_apt_installs_the_web_console_page_beside_it(step: Bookworm) -> None:
    root = step.root
    step.before_page = _walk(root.path)
    deb = step.cockpit_deb
    fields = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Package", "Architecture", "Depends", "Section"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "Package: cockpit-twofa\n" in fields and "Architecture: all\n" in fields, fields
    assert "Section: admin\n" in fields, fields
    version = root.run("dpkg-query", "-W", "-f=${Version}", "pam-twofa").stdout
    assert f"pam-twofa (= {version})" in fields and "cockpit-bridge (>= 287)" in fields, fields
    assert root.run("dpkg-query", "-W", "cockpit-bridge", check=False).returncode != 0, (
        "cockpit-bridge is already in the root: the test could not see a missing Depends"
    )
    shutil.copy(deb, root.file(f"/tmp/{deb.name}"))

    _apt_get(root, "install", f"/tmp/{deb.name}")

    status = root.run("dpkg-query", "-W", "-f=${Status}", "cockpit-twofa", "cockpit-bridge")
    assert status.stdout == "install ok installed" * 2, status.stdout
    # Every file of cockpit/twofa, as root's, 0644 in 0755 directories.
    page = root.file(PAGE_DIR)
    assert _page_files(page) == _page_files(PAGE_SOURCE), (
        f"shipped {sorted(_page_files(page))}, the source has {sorted(_page_files(PAGE_SOURCE))}"
        " (run `make deb` again after changing cockpit/twofa)"
    )
    for directory, subdirs, files in os.walk(page):
        for name in subdirs + files:
            info = os.lstat(os.path.join(directory, name))
            expected = 0o755 if stat.S_ISDIR(info.st_mode) else 0o644
            assert stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode), name
            assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, 0, expected), (
                f"{directory}/{name}: uid {info.st_uid} gid {info.st_gid} "
                f"mode {stat.S_IMODE(info.st_mode):o}"
            )
    listed = set(root.run("dpkg", "-L", "cockpit-twofa").stdout.splitlines())
    assert {f"{PAGE_DIR}/{name}" for name in _page_files(page)} <= listed
    manifest = json.loads(root.file(f"{PAGE_DIR}/manifest.json").read_text())
    assert manifest["tools"]["index"]["label"] == PAGE_LABEL, manifest
    # Cockpit's bridge finds it, under the package name twofa, in the Tools menu's label.
    packages = _cockpit_packages(root)
    assert packages.get("twofa") == (PAGE_LABEL, PAGE_DIR), packages
    # Only the page is new: cockpit-twofa has no maintainer scripts that could leave more.
    scripts = [
        name
        for name in ("preinst", "postinst", "prerm", "postrm")
        if root.file(f"/var/lib/dpkg/info/cockpit-twofa.{name}").exists()
    ]
    assert scripts == [], scripts


def test_cockpit_ws_serves_the_page_from_the_installed_files(step: Bookworm) -> None:
    """cockpit-ws --local-session runs a bridge without a login (as root, here) and serves
    the packages it lists, as a browser gets them: /cockpit/@localhost/twofa/..."""
    root = step.root
    before_ws = _walk(root.path)
    _apt_get(root, "install", *COCKPIT_WS_PACKAGES)
    ws: subprocess.Popen[bytes] | None = None
    try:
        ws, port = _start_cockpit_ws(step)
        base = f"http://127.0.0.1:{port}/cockpit/@localhost"
        index = _fetch(f"{base}/twofa/index.html")
        assert index.type == "text/html", index
        title = re.search(r"<title>(.*?)</title>", index.text, re.DOTALL)
        assert title and title.group(1).strip() == PAGE_LABEL, index.text[:500]
        manifest = _fetch(f"{base}/twofa/manifest.json")
        assert json.loads(manifest.text)["tools"]["index"]["label"] == PAGE_LABEL
        assert _fetch(f"{base}/twofa/patternfly.css").type == "text/css"
        # What the page loads from Cockpit itself (../base1/cockpit.js): cockpit-bridge's.
        assert "cockpit" in _fetch(f"{base}/base1/cockpit.js").text
        # Every installed file comes back as it is on disk.
        page = root.file(PAGE_DIR)
        for name in sorted(_page_files(page)):
            served = _fetch(f"{base}/twofa/{name}")
            assert served.body == (page / name).read_bytes(), name
        # And the shell's list of every page's manifest has it.
        manifests = json.loads(_fetch(f"{base}/manifests.json").text)
        assert manifests["twofa"]["tools"]["index"]["label"] == PAGE_LABEL
    finally:
        _stop_cockpit_ws(ws)
        _apt_get(root, "purge", "--autoremove", *COCKPIT_WS_PACKAGES)
        # Left empty by Debian's cockpit (not by this project's packages): cockpit-ws's
        # postinst makes /etc/issue.d and /etc/motd.d (mkdir -p) and its postrm keeps
        # them; the bridge makes its user's ~/.cache (from the password database).
        for leftover in ("etc/issue.d", "etc/motd.d", "root/.cache"):
            if leftover not in before_ws:
                with contextlib.suppress(OSError):
                    os.rmdir(root.path / leftover)
    status = root.run("dpkg-query", "-W", "-f=${Status}", "cockpit-ws", check=False).stdout
    assert "installed" not in status.split(), status
    assert _unowned_since(root.path, before_ws) == []


@dataclass
class Served:
    body: bytes
    type: str

    @property
    def text(self) -> str:
        return self.body.decode()


def _fetch(url: str) -> Served:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - our http URL
        assert response.status == 200, (url, response.status)
        content_type = response.headers.get_content_type()
        return Served(response.read(), content_type)


def _start_cockpit_ws(step: Bookworm) -> tuple[subprocess.Popen[bytes], int]:
    """The root's cockpit-ws on a free port of 127.0.0.1, with its own bridge."""
    root = step.root
    log_path = step.workdir / "cockpit-ws.log"
    for _attempt in range(5):
        port = _free_port()
        with open(log_path, "ab") as log:
            ws = subprocess.Popen(
                root.command(
                    ["/usr/lib/cockpit/cockpit-ws", "--local-session=cockpit-bridge"]
                    + ["--no-tls", "--address", "127.0.0.1", "--port", str(port)]
                ),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=root.environment(),
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and ws.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 2):
                return ws, port
            time.sleep(0.1)
        _stop(ws)
    raise AssertionError(f"cockpit-ws did not start:\n{log_path.read_text(errors='replace')}")


def _descendants(pid: int) -> list[int]:
    """The processes started, directly or not, by this one."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                found = re.search(r"^PPid:\s+(\d+)$", (entry / "status").read_text(), re.M)
                if found:
                    parents[int(entry.name)] = int(found.group(1))
    below, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        below += children
        frontier = children
    return below


def _start_time(pid: int) -> str:
    """The process's start time (/proc/PID/stat), to tell it from a later one that got
    the same PID; "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _stop_cockpit_ws(ws: subprocess.Popen[bytes] | None) -> None:
    """cockpit-ws, then what its bridge started and leaves running when it ends (a
    per-user D-Bus and an ssh-agent, where the root has them): each by its PID."""
    if ws is None:
        return
    started = {pid: _start_time(pid) for pid in _descendants(ws.pid)}
    _stop(ws)
    _end_processes(lambda: [pid for pid, at in started.items() if at and _start_time(pid) == at])


def test_removing_and_purging_the_page_leave_nothing_of_it(step: Bookworm) -> None:
    root = step.root

    _apt_get(root, "remove", "cockpit-twofa")

    assert not root.file(PAGE_DIR).exists()
    assert "twofa" not in _cockpit_packages(root)
    status = root.run("dpkg-query", "-W", "-f=${Status}", "pam-twofa").stdout
    assert status == "install ok installed", "removing the page took pam-twofa with it"
    # Without conffiles or maintainer scripts, nothing stays for a purge: dpkg forgets it.
    assert root.run("dpkg-query", "-W", "cockpit-twofa", check=False).returncode != 0

    # And purged straight from installed.
    _apt_get(root, "install", f"/tmp/{step.cockpit_deb.name}")
    assert root.file(f"{PAGE_DIR}/index.html").is_file()
    _apt_get(root, "purge", "cockpit-twofa")

    assert root.run("dpkg-query", "-W", "cockpit-twofa", check=False).returncode != 0
    assert not root.file(PAGE_DIR).exists()
    new = _walk(root.path) - step.before_page
    named = sorted(path for path in new if OURS.search(path))
    assert named == [], f"left behind: {named}"
    mentions = [path for path in new if _mentions_ours(root.path / path)]
    assert sorted(mentions) == [], f"still mention the page: {mentions}"
    # What apt brought in for it goes too (cockpit-bridge and its libraries), so the tests
    # after this one see pam-twofa's root. Not all of it: dconf wants a per-user D-Bus, so
    # dbus-user-session, libpam-systemd, systemd and D-Bus came too, and autoremove keeps
    # those, as openssh-server (the test's sshd) recommends libpam-systemd.
    _apt_get(root, "autoremove", "--purge")
    assert root.run("dpkg-query", "-W", "cockpit-bridge", check=False).returncode != 0
    leftovers = _unowned_since(root.path, step.before_page)
    assert not [path for path in leftovers if OURS.search(path)], leftovers
    # Their state (machine-id, rc links, unit links, ...) is theirs, not pam-twofa's: the
    # purge test's "no new files that no package owns" counts from here.
    step.before |= set(leftovers)
    # pam-twofa goes on as before, which the tests after this one use.
    assert root.run("twofactl", "status").returncode == 0


def test_an_upgrade_keeps_the_key_the_database_and_the_edited_policy(step: Bookworm) -> None:
    root = step.root
    policy = root.file("/etc/twofa/policy.yaml")
    edited = policy.read_text() + "# edited by the administrator\n"
    policy.write_text(edited)
    step.key_digest = _sha256(root.file(KEY))
    step.stop_daemon()  # systemd would restart it after the upgrade
    newer = _repacked(step.deb, step.workdir, "0.1.0+upgrade1")
    shutil.copy(newer, root.file(f"/tmp/{newer.name}"))

    _apt_get(root, "install", f"/tmp/{newer.name}")

    version = root.run("dpkg-query", "-W", "-f=${Version}", "pam-twofa").stdout
    assert version == "0.1.0+upgrade1"
    assert policy.read_text() == edited, "the administrator's policy was replaced"
    assert root.file("/etc/twofa/policy.yaml.dpkg-dist").exists()
    assert _sha256(root.file(KEY)) == step.key_digest
    assert root.file(DATABASE).exists()
    assert f"pam_python.so {HOOK}" in root.file("/etc/pam.d/common-auth").read_text()
    # The same secret still works: the key and the database belong together.
    step.start_daemon()
    assert step.codes is not None
    login = step.ssh([PASSWORD, step.codes.next()])
    assert login.ok and "LOGIN-OK" in login.output, f"{login}\n{step.daemon_log()}"


def test_remove_keeps_the_state_and_purge_leaves_nothing_of_it(step: Bookworm) -> None:
    root = step.root
    step.close()  # systemd would stop both on removal

    _apt_get(root, "remove", "pam-twofa")

    status = root.run("dpkg-query", "-W", "-f=${Status}", "pam-twofa").stdout
    assert status == "deinstall ok config-files"
    assert not root.file(HOOK).exists() and not root.file("/usr/bin/twofad").exists()
    # Removal took the hook out of the PAM stacks before taking its files away.
    assert root.file("/etc/pam.d/common-auth").read_text() == step.common_auth
    assert _sha256(root.file(KEY)) == step.key_digest
    assert root.file(DATABASE).exists()
    assert root.file("/etc/twofa/policy.yaml").exists()

    _apt_get(root, "purge", "pam-twofa")

    assert root.run("dpkg-query", "-W", "pam-twofa", check=False).returncode != 0
    # The administrator's own sshd drop-in (README step 1) is theirs to delete, not dpkg's.
    admin_files = {"etc/ssh/sshd_config.d/twofa.conf"}
    after = _walk(root.path) - admin_files
    named = sorted(path for path in after if OURS.search(path))
    assert named == [], f"left behind: {named}"
    for gone in (STATE_DIR, "/etc/twofa", "/usr/share/pam-configs/twofa"):
        assert not root.file(gone).exists(), gone
    assert root.file("/etc/pam.d/common-auth").read_text() == step.common_auth
    # Whatever still mentions it is the system account (kept, as Debian keeps system
    # users: files may still carry its uid) or another package's state or a log.
    mentions = subprocess.run(
        ["grep", "-rlIP", "twofa(?!ctor)", "."],
        cwd=root.path,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    unexpected = sorted(
        path.removeprefix("./")
        for path in mentions
        if not ALLOWED_MENTIONS.match(path.removeprefix("./"))
        and path.removeprefix("./") not in admin_files
        and not path.removeprefix("./").startswith(("proc/", "dev/", "sys/", "tmp/", "run/"))
    )
    assert unexpected == [], f"still mention pam-twofa: {unexpected}"
    unowned = _unowned_since(root.path, step.before | admin_files)
    assert unowned == [], f"new files that no package owns: {unowned}"
    assert root.run("getent", "passwd", "_twofad").returncode == 0


# --------------------------------------------------------------------------- under systemd


class Container:
    """The root booted by systemd-nspawn (systemd as PID 1, sharing the host's network),
    stopped by its PID on exit; commands enter it with nsenter."""

    def __init__(self, path: Path, log: Path) -> None:
        self.path = path
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.init_pid = 0
        self.state = ""
        self._made_nspawn_dir = not Path("/run/systemd/nspawn").exists()

    def boot(self, timeout: float = 60) -> bool:
        """True once the container's systemd is up; False if it never started."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["systemd-nspawn", "--quiet", "--boot", "--register=no", "--keep-unit"]
                + ["--console=pipe", f"--directory={self.path}"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            self.init_pid = self.init_pid or self._init_pid()
            if self.init_pid:
                state = self.run("systemctl", "is-system-running", "--wait", check=False)
                self.state = (state.stdout + state.stderr).strip()
                if state.stdout.strip() in ("running", "degraded"):
                    return True
            time.sleep(0.5)
        return False

    def _init_pid(self) -> int:
        """The container's PID 1, seen from here: a process under nspawn whose own
        PID namespace numbers it 1."""
        assert self.proc is not None
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                status = (entry / "status").read_text()
                nspid = re.search(r"^NSpid:\s+(.*)$", status, re.MULTILINE)
                parent = re.search(r"^PPid:\s+(\d+)$", status, re.MULTILINE)
                numbers = nspid.group(1).split() if nspid else []
                if (
                    parent
                    and int(parent.group(1)) == self.proc.pid
                    and len(numbers) > 1
                    and numbers[-1] == "1"
                ):
                    return int(entry.name)
        return 0

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["nsenter", f"--target={self.init_pid}", "--mount", "--pid", "--uts", "--ipc"]
            + ["--root", "--wd", "--", *argv],
            capture_output=True,
            text=True,
            env=Root.environment(SYSTEMD_PAGER="", SYSTEMD_COLORS="0"),
            timeout=120,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done

    def stop(self) -> None:
        """SIGTERM makes nspawn power the container off cleanly; then SIGKILL."""
        _stop(self.proc)
        self.proc = None
        if self._made_nspawn_dir:  # nspawn leaves empty bookkeeping directories behind
            for leftover in ("locks", "propagate", ""):
                with contextlib.suppress(OSError):
                    os.rmdir(Path("/run/systemd/nspawn") / leftover)


def test_under_systemd_the_socket_starts_the_sandboxed_daemon_and_ssh_logs_in(
    tmp_path: Path,
) -> None:
    """The units themselves: the root booted with systemd as PID 1 (systemd-nspawn),
    twofad socket-activated as _twofad in its sandbox, and an SSH login through it."""
    if not shutil.which("systemd-nspawn"):
        pytest.skip("systemd-nspawn is not installed (Debian package systemd-container)")
    deb = _built_deb()
    tarball = base_tarball(deb, _built_cockpit_deb(deb))
    path = tmp_path / "root"
    path.mkdir(mode=0o755)
    port = _free_port()
    try:
        subprocess.run(
            ["tar", "-C", str(path), "--numeric-owner", "-xf", str(tarball)],
            check=True,
            timeout=300,
        )
        shutil.copy("/etc/resolv.conf", path / "etc/resolv.conf")
        shutil.copy(deb, path / "tmp" / deb.name)
        with Root(path) as root:
            _apt_get(root, "install", f"/tmp/{deb.name}", *SYSTEMD_PACKAGES)
            root.run("useradd", "--create-home", "--shell", "/bin/bash", USER)
            root.run("chpasswd", input=f"{USER}:{PASSWORD}\n")
            root.run("pam-auth-update", "--enable", "twofa")
        shutil.copy(
            path / EXAMPLES.lstrip("/") / "sshd_config.d/twofa-password-then-code.conf",
            path / "etc/ssh/sshd_config.d/twofa.conf",
        )
        # The container shares the host's network: its sshd on a free port of 127.0.0.1.
        (path / "etc/ssh/sshd_config.d/test-port.conf").write_text(
            f"Port {port}\nListenAddress 127.0.0.1\n"
        )
        container = Container(path, tmp_path / "nspawn.log")
        try:
            if not container.boot():
                if not container.init_pid:
                    pytest.skip(
                        "systemd-nspawn cannot boot a container here:\n"
                        + container.log.read_text(errors="replace")[-2000:]
                    )
                failed = container.run("systemctl", "--failed", "--no-legend", check=False)
                raise AssertionError(
                    f"the container did not boot: {container.state}\n{failed.stdout}\n"
                    + container.log.read_text(errors="replace")[-3000:]
                )
            _check_under_systemd(container, port)
        finally:
            container.stop()
    finally:
        _remove_tree(path)


def _check_under_systemd(container: Container, port: int) -> None:
    assert container.run("systemctl", "is-enabled", "twofad.socket").stdout.strip() == "enabled"
    assert container.run("systemctl", "is-active", "twofad.socket").stdout.strip() == "active"
    # The first connection starts the service.
    secret = json.loads(container.run("twofactl", "enroll", USER, "--json").stdout)["secret"]
    codes = CodeSource(secret)
    earlier = time.time() - 30
    container.run("twofactl", "confirm", USER, oathtool(secret, earlier))
    codes.spend(earlier)
    show = container.run(
        "systemctl", "show", "-p", "ActiveState,SubState,MainPID,User", "twofad.service"
    ).stdout
    facts = dict(line.split("=", 1) for line in show.split())
    assert (facts["ActiveState"], facts["SubState"]) == ("active", "running"), show
    status = container.run("cat", f"/proc/{facts['MainPID']}/status").stdout
    uid = container.run("id", "-u", "_twofad").stdout.strip()
    assert re.search(rf"^Uid:\s+{uid}\s", status, re.MULTILINE), status
    assert re.search(r"^CapBnd:\s+0+$", status, re.MULTILINE), status
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.MULTILINE), status
    assert re.search(r"^Seccomp:\s+2$", status, re.MULTILINE), status
    key = container.run("stat", "-c", "%a %U", KEY).stdout.split()
    assert key == ["400", "_twofad"], key
    # The PAM stack's own socket, in a directory only root may enter.
    private = container.run("stat", "-c", "%a %U %F", "/run/twofad/root").stdout.split()
    assert private == ["700", "root", "directory"], private
    container.run("test", "-S", "/run/twofad/root/twofad.sock")

    login = _ssh(port, [PASSWORD, codes.next()])
    journal = container.run("journalctl", "-u", "twofad", "-u", "ssh", "--no-pager", check=False)
    assert login.ok and "LOGIN-OK" in login.output, f"{login}\n{journal.stdout}"

    container.run("systemctl", "reload", "twofad")
    again = container.run("systemctl", "show", "-p", "MainPID,ActiveState", "twofad.service")
    assert f"MainPID={facts['MainPID']}" in again.stdout and "ActiveState=active" in again.stdout
    journal = container.run("journalctl", "-u", "twofad", "-o", "cat", "--no-pager").stdout
    assert f"verify {USER}: accepted" in journal, journal
    assert "policy loaded" in journal, journal
    analysis = container.run("systemd-analyze", "security", "twofad.service", check=False).stdout
    found = re.search(r"Overall exposure level for twofad\.service: (\d+\.\d+)", analysis)
    assert found and float(found.group(1)) <= 2.0, analysis
