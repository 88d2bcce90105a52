"""What every benchmark shares: paths, the test support, statistics, tables, JSON output.

The benchmarks drive the real stack as the integration tests do (tests/support): a real
twofad on a temporary socket and state directory, the real pam_python.so through PAM
service files written for the run (/etc/pam.d/twofa-bench-*, removed afterwards), the
real pamtester, sshd and OpenSSH client, throwaway accounts, and codes from oathtool.
They print figures and never fail on a time: each says whether its targets are met.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import secrets
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pam_twofa import protocol as p  # noqa: E402
from support.daemon import Daemon  # noqa: E402
from support.oath import oathtool  # noqa: E402
from support.pam import PAM_PYTHON  # noqa: E402
from support.users import TestUser, throwaway_user  # noqa: E402

HOOK = REPO / "pam_twofa" / "hook.py"
RESULTS = REPO / "bench" / "results"
PERIOD = 30
SYSTEM_PYTHON = "/usr/bin/python3"
USER_PREFIX = "tfb"  # throwaway accounts: tfb<8 hex>
PAM_PREFIX = "twofa-bench"


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linearly interpolated; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


# --------------------------------------------------------------------------- output


def heading(text: str) -> None:
    print(f"\n== {text}", flush=True)


def note(text: str) -> None:
    print(f"   {text}", flush=True)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A plain fixed-width table: the first column left-aligned, the rest right-aligned."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for index, value in enumerate(row):
            widths[index] = max(widths[index], len(value))

    def line(values: Sequence[str]) -> str:
        parts = [
            values[i].ljust(widths[i]) if i == 0 else values[i].rjust(widths[i])
            for i in range(len(values))
        ]
        return "  ".join(parts).rstrip()

    print(line(list(headers)))
    print(line(["-" * w for w in widths]))
    for row in cells:
        print(line(row))
    sys.stdout.flush()


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10000:
        return f"{value:,}"
    return str(value)


def machine() -> dict[str, Any]:
    return {
        "host": platform.node(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def emit(name: str, figures: dict[str, Any]) -> None:
    """The benchmark's last line: one JSON object; also kept in bench/results/NAME.json."""
    record = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        **figures,
    }
    line = json.dumps(record, sort_keys=False, default=_json_default)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(line + "\n")
    print(line, flush=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON: {value!r}")


# --------------------------------------------------------------------------- environment


def require_root() -> None:
    if os.geteuid() != 0:
        sys.exit("the benchmarks need root: they add accounts, PAM services and an sshd")
    missing = [tool for tool in ("pamtester", "oathtool", "sshd", "ssh") if not _which(tool)]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: run bench/setup.sh (or make bench)")


def _which(tool: str) -> str | None:
    return shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")


def hook_env() -> dict[str, str]:
    """The environment for processes that load the hook (pamtester, sshd, ssh): a clean
    one, as sshd and login have, without PYTHONDONTWRITEBYTECODE.

    pam_python starts its interpreter isolated (-I: PYTHON* variables are ignored, and it
    never writes bytecode itself), but it finds sys.executable by searching PATH for
    "python3": a PATH with pyenv shims first (as this shell's) changes that, so the
    hook runs with the system's PATH, as under sshd.
    """
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LC_ALL": "C",
        "LANG": "C",
        "HOME": "/root",
    }


def byte_compile_hook() -> str:
    """Byte-compile pam_twofa with the system python, as a Debian package's postinst would."""
    subprocess.run(
        [SYSTEM_PYTHON, "-m", "compileall", "-q", "pam_twofa"],
        cwd=REPO,
        env=hook_env(),
        check=True,
    )
    return (
        "pam_twofa byte-compiled (/usr/bin/python3 -m compileall -q pam_twofa, "
        "PYTHONDONTWRITEBYTECODE unset); pamtester, sshd and ssh run with a clean "
        "environment (system PATH, no PYTHON* variables)"
    )


