"""A real OpenSSH server on 127.0.0.1 with its own PAM service, and a real client in a pty.

Verified on Debian 12 (OpenSSH 9.2p1):

- sshd takes its PAM service name from the basename of argv[0]. `SshServer` runs a
  symlink `<root>/sshd-twofa-test-XXXX -> /usr/sbin/sshd`, so PAM reads
  /etc/pam.d/sshd-twofa-test-XXXX (written by `pam_service`), never /etc/pam.d/sshd.
  sshd refuses to start unless argv[0] is an absolute path (it re-executes itself).
- Keyboard-interactive through PAM (auth-pam.c): PAM_TEXT_INFO / PAM_ERROR_MSG are
  not sent on their own. sshd collects them and sends them with the *next* prompt, as
  part of its text: the client shows "(user@127.0.0.1) message\nVerification code: "
  (the client adds the "(user@host) " prefix to the first line). Messages after the
  last prompt are sent when PAM finishes, as an info request without prompts, on
  success *and* on failure: the client prints them before the command's output or
  before "Permission denied". See test_harness_selfcheck.
- A keyboard-interactive prompt from pam_unix reads "(user@127.0.0.1) Password: ";
  `Conversation.prompts` holds the last line of each prompt.
- The client asks keyboard-interactive questions on /dev/tty only: it needs a
  controlling terminal (given by `run_in_pty`), otherwise it falls back to SSH_ASKPASS.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

from support.pam import Answer, Conversation, pam_service, run_in_pty

SSHD = "/usr/sbin/sshd"
SSH = "ssh"
PRIVSEP_DIR = Path("/run/sshd")

DEFAULT_PAM_LINES = (
    "auth required pam_unix.so",
    "account required pam_unix.so",
    "session required pam_permit.so",
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SshServer:
    """One sshd process on 127.0.0.1:<free port>, using its own PAM service file.

    Use as a context manager. `pam_lines`: the PAM stack written to
    /etc/pam.d/sshd-twofa-test-XXXX. `authentication_methods`: sshd's
    AuthenticationMethods (None: any one method suffices). `extra_config`: more
    sshd_config lines. The server is stopped (by its PID) and every file removed on exit.
    """

    def __init__(
        self,
        pam_lines: str | Iterable[str] = DEFAULT_PAM_LINES,
        *,
        authentication_methods: str | None = None,
        extra_config: Iterable[str] = (),
        root: str | os.PathLike[str] | None = None,
        service_prefix: str = "sshd-twofa-test",
        log_level: str = "DEBUG1",
        start_timeout: float = 30.0,
    ) -> None:
        self.pam_lines = pam_lines if isinstance(pam_lines, str) else list(pam_lines)
        self.authentication_methods = authentication_methods
        self.extra_config = list(extra_config)
        self._root_arg = Path(root) if root is not None else None
        self.service_prefix = service_prefix
        self.log_level = log_level
        self.start_timeout = start_timeout
        self.root = Path()
        self.port = 0
        self.host = "127.0.0.1"
        self.service = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self._stack: ExitStack | None = None

    # -- files -------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.root / "sshd_config"

    @property
    def log_path(self) -> Path:
        return self.root / "sshd.log"

    @property
    def host_key(self) -> Path:
        return self.root / "ssh_host_ed25519_key"

    @property
    def known_hosts(self) -> Path:
        """A known_hosts file naming this server's host key at [127.0.0.1]:port."""
        return self.root / "known_hosts"

    @property
    def program(self) -> Path:
        """The symlink to /usr/sbin/sshd whose name is the PAM service name."""
        return self.root / self.service

    def config_text(self) -> str:
        lines = [
            f"Port {self.port}",
            f"ListenAddress {self.host}",
            "AddressFamily inet",
            f"HostKey {self.host_key}",
            f"PidFile {self.root / 'sshd.pid'}",
            "UsePAM yes",
            "KbdInteractiveAuthentication yes",
            "PasswordAuthentication no",
            "PubkeyAuthentication yes",
            "AuthorizedKeysFile .ssh/authorized_keys",
            "PermitRootLogin no",
            "UseDNS no",
            f"LogLevel {self.log_level}",
            "StrictModes yes",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            "AllowTcpForwarding no",
            "MaxAuthTries 6",
            "LoginGraceTime 120",
            "MaxStartups 50:30:100",
        ]
        if self.authentication_methods:
            lines.append(f"AuthenticationMethods {self.authentication_methods}")
        lines += self.extra_config
        return "\n".join(lines) + "\n"

    # -- life cycle --------------------------------------------------------------------

    def __enter__(self) -> SshServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> SshServer:
        stack = ExitStack()
        self._stack = stack
        try:
            if self._root_arg is None:
                self.root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sshd-")))
            else:
                self.root = self._root_arg
                self.root.mkdir(parents=True, exist_ok=True)
            self.service = stack.enter_context(pam_service(self.service_prefix, self.pam_lines))
            PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
            for stale in (self.host_key, self.host_key.with_suffix(".pub")):
                stale.unlink(missing_ok=True)
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "twofa-test-host"]
                + ["-f", str(self.host_key)],
                check=True,
                capture_output=True,
                stdin=subprocess.DEVNULL,
            )
            self.program.symlink_to(SSHD)
            stack.callback(self._cleanup_files)
            stack.callback(self.stop)
            last_error = ""
            for _attempt in range(5):
                self.port = _free_port()
                self.config_path.write_text(self.config_text())
                host_public = (self.root / "ssh_host_ed25519_key.pub").read_text().split()
                self.known_hosts.write_text(
                    f"[{self.host}]:{self.port} {host_public[0]} {host_public[1]}\n"
                )
                check = subprocess.run(
                    [str(self.program), "-t", "-f", str(self.config_path)],
                    capture_output=True,
                    text=True,
                )
                if check.returncode != 0:
                    raise RuntimeError(f"sshd -t rejects the configuration: {check.stderr}")
                last_error = self._launch()
                if not last_error:
                    return self
            raise RuntimeError(f"sshd did not start: {last_error}")
        except BaseException:
            stack.close()
            self._stack = None
            raise

    def _launch(self) -> str:
        """Start sshd and wait for its banner; '' on success, else why it failed."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.program), "-D", "-e", "-f", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", "LC_ALL": "C"},
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"exited with {self.proc.returncode}:\n{self.log_text()}"
            if self._banner():
                return ""
            time.sleep(0.05)
        self.stop()
        return f"no SSH banner within {self.start_timeout} s:\n{self.log_text()}"

    def _banner(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=2.0) as conn:
                return conn.recv(64).startswith(b"SSH-2.0-")
        except OSError:
            return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the listening sshd (only the PID we started), then SIGKILL."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout)

    def _cleanup_files(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.program.unlink()

    def close(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def wait_for_log(self, text: str, timeout: float = 15.0) -> str:
        """The log once it contains `text`; sshd logs a verdict after the client has
        already seen it, so check logs with this rather than `log_text`."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.log_text()
            if text in log or time.monotonic() > deadline:
                if text not in log:
                    raise AssertionError(f"{text!r} not in the sshd log within {timeout} s:\n{log}")
                return log
            time.sleep(0.05)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


