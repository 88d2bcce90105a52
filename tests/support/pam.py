"""PAM service files written by a test, and the real `pamtester` driven through a pty.

Verified on Debian 12 (libpam 1.5.2, libpam-python 1.1.0~git20220701, pamtester 0.1.2):

- `pamtester` talks to the person through libpam_misc's `misc_conv`: for each prompt it
  switches the terminal with `tcsetattr(TCSAFLUSH)` (which *discards* pending input),
  writes the prompt to stderr and reads one line from stdin (strace on bookworm's
  libpam 1.5.2; older libpam wrote the prompt *before* the flush). Answers typed ahead
  are therefore lost, so the driver below types each answer only once the process is
  blocked in read(2) on the terminal (/proc/PID/syscall). PAM_TEXT_INFO goes to
  stdout, PAM_ERROR_MSG to stderr, each with a newline; after an echo-off answer
  misc_conv prints a newline. An end-of-file (^D) as the answer reaches the module as
  a *successful* reply whose text is None.
- Linux-PAM lowercases service names, so service file names must be lowercase.
- pam_python loads by its full path or its bare name: see `PAM_PYTHON`.

pam_python as verified with a hook (tests/integration/test_harness_selfcheck.py)::

    def pam_sm_authenticate(pamh, flags, argv):   # argv[0] is the hook's own path
        pamh.service        # PAM_SERVICE, e.g. "twofa-test-ab12" / "sshd-twofa-test-ab12"
        pamh.rhost          # PAM_RHOST: "127.0.0.1" (pamtester -I rhost=..., sshd), else None
        pamh.tty            # PAM_TTY: "ssh" under sshd, None under pamtester without -I tty
        pamh.user           # PAM_USER as set by the application (may be None elsewhere)
        pamh.get_user(None) # PAM_USER, prompting for it if unset
        pamh.conversation(pamh.Message(pamh.PAM_TEXT_INFO, "text"))
        pamh.conversation(pamh.Message(pamh.PAM_ERROR_MSG, "text"))
        reply = pamh.conversation(pamh.Message(pamh.PAM_PROMPT_ECHO_OFF, "Verification code: "))
        reply.resp          # str, or None on end-of-file; reply.resp_retcode == 0
        pamh.conversation([m1, m2])  # several messages in one call -> tuple of replies
        return pamh.PAM_SUCCESS      # or pamh.PAM_AUTH_ERR, ...

Inside the hook `sys.executable` is not /usr/bin/python3 (it is guessed from PATH, e.g. a
pyenv shim); the interpreter is the system's libpython3.11.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import platform
import re
import secrets
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

PAM_DIR = Path("/etc/pam.d")

PAM_PYTHON = "/lib/security/pam_python.so"
"""How a stack line names pam_python in tests: by its full path (exact, no lookup).

Verified (strace, and test_harness_selfcheck): Debian installs the module only as
/lib/security/pam_python.so. Debian's libpam 1.5.2 first tries the multiarch directory
/lib/x86_64-linux-gnu/security/ for a bare name and then falls back to /lib/security/, so
the bare `PAM_PYTHON_BARE` works as well (what an administrator would write; it costs
one failed open per login). A bare name that exists in neither directory makes the
stack fail with "Module is unknown". The hook file that follows the module name must be
an absolute path (pam_python takes relative names from /lib/security/).
"""

PAM_PYTHON_BARE = "pam_python.so"

PAMTESTER = "pamtester"

# read(2) per architecture, as /proc/PID/syscall reports it.
_READ_SYSCALL = {"x86_64": 0, "aarch64": 63, "i386": 3, "i686": 3, "armv7l": 3, "riscv64": 63}

# A quiet pause after which a blocked reader whose output ends with a newline is taken to
# be prompting anyway, and the fallback (no /proc/PID/syscall) pause before typing.
_QUIET_PROMPT_SECONDS = 1.0
_FALLBACK_SETTLE_SECONDS = 0.3
_FALLBACK_PROMPT = re.compile(r"\S.*[:?>]\s*$")


# --------------------------------------------------------------------------- service files


@contextmanager
def pam_service(name_prefix: str, lines: str | Iterable[str]) -> Iterator[str]:
    """Write /etc/pam.d/<prefix>-<random> with `lines`; yield its name; remove it on exit."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name_prefix):
        raise ValueError(f"PAM service prefix must be lowercase [a-z0-9._-]: {name_prefix!r}")
    text = lines if isinstance(lines, str) else "\n".join(lines)
    if not text.endswith("\n"):
        text += "\n"
    for _ in range(20):
        name = f"{name_prefix}-{secrets.token_hex(2)}"
        path = PAM_DIR / name
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        break
    else:  # pragma: no cover - 20 collisions in a row
        raise RuntimeError(f"no free PAM service name with prefix {name_prefix!r}")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(f"# written by a pam-twofa test (pid {os.getpid()}); safe to delete\n")
            handle.write(text)
        yield name
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# --------------------------------------------------------------------------- pty driver