@contextmanager
def work_dir(prefix: str) -> Iterator[Path]:
    """A directory every local user can reach, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"twofa-bench-{prefix}-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def running_daemon(root: Path, policy: str = "default: optional\n") -> Iterator[Daemon]:
    """A real twofad on `root`, stopped (by its PID) on exit."""
    policy_path = root / "policy.yaml"
    policy_path.write_text(policy)
    daemon = Daemon(root, "--policy", str(policy_path)).start()
    try:
        yield daemon
    finally:
        if daemon.alive():
            daemon.stop()


@contextmanager
def throwaway_users(count: int) -> Iterator[list[TestUser]]:
    with ExitStack() as stack:
        yield [stack.enter_context(throwaway_user(USER_PREFIX)) for _ in range(count)]


def hook_line(daemon: Daemon, *arguments: str) -> str:
    return f"auth required {PAM_PYTHON} {HOOK} socket={daemon.socket} {' '.join(arguments)}"


def hook_copy_text() -> str:
    """The real hook.py, to run from another directory: it finds pam_twofa in this
    checkout instead of next to itself. pam_python compiles the same text."""
    text = HOOK.read_text()
    own_parent = "os.path.dirname(os.path.dirname(os.path.abspath(__file__)))"
    if own_parent not in text:
        raise SystemExit(f"{HOOK} no longer finds its package as expected; update bench/")
    return text.replace(own_parent, repr(str(REPO)))


_STAMP_PREFIX = """\
import time as _bench_time
_BENCH_LOADED = _bench_time.monotonic()
"""

_STAMP_SUFFIX = """

# --- benchmark: stamps (pid, event, monotonic time) of each phase of this process -----
import atexit as _bench_atexit
import os as _bench_os


def _bench_stamp(event, when=None):
    when = _bench_time.monotonic() if when is None else when
    with open({stamps!r}, "a") as out:
        out.write(f"{{_bench_os.getpid()}} {{event}} {{when:.6f}}\\n")


_bench_stamp("imported")
_bench_stamp("loaded", _BENCH_LOADED)


def _bench_wrap(name):
    inner = globals().get(name)
    if inner is None:
        return

    def wrapper(pamh, flags, argv):
        _bench_stamp(name + ".start")
        try:
            return inner(pamh, flags, argv)
        finally:
            _bench_stamp(name + ".end")

    globals()[name] = wrapper


for _bench_name in (
    "pam_sm_authenticate",
    "pam_sm_setcred",
    "pam_sm_acct_mgmt",
    "pam_sm_open_session",
    "pam_sm_close_session",
):
    _bench_wrap(_bench_name)
_bench_atexit.register(_bench_stamp, "finalizing")
"""


def stamped_hook_text(source: str, stamps: Path) -> str:
    """Hook `source` that appends to `stamps` when pam_python starts running it
    ("loaded"), when its imports are done ("imported"), around each entry point, and
    when its interpreter starts finalizing (atexit): one "pid event time" line each."""
    return _STAMP_PREFIX + source + _STAMP_SUFFIX.format(stamps=str(stamps))


def read_stamps(stamps: Path, offset: int = 0) -> list[tuple[int, str, float]]:
    """The (pid, event, monotonic time) lines written after byte `offset`."""
    with open(stamps) as handle:
        handle.seek(offset)
        rows = [line.split() for line in handle if line.strip()]
    return [(int(pid), event, float(when)) for pid, event, when in rows]


def pin_apart(daemons: Iterable[Daemon]) -> None:
    """The daemons on the last core, this process on the first: where the scheduler
    happens to put the two relative to each other otherwise sways the figures."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return
    for daemon in daemons:
        assert daemon.proc is not None
        os.sched_setaffinity(daemon.proc.pid, {cpus[-1]})
    os.sched_setaffinity(0, {cpus[0]})