# --------------------------------------------------------------------------- client side


def _account(user: object) -> pwd.struct_passwd:
    name = user if isinstance(user, str) else user.name  # type: ignore[attr-defined]
    return pwd.getpwnam(name)


def authorize_key(user: object, tmpdir: str | os.PathLike[str]) -> Path:
    """Make an ed25519 key pair in `tmpdir`, append its public half to the user's
    ~/.ssh/authorized_keys (owned by the user, 0700/0600) and return the private key path.

    `user` is a name or anything with a `.name` (e.g. support.users.TestUser).
    """
    entry = _account(user)
    identity = Path(tmpdir) / f"id_ed25519_{entry.pw_name}_{secrets.token_hex(2)}"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"twofa-test-{entry.pw_name}"]
        + ["-f", str(identity)],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    ssh_dir = Path(entry.pw_dir) / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    os.chown(ssh_dir, entry.pw_uid, entry.pw_gid)
    os.chmod(ssh_dir, 0o700)
    authorized = ssh_dir / "authorized_keys"
    with open(authorized, "a") as handle:
        handle.write(Path(f"{identity}.pub").read_text())
    os.chown(authorized, entry.pw_uid, entry.pw_gid)
    os.chmod(authorized, 0o600)
    return identity


def ssh_command(
    server: SshServer,
    user: object,
    *,
    identity: str | os.PathLike[str] | None = None,
    command: str = "echo LOGIN-OK",
    methods: str | None = None,
    options: Sequence[str] = (),
) -> list[str]:
    """The ssh command line `ssh_login` runs (no config files, no agent, this server's key)."""
    name = _account(user).pw_name if not isinstance(user, str) else user
    if methods is None:
        methods = "publickey,keyboard-interactive" if identity else "keyboard-interactive"
    argv = [
        shutil.which(SSH) or SSH,
        "-F",
        "/dev/null",
        "-T",
        "-n",
        "-p",
        str(server.port),
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={server.known_hosts}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "UpdateHostKeys=no",
        "-o",
        "CheckHostIP=no",
        "-o",
        f"PreferredAuthentications={methods}",
        "-o",
        "NumberOfPasswordPrompts=1",
        "-o",
        "BatchMode=no",
        "-o",
        "IdentityAgent=none",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "ConnectTimeout=30",
        "-o",
        "ServerAliveInterval=0",
    ]
    if identity is not None:
        argv += ["-i", str(identity)]
    else:
        argv += ["-o", "PubkeyAuthentication=no"]
    argv += [*options, f"{name}@{server.host}", command]
    return argv


def ssh_login(
    server: SshServer,
    user: object,
    answers: Sequence[Answer] = (),
    identity: str | os.PathLike[str] | None = None,
    command: str = "echo LOGIN-OK",
    timeout: float = 30.0,
    *,
    methods: str | None = None,
    options: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> Conversation:
    """Log in with the real OpenSSH client in a pty; answer its keyboard-interactive
    prompts with `answers` in order; run `command` on success.

    Returns Conversation(returncode, transcript, prompts): exit 0 and the command's
    output in the transcript on success, 255 and "Permission denied (...)" on failure.
    `identity`: a private key (see `authorize_key`); then publickey is tried first.
    `methods`: the client's PreferredAuthentications. `options`: more ssh arguments
    (e.g. ["-v"] for a client-side debug log in the transcript). `env`: for the client,
    e.g. {"LC_ALL": "C.UTF-8"}: in the C locale OpenSSH masks non-ASCII text it is shown.
    """
    argv = ssh_command(
        server, user, identity=identity, command=command, methods=methods, options=options
    )
    return run_in_pty(argv, answers, timeout=timeout, env=env)
