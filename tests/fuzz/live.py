"""A real twofad on a temporary socket, and client processes sending it generated requests.

The daemon is started as the tests start it (support.daemon: its own socket, state
directory and key).  Each client process opens a few connections and, on each, sends
batches: a few requests in one write (split into random fragments), ended now and
then by a line the protocol refuses; or a line over the size limit; or half a line
and then end of file; or a request and an abrupt close.  Run as root, one client runs
as `nobody`, so the unprivileged paths (access refusals, per-uid limits) are driven too.

What a client expects it works out with the protocol module itself: a line that
decode_request refuses must get bad_request and a closed connection; any other must
get a reply carrying its id.  Every reply must decode, carry a known error code and
never `internal`, and come within a second.  At the end the daemon must still answer,
stop cleanly on SIGTERM, and have logged no internal error.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pam_twofa import protocol as p

from . import messages
from .runner import CRASH, HANG, HANG_SECONDS, INTERNAL, Finding, Result, shown

REPLY_TIMEOUT = 10.0  # no reply this long: a hang, and the connection is given up
BATCH_MAX = 8
LIVE_BENT = 0.15  # of the requests in a batch; the rest are valid-shaped
TESTS_DIR = Path(__file__).resolve().parents[1]
POLICY = """\
default: optional
rules:
  - name: admins
    groups: [sudo]
    action: required
  - name: office
    from: [10.0.0.0/8, local]
    action: exempt
  - name: remote root
    users: [root]
    not_from: [127.0.0.0/8]
    action: required