class Conversation(NamedTuple):
    """What a program run in a pty did: unpacks as (returncode, output, prompts)."""

    returncode: int
    output: str
    prompts: list[str]

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def prompts_stripped(self) -> list[str]:
        return [prompt.strip() for prompt in self.prompts]

    def __str__(self) -> str:
        return f"exit {self.returncode}, prompts {self.prompts!r}\n--- output ---\n{self.output}"


class ConversationTimeout(TimeoutError):
    """The program neither finished nor asked anything within the time limit."""

    def __init__(self, message: str, output: str, prompts: list[str]) -> None:
        super().__init__(f"{message}\nprompts so far: {prompts!r}\n--- output so far ---\n{output}")
        self.output = output
        self.prompts = prompts


def _clean(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "")


def _session_members(leader: int) -> list[int]:
    """Processes in the session `leader` started (the child and anything it forked)."""
    members = [leader]
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == leader:
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        # state ppid pgrp session ...
        if len(fields) > 3 and int(fields[3]) == leader:
            members.append(int(entry.name))
    return members


def _reading_terminal(pid: int, tty_names: set[str]) -> bool | None:
    """True if `pid` is blocked in read(2) on our terminal; None if /proc cannot tell."""
    read_nr = _READ_SYSCALL.get(platform.machine())
    if read_nr is None:
        return None
    try:
        with open(f"/proc/{pid}/syscall") as handle:
            parts = handle.read().split()
    except FileNotFoundError:
        return False
    except OSError:
        return None
    if len(parts) < 2 or parts[0] != str(read_nr):
        return False
    try:
        target = os.readlink(f"/proc/{pid}/fd/{int(parts[1], 16)}")
    except (OSError, ValueError):
        return False
    return target in tty_names


Answer = str | Callable[[str], str]