def daemon_memory(daemon: Daemon) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of the daemon process, in MB."""
    assert daemon.proc is not None
    figures: dict[str, float] = {}
    with open(f"/proc/{daemon.proc.pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                figures[key] = round(int(value.split()[0]) / 1024.0, 1)
    return figures


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- codes


def new_secret() -> str:
    """A random 160-bit base32 secret, without padding."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def current_step() -> int:
    return int(time.time() // PERIOD)


class Codes:
    """oathtool codes, one subprocess per (secret, step), remembered."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int], str] = {}

    def at_step(self, secret: str, step: int) -> str:
        key = (secret, step)
        if key not in self._cache:
            self._cache[key] = oathtool(secret, step * PERIOD)
        return self._cache[key]

    def wrong(self, secret: str, step: int) -> str:
        """A six-digit code that matches none of the steps around `step`."""
        taken = {self.at_step(secret, s) for s in range(step - 2, step + 4)}
        while True:
            code = f"{secrets.randbelow(10**6):06d}"
            if code not in taken:
                return code


class Fresh:
    """Per user, the time steps a module that refuses replays has not seen yet.

    Such a module (twofad, pam_oath) accepts a step at most once and never one older
    than the last it accepted: take the current step, else the next (both inside a ±1
    window), else nothing until the clock moves on.
    """

    def __init__(self, codes: Codes) -> None:
        self.codes = codes
        self.last: dict[str, int] = {}

    def spend(self, user: str, step: int) -> None:
        self.last[user] = max(self.last.get(user, -1), step)

    def take(self, user: str, secret: str) -> str | None:
        step = current_step()
        for candidate in (step, step + 1):
            if candidate > self.last.get(user, -1):
                self.last[user] = candidate
                return self.codes.at_step(secret, candidate)
        return None

    def take_any(self, users: Sequence[tuple[str, str]], start: int = 0) -> tuple[int, str]:
        """The first of `users` (name, secret), from `start` round-robin, with a fresh
        code; waits for the next time step if none has one."""
        while True:
            for offset in range(len(users)):
                index = (start + offset) % len(users)
                code = self.take(*users[index])
                if code is not None:
                    return index, code
            wait = PERIOD - time.time() % PERIOD + 0.05
            note(f"(every user has spent its fresh codes: waiting {wait:.1f} s for the next step)")
            time.sleep(wait)


def enroll(daemon: Daemon, user: str, codes: Codes) -> tuple[str, int]:
    """Enroll and confirm `user` as tests/integration/conftest.py does; the confirmation
    spends the previous step, leaving the current and the next free. (secret, spent step)."""
    secret = str(daemon.request("enroll.begin", user=user)["secret"])
    earlier = current_step() - 1
    daemon.request("enroll.confirm", user=user, code=codes.at_step(secret, earlier))
    return secret, earlier


def google_authenticator_file(user: TestUser, *, disallow_reuse: bool) -> str:
    """Write ~user/.google_authenticator with google-authenticator itself, as the user.

    TOTP, window 3 (±1 step, as twofad), no rate limit, no confirmation; returns the
    secret (the file's first line).
    """
    path = Path(user.home) / ".google_authenticator"
    path.unlink(missing_ok=True)
    subprocess.run(
        [
            "google-authenticator",
            "--time-based",
            "--disallow-reuse" if disallow_reuse else "--allow-reuse",
            "--force",
            "--no-rate-limit",
            "--window-size=3",
            "--no-confirm",
            "--quiet",
            "--qr-mode=NONE",
            "--emergency-codes=1",
        ],
        user=user.uid,
        group=user.gid,
        extra_groups=[],
        env={"HOME": user.home, "PATH": "/usr/bin:/bin", "LC_ALL": "C"},
        cwd=user.home,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return path.read_text().splitlines()[0].strip()


def oath_line(user: str, secret: str) -> str:
    """A pam_oath users file line (HOTP/T30, no PIN) for a base32 secret."""
    raw = base64.b32decode(secret + "=" * (-len(secret) % 8))
    return f"HOTP/T30 {user} - {raw.hex()}\n"


# --------------------------------------------------------------------------- the store


def prime_state(root: Path) -> None:
    """Start and stop twofad once on `root`: the key file and its fingerprint exist."""
    with running_daemon(root):
        pass


def bulk_load(
    daemon: Daemon, users: Sequence[tuple[str, str]], *, recovery_codes: int = 8
) -> float:
    """Insert enrolled users straight into a stopped daemon's database, through the
    daemon's own code (twofad.keys, twofad.store, twofad.recovery): the rows and recovery
    code digests an enrollment leaves. Returns the seconds it took.

    Used for numbers of accounts the socket cannot enroll: enrollment through it needs
    a real system account per user (NSS), and these names have none.
    """
    from twofad.keyfile import load_or_create
    from twofad.store import Brought, BroughtDevice, SealedSecret, Store
    from twofad.totp import TotpParams

    assert not daemon.alive(), "bulk loading needs the daemon stopped"
    started = time.perf_counter()
    keys = load_or_create(str(daemon.key_file))
    store = Store(str(daemon.database))
    try:
        now = time.time()
        with store.transaction():
            for name, secret in users:
                # Random canonical codes: only their keyed digests are stored.
                digests = [
                    keys.recovery_digest(name, secrets.token_hex(6)) for _ in range(recovery_codes)
                ]
                sealed = SealedSecret(keys.seal(name, secret), TotpParams("SHA1", 6, PERIOD))
                store.take_over(name, None, Brought([BroughtDevice("phone", sealed)], digests), now)
    finally:
        store.close()
    return time.perf_counter() - started


def database_size(daemon: Daemon) -> dict[str, float]:
    """Database, WAL and shared-memory file sizes in MB."""
    sizes = {}
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{daemon.database}{suffix}")
        sizes["db" + suffix.replace("-", "_")] = (
            round(path.stat().st_size / 1e6, 2) if path.exists() else 0.0
        )
    return sizes


# --------------------------------------------------------------------------- load


RESULT_MARKERS = (
    (b'"result":"accepted"', "accepted"),
    (b'"result":"rejected"', "rejected"),
    (b'"result":"replayed"', "replayed"),
    (b'"result":"locked"', "locked"),
    (b'"result":"not_enrolled"', "not_enrolled"),
)


def classify(line: bytes) -> str:
    for marker, name in RESULT_MARKERS:
        if marker in line:
            return name
    if b'"ok":false' in line:
        start = line.find(b'"code":"')
        end = line.find(b'"', start + 8)
        return "error:" + line[start + 8 : end].decode(errors="replace") if start >= 0 else "error"
    return "other"


def verify_request(user: str, code: str, request_id: int = 1) -> bytes:
    """A verify as the hook sends it."""
    return p.encode_request(
        "verify", id=request_id, user=user, code=code, service="sshd", rhost="127.0.0.1"
    )


def closed_loop(
    socket_path: str | Sequence[str],
    requests: Iterator[bytes],
    clients: int,
    *,
    max_seconds: float,
) -> dict[str, Any]:
    """`clients` connections, each with one request in flight, sending the next as soon
    as the answer arrives, until `requests` runs out or `max_seconds` have passed.
    Given several sockets (daemons), connection i goes to socket i mod n.

    Returns latencies (seconds, send to whole answer), result counts and elapsed time.
    """
    paths = [socket_path] if isinstance(socket_path, str) else list(socket_path)
    selector = selectors.DefaultSelector()
    connections = []
    for index in range(clients):
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(paths[index % len(paths)])
        conn.setblocking(False)
        connections.append(conn)
    latencies: list[float] = []
    counts: dict[str, int] = {}
    sent_at: dict[int, float] = {}
    buffers: dict[int, bytearray] = {}
    perf = time.perf_counter
    start = perf()
    deadline = start + max_seconds
    in_flight = 0
    exhausted = False

    def send_next(conn: socket.socket) -> bool:
        nonlocal in_flight, exhausted
        if exhausted:
            return False
        try:
            message = next(requests)
        except StopIteration:
            exhausted = True
            return False
        sent_at[conn.fileno()] = perf()
        conn.sendall(message)
        in_flight += 1
        return True

    try:
        for conn in connections:
            buffers[conn.fileno()] = bytearray()
            selector.register(conn, selectors.EVENT_READ)
            send_next(conn)
        while in_flight:
            if perf() > deadline:
                exhausted = True
            for key, _ in selector.select(timeout=1.0):
                conn = key.fileobj
                assert isinstance(conn, socket.socket)
                fd = conn.fileno()
                chunk = conn.recv(65536)
                if not chunk:
                    raise ConnectionError("twofad closed a benchmark connection")
                buffer = buffers[fd]
                buffer += chunk
                end = buffer.find(b"\n")
                if end < 0:
                    continue
                now = perf()
                line = bytes(buffer[:end])
                del buffer[: end + 1]
                latencies.append(now - sent_at[fd])
                result = classify(line)
                counts[result] = counts.get(result, 0) + 1
                in_flight -= 1
                send_next(conn)
        elapsed = perf() - start
    finally:
        selector.close()
        for conn in connections:
            conn.close()
    return {"latencies": latencies, "counts": counts, "elapsed": elapsed}


# --------------------------------------------------------------------------- profiles


def py_spy() -> str | None:
    """py-spy, if bench/setup.sh could install it into the virtual environment."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def profile_daemon(pid: int, seconds: float, load: Any) -> dict[str, list[tuple[str, float]]]:
    """Sample twofad with py-spy while `load()` runs: the functions with the largest
    share of samples, by own time ("self") and with callees ("inclusive")."""
    spy = py_spy()
    if spy is None:
        return {}
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "profile.txt"
        command = [spy, "record", "--pid", str(pid), "--format", "raw", "--output", str(raw)]
        command += ["--rate", "250", "--duration", str(int(seconds)), "--nonblocking"]
        recorder = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)  # attached
        load()
        recorder.wait(seconds + 30)
        if not raw.exists():
            return {}
        own: dict[str, int] = {}
        inclusive: dict[str, int] = {}
        total = 0
        for line in raw.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack:
                continue
            count = int(count_text)
            total += count
            frames = [_frame_name(frame) for frame in stack.split(";")]
            own[frames[-1]] = own.get(frames[-1], 0) + count
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + count
    if not total:
        return {}

    def top(counts: dict[str, int], n: int) -> list[tuple[str, float]]:
        ranked = sorted(counts.items(), key=lambda item: -item[1])[:n]
        return [(name, round(100.0 * count / total, 1)) for name, count in ranked]

    return {"self": top(own, 15), "inclusive": top(inclusive, 40)}


def _frame_name(frame: str) -> str:
    """`function (path/file.py:line)` -> `function (file.py)`."""
    name, _, where = frame.strip().partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({path.rsplit('/', 1)[-1]})"


def print_profile(title: str, profile: dict[str, list[tuple[str, float]]]) -> None:
    if not profile:
        note("(no profile: py-spy is not installed; bench/setup.sh installs it)")
        return
    heading(title)
    wanted = [
        row
        for row in profile["inclusive"]
        if not row[0].startswith(
            ("<module>", "_run_", "run (", "Runner.", "BaseEventLoop.run", "main (")
        )
    ][:20]
    own = profile["self"]
    rows = []
    for index in range(max(len(wanted), len(own))):
        left = wanted[index] if index < len(wanted) else ("", float("nan"))
        right = own[index] if index < len(own) else ("", float("nan"))
        rows.append([left[0], left[1], right[0], right[1]])
    table(["function (with callees)", "% samples", "function (own time)", "% samples"], rows)