lockout: {after: 5, first: 30s, max: 1h, hard_after: 100}
"""


class _Connection:
    """One client connection and what it has seen."""

    def __init__(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            try:
                self.sock.connect(path)
                break
            except BlockingIOError:  # the listen backlog is full for a moment
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        self.lines = p.LineBuffer(p.MAX_MESSAGE_BYTES + 1024)
        self.received: list[bytes] = []

    def send(self, rng: random.Random, data: bytes) -> None:
        while data:
            size = rng.choice((1, 7, 64, 4096, len(data), len(data)))
            self.sock.sendall(data[:size])
            data = data[size:]

    def read_line(self) -> bytes | None:
        """The next reply line, or None at end of file."""
        while not self.received:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.received.extend(self.lines.feed(chunk))
        return self.received.pop(0)

    def close(self) -> None:
        self.sock.close()


class Client:
    """Sends `count` requests over one connection at a time; records what goes wrong."""

    def __init__(self, path: str, seed: str, count: int, result: Result, lock: threading.Lock):
        self.path = path
        self.rng = random.Random(seed)
        self.seed = seed
        self.count = count
        self.result = result
        self.lock = lock
        self.sent = 0
        self.replies: Counter[str] = Counter()

    def finding(self, kind: str, summary: str, line: bytes = b"", detail: str = "") -> None:
        key = f"{kind}:{summary.split(':', 1)[0]}"
        where = f"client {self.seed}, request {self.sent}"
        with self.lock:
            self.result.add(Finding(kind, key, summary, where, detail, shown(line)))

    def run(self) -> None:
        while self.sent < self.count:
            try:
                connection = _Connection(self.path, REPLY_TIMEOUT)
            except OSError as exc:
                self.finding(INTERNAL, f"cannot connect: {exc}")
                return
            try:
                for _ in range(self.rng.randint(1, 30)):
                    if self.sent >= self.count or not self.exchange(connection):
                        break
            except OSError as exc:
                self.finding(CRASH, f"connection failed: {exc!r}")
            finally:
                connection.close()

    def exchange(self, connection: _Connection) -> bool:
        """One round on `connection`; False once the connection is done with."""
        roll = self.rng.random()
        if roll < 0.03:
            return self.refused(connection, messages.overlong_line(self.rng) + b"\n", "overlong")
        if roll < 0.06:
            partial = messages.request_line(self.rng)[: self.rng.randint(1, 60)].replace(b"\n", b"")
            return self.refused(connection, partial or b"{", "incomplete", shut=True)
        if roll < 0.08:
            connection.send(self.rng, messages.request_line(self.rng).replace(b"\n", b" ") + b"\n")
            self.sent += 1
            return False  # gone without reading: the daemon must cope
        return self.batch(connection)

    def refused(
        self, connection: _Connection, data: bytes, what: str, *, shut: bool = False
    ) -> bool:
        """Send something that must be refused with bad_request, then the connection closed."""
        connection.send(self.rng, data)
        if shut:
            connection.sock.shutdown(socket.SHUT_WR)
        self.sent += 1
        start = time.monotonic()
        if self.expect_reply(connection, data[:200], None, start, refused=True):
            self.expect_end(connection, data[:200])
        return False

    def batch(self, connection: _Connection) -> bool:
        lines: list[tuple[bytes, p.Request | None]] = []
        for _ in range(self.rng.randint(1, BATCH_MAX)):
            line = messages.request_line(self.rng, LIVE_BENT).replace(b"\n", b" ")
            if len(line) > p.MAX_MESSAGE_BYTES:
                continue  # sent on their own (see `refused`): the buffer drops the rest
            try:
                request: p.Request | None = p.decode_request(line)
            except p.ProtocolError:
                request = None
            lines.append((line, request))
            if request is None:
                break  # the daemon answers it and closes: nothing after it is read
        if not lines:
            return True
        connection.send(self.rng, b"".join(line + b"\n" for line, _ in lines))
        self.sent += len(lines)
        start = time.monotonic()
        for line, request in lines:
            if request is None:
                if self.expect_reply(connection, line, None, start, refused=True):
                    self.expect_end(connection, line)
                return False
            if not self.expect_reply(connection, line, request, start):
                return False
        return True

    def expect_reply(
        self,
        connection: _Connection,
        line: bytes,
        request: p.Request | None,
        start: float,
        *,
        refused: bool = False,
    ) -> bool:
        """Read one reply and judge it; False if the connection cannot go on."""
        try:
            raw = connection.read_line()
        except TimeoutError:
            self.finding(HANG, f"no reply within {REPLY_TIMEOUT:g} s", line)
            return False
        except p.ProtocolError:
            self.finding(INTERNAL, "a reply over the size limit", line)
            return False
        except ConnectionResetError:
            raw = None
        elapsed = time.monotonic() - start
        with self.lock:
            self.result.slowest = max(self.result.slowest, elapsed)
        if raw is None:
            self.finding(CRASH, "connection closed without a reply", line)
            return False
        if elapsed > HANG_SECONDS:
            self.finding(HANG, f"reply after {elapsed:.2f} s", line)
        try:
            reply = p.decode_response(raw)
        except p.ProtocolError as exc:
            self.finding(INTERNAL, f"an undecodable reply: {exc.message}", line, shown(raw))
            return False
        self.replies[reply.code or "ok"] += 1
        if reply.code == p.INTERNAL:
            self.finding(INTERNAL, f"internal error: {reply.message}", line)
        elif reply.code is not None and reply.code not in p.ERROR_CODES:
            self.finding(CRASH, f"unknown error code: {reply.code}", line)
        if reply.code == p.BUSY:
            return False  # refused at the door (connection cap): not a wrong answer
        if refused:
            if reply.code != p.BAD_REQUEST:
                self.finding(CRASH, f"a refused line got: {reply.code or 'ok'}", line)
            return reply.code == p.BAD_REQUEST
        assert request is not None
        if reply.id != request.id:
            self.finding(CRASH, f"reply for id {reply.id}, expected {request.id}", line)
            return False
        return True

    def expect_end(self, connection: _Connection, line: bytes) -> None:
        try:
            more = connection.read_line()
        except (TimeoutError, ConnectionResetError, p.ProtocolError):
            more = None
        if more is not None:
            self.finding(CRASH, "the connection stayed open after a refused line", line)


def client_main(path: str, seed: int, count: int, connections: int) -> dict[str, Any]:
    """One client process: `connections` threads sharing `count` requests."""
    result = Result("live")
    lock = threading.Lock()
    shares = [count // connections + (i < count % connections) for i in range(connections)]
    clients = [Client(path, f"{seed}:{i}", n, result, lock) for i, n in enumerate(shares)]
    threads = [threading.Thread(target=client.run) for client in clients]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    replies: Counter[str] = Counter()
    for client in clients:
        replies.update(client.replies)
    return {
        "requests": sum(client.sent for client in clients),
        "seconds": time.perf_counter() - start,
        "slowest": result.slowest,
        "counts": dict(result.counts),
        "findings": [asdict(f) for f in result.findings],
        "replies": dict(replies),
    }


# --- the daemon and the client processes --------------------------------------------


def _unprivileged() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        return None


def run_live(count: int, seed: int, *, processes: int = 3, connections: int = 4) -> Result:
    """`count` requests from `processes` client processes against a fresh twofad."""
    sys.path.insert(0, str(TESTS_DIR))
    from support.daemon import Daemon

    result = Result("live daemon: requests")
    root = Path(tempfile.mkdtemp(prefix="twofa-fuzz-", dir="/tmp"))
    root.chmod(0o755)  # `nobody` must reach the socket
    try:
        policy = root / "policy.yaml"
        policy.write_text(POLICY)
        policy.chmod(0o644)
        daemon = Daemon(root, "--policy", str(policy)).start()
        try:
            _run_clients(daemon.socket, count, seed, processes, connections, result)
        finally:
            _check_daemon(daemon, result)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return result


def _run_clients(
    path: str, count: int, seed: int, processes: int, connections: int, result: Result
) -> None:
    nobody = _unprivileged()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
    }
    shares = [count // processes + (i < count % processes) for i in range(processes)]
    started = []
    start = time.perf_counter()
    for index, share in enumerate(shares):
        as_nobody = nobody is not None and index == processes - 1
        command = [sys.executable, "-m", "fuzz.live", "--socket", path, "--seed", f"{seed}{index}"]
        command += ["--count", str(share), "--connections", str(connections)]
        proc = subprocess.Popen(
            command,
            env=env,
            cwd="/",
            stdout=subprocess.PIPE,
            user=nobody.pw_uid if as_nobody and nobody else None,
            group=nobody.pw_gid if as_nobody and nobody else None,
            extra_groups=[] if as_nobody else None,
        )
        started.append((proc, "nobody" if as_nobody else pwd.getpwuid(os.geteuid()).pw_name))
    for proc, who in started:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            result.add(
                Finding(
                    CRASH, "crash:client", f"the client as {who} exited with {proc.returncode}", who
                )
            )
            continue
        report = json.loads(out)
        result.inputs += report["requests"]
        result.slowest = max(result.slowest, report["slowest"])
        result.counts.update(report["counts"])
        for finding in report["findings"]:
            result.findings.append(Finding(**finding))
        replies = ", ".join(f"{code} {n}" for code, n in sorted(report["replies"].items()))
        result.notes.append(f"as {who}: {report['requests']} requests; replies: {replies}")
    result.seconds = time.perf_counter() - start


def _check_daemon(daemon: Any, result: Result) -> None:
    """Alive, still answering, stops cleanly, and logged no internal error."""
    if not daemon.alive():
        result.add(Finding(INTERNAL, "internal:died", "twofad died", "", daemon.log_text()[-2000:]))
        return
    try:
        daemon.request("ping")
    except Exception as exc:
        result.add(Finding(INTERNAL, "internal:ping", f"twofad no longer answers: {exc}", ""))
    status = daemon.stop()
    if status != 0:
        result.add(
            Finding(INTERNAL, "internal:exit", f"twofad exited with {status} on SIGTERM", "")
        )
    log = daemon.log_text()
    errors = [line for line in log.splitlines() if "internal error" in line]
    if errors:
        at = log.index(errors[0])
        result.add(
            Finding(
                INTERNAL,
                "internal:logged",
                f"{len(errors)} internal errors in the log",
                "",
                log[at : at + 2000],
            )
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one fuzzing client of a live twofad")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args(argv)
    report = client_main(args.socket, args.seed, args.count, args.connections)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