def run_in_pty(
    argv: Sequence[str],
    answers: Sequence[Answer] = (),
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    cwd: str | os.PathLike[str] | None = None,
) -> Conversation:
    """Run `argv` with a fresh pty as stdin/stdout/stderr and controlling terminal.

    Each time the program waits for a line from the terminal after printing something
    new, the last line it printed is recorded as a prompt and the next answer is typed
    (with a newline); an answer may be a function of everything printed so far, for a
    reply that depends on what the program showed. When the answers run out, further prompts get end-of-file (^D).
    Raises ConversationTimeout (after stopping the child by its PID) if the program has
    not exited within `timeout` seconds.
    """
    environment = {**os.environ, "LC_ALL": "C", "LANG": "C", "TERM": "dumb"}
    environment.pop("SSH_AUTH_SOCK", None)
    environment.pop("SSH_ASKPASS", None)
    environment.pop("DISPLAY", None)
    if env:
        environment.update(env)

    master, slave = os.openpty()
    slave_name = os.ttyname(slave)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))

    def become_terminal_owner() -> None:  # runs in the child, after the dup2s
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=environment,
            cwd=cwd,
            close_fds=True,
            preexec_fn=become_terminal_owner,
        )
    except BaseException:
        os.close(master)
        os.close(slave)
        raise
    os.close(slave)
    os.set_blocking(master, False)

    tty_names = {slave_name, "/dev/tty"}
    raw = bytearray()
    prompts: list[str] = []
    remaining = list(answers)
    answered_upto = 0
    last_output = time.monotonic()
    deadline = time.monotonic() + timeout
    eof = False

    def drain(wait: float) -> None:
        nonlocal eof, last_output
        if eof:
            return
        ready, _, _ = select.select([master], [], [], wait)
        while ready:
            try:
                chunk = os.read(master, 65536)
            except BlockingIOError:
                return
            except OSError as error:  # EIO: every slave descriptor is closed
                if error.errno != errno.EIO:
                    raise
                eof = True
                return
            if not chunk:
                eof = True
                return
            raw.extend(chunk)
            last_output = time.monotonic()

    def waiting_prompt() -> str | None:
        pending = _clean(bytes(raw[answered_upto:]))
        if not pending.strip():
            return None
        lines = pending.split("\n")
        ends_open = lines[-1].strip() != ""
        quiet = time.monotonic() - last_output
        verdicts = [_reading_terminal(pid, tty_names) for pid in _session_members(proc.pid)]
        if any(verdicts):
            if not ends_open and quiet < _QUIET_PROMPT_SECONDS:
                return None
        elif None in verdicts:  # /proc cannot tell: a prompt-like last line, then quiet
            if not _FALLBACK_PROMPT.search(lines[-1]) or quiet < _FALLBACK_SETTLE_SECONDS:
                return None
        else:
            return None
        return next(line for line in reversed(lines) if line.strip())

    try:
        while True:
            drain(0.05)
            if proc.poll() is not None:
                # The child is gone; collect what it (or a straggler) left in the pty.
                settle = time.monotonic() + 2.0
                while not eof and time.monotonic() < settle:
                    before = len(raw)
                    drain(0.2)
                    if len(raw) == before:
                        break
                break
            if time.monotonic() > deadline:
                stop_started(proc)
                drain(0.2)
                raise ConversationTimeout(
                    f"{argv[0]} did not finish within {timeout} s",
                    _clean(bytes(raw)),
                    prompts,
                )
            prompt = waiting_prompt()
            if prompt is None:
                continue
            drain(0)  # anything written just before the read belongs to this prompt
            prompt = waiting_prompt() or prompt
            prompts.append(prompt)
            answered_upto = len(raw)
            if remaining:
                answer = remaining.pop(0)
                if callable(answer):  # an answer that depends on what was shown so far
                    answer = answer(_clean(bytes(raw)))
                os.write(master, answer.encode() + b"\n")
            else:
                os.write(master, b"\x04")
        returncode = proc.wait()
    finally:
        if proc.poll() is None:
            stop_started(proc)
        os.close(master)
    return Conversation(returncode, _clean(bytes(raw)), prompts)


def stop_started(proc: subprocess.Popen[bytes] | None, grace: float = 5) -> None:
    """SIGTERM, then SIGKILL, to this one PID (which we started)."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(grace)


# --------------------------------------------------------------------------- pamtester


def pamtester(
    service: str,
    user: str,
    answers: Sequence[Answer] = (),
    operations: Sequence[str] = ("authenticate",),
    env: Mapping[str, str] | None = None,
    timeout: float = 20.0,
    *,
    items: Mapping[str, str] | None = None,
    pam_env: Mapping[str, str] | None = None,
    verbose: bool = False,
) -> Conversation:
    """Run the real pamtester for `service`/`user` in a pty, typing `answers` at its prompts.

    `operations`: pamtester operations, e.g. ("authenticate", "acct_mgmt"), each may carry
    flags, e.g. "authenticate(PAM_SILENT)". `items`: PAM items via `-I` (rhost, ruser,
    tty, ...), e.g. {"rhost": "127.0.0.1"}. `pam_env`: PAM environment via `-E`.
    `env`: extra variables for the pamtester process itself. Exit status 0 means every
    operation succeeded; output holds prompts, TEXT_INFO/ERROR_MSG lines and pamtester's
    own verdict ("pamtester: successfully authenticated" / "pamtester: <PAM error>").
    """
    argv = [PAMTESTER]
    if verbose:
        argv.append("-v")
    for key, value in (items or {}).items():
        argv += ["-I", f"{key}={value}"]
    for key, value in (pam_env or {}).items():
        argv += ["-E", f"{key}={value}"]
    argv += [service, user, *operations]
    return run_in_pty(argv, answers, env=env, timeout=timeout)
