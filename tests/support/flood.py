"""A local user flooding twofad with what their own uid may send, from processes of their own.

Any account on the host may open connections to the daemon and ask about itself: set up
its own two-step verification (a QR code is rendered for every set-up), its status, what
the policy says about it, what a login would do. This file is both halves of such an
attack:

- run as a script (by the unprivileged user; the standard library only, so it needs
  nothing the user cannot read) it floods: ``pipeline`` keeps `connections` connections
  open, each with `depth` requests in flight, sending the next line as each answer
  arrives and reconnecting when the daemon closes on it (a garbage line, a refusal);
  ``churn`` opens and closes connections in a tight loop. It stops when its standard
  input reaches end-of-file and prints one JSON line of what it saw;
- imported (by root, in a test or a benchmark) it starts those processes as the user,
  with the lines to send, and collects their figures.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

GARBAGE = b"{this is not json\n"


# --------------------------------------------------------------------------- root's side


def mixed_lines(user: str, *, garbage_every: int = 32) -> list[str]:
    """The flood's requests, in the order they cycle: set-ups of the user's own account
    (the costly kind: a QR code each) for half of them, its cheap reads between them,
    and now and then a line the daemon must refuse (and close the connection over)."""
    from pam_twofa import protocol as p  # root's side only: the script needs none of it

    where = {"service": "sshd", "rhost": "127.0.0.1"}
    begin = p.encode_request("enroll.begin", id=1, user=user)
    cycle = [
        begin,
        p.encode_request("status", id=2, user=user),
        begin,
        p.encode_request("policy.explain", id=3, user=user, **where),
        begin,
        p.encode_request("check", id=4, user=user, **where),
    ]
    lines = [cycle[index % len(cycle)] for index in range(garbage_every - 1)] + [GARBAGE]
    return [line.decode() for line in lines]


def setup_lines(user: str) -> list[str]:
    """Nothing but set-ups of the user's own account: the costliest flood there is."""
    from pam_twofa import protocol as p

    return [p.encode_request("enroll.begin", id=1, user=user).decode()]


@dataclass
class Flooder:
    """One flooding process, running as `uid`; stopped by the PID it was started with."""

    uid: int
    gid: int
    home: str
    config: dict[str, Any]
    proc: subprocess.Popen[bytes] | None = None
    figures: dict[str, Any] = field(default_factory=dict)

    def start(self) -> Flooder:
        self.proc = subprocess.Popen(
            [sys.executable, "-I", __file__, json.dumps(self.config)],
            user=self.uid,
            group=self.gid,
            extra_groups=[],
            env={"PATH": "/usr/bin:/bin", "HOME": self.home, "LANG": "C.UTF-8"},
            cwd=self.home,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        return self

    def stop(self, timeout: float = 30.0) -> dict[str, Any]:
        """End of input tells it to stop; its figures, or why there are none."""
        assert self.proc is not None
        try:
            out, err = self.proc.communicate(timeout=timeout)  # closes its standard input
        except subprocess.TimeoutExpired:
            self.proc.kill()  # our own child, by its PID
            out, err = self.proc.communicate(timeout=10)
        lines = out.decode(errors="replace").strip().splitlines()
        if self.proc.returncode != 0 or not lines:
            raise RuntimeError(
                f"flooder exited {self.proc.returncode}: {err.decode(errors='replace')[-2000:]}"
            )
        self.figures = json.loads(lines[-1])
        return self.figures

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def pipeline(
    socket_path: str, lines: list[str], connections: int, depth: int, max_seconds: float = 300
) -> dict[str, Any]:
    return {
        "mode": "pipeline",
        "socket": socket_path,
        "lines": lines,
        "connections": connections,
        "depth": depth,
        "max_seconds": max_seconds,
    }


def churn(socket_path: str, max_seconds: float = 300) -> dict[str, Any]:
    return {"mode": "churn", "socket": socket_path, "max_seconds": max_seconds}


@contextmanager
def flooding(
    uid: int, gid: int, home: str, configs: list[dict[str, Any]]
) -> Iterator[list[Flooder]]:
    """The flooders running as the user for the block; each one's figures in .figures
    afterwards (stopped in any case, killed if it will not stop)."""
    flooders = [Flooder(uid, gid, home, config) for config in configs]
    with ExitStack() as stack:
        for flooder in flooders:
            stack.callback(flooder.kill)
            flooder.start()
        yield flooders
        for flooder in flooders:
            flooder.stop()


def total(flooders: list[Flooder]) -> dict[str, int]:
    """The flooders' figures added up."""
    summed: dict[str, int] = {}
    for flooder in flooders:
        for key, value in flooder.figures.items():
            if key == "uid":
                continue
            if isinstance(value, int):
                summed[key] = summed.get(key, 0) + value
            elif isinstance(value, dict):
                for inner, count in value.items():
                    summed[f"{key}.{inner}"] = summed.get(f"{key}.{inner}", 0) + count
    return summed


# --------------------------------------------------------------------------- the user's side


class _Slot:
    """One of the flood's connections: its socket, what came back, what is in flight."""

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.received = b""
        self.in_flight = 0


def _answer_kind(line: bytes) -> str:
    if b'"ok":true' in line:
        return "ok"
    start = line.find(b'"code":"')
    if start < 0:
        return "other"
    end = line.find(b'"', start + 8)
    return line[start + 8 : end].decode(errors="replace")


def _run_pipeline(config: dict[str, Any], stop_at: float) -> dict[str, Any]:
    lines = [line.encode() for line in config["lines"]]
    depth = int(config["depth"])
    figures: dict[str, Any] = {
        "sent": 0,
        "answered": 0,
        "connects": 0,
        "connect_errors": 0,
        "closed_by_daemon": 0,
        "lost": 0,
        "answers": {},
    }
    answers: dict[str, int] = figures["answers"]
    selector = selectors.DefaultSelector()
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ, None)
    slots = [_Slot() for _ in range(int(config["connections"]))]
    position = 0

    def send(slot: _Slot, count: int) -> None:
        nonlocal position
        assert slot.sock is not None
        chunk = []
        for _ in range(count):
            chunk.append(lines[position % len(lines)])
            position += 1
        try:
            slot.sock.sendall(b"".join(chunk))
        except OSError:  # the daemon is closing on us; the read side will tell
            return
        slot.in_flight += count
        figures["sent"] += count

    def connect(slot: _Slot) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(2.0)
        try:
            sock.connect(config["socket"])
        except OSError:
            figures["connect_errors"] += 1
            sock.close()
            return
        figures["connects"] += 1
        slot.sock, slot.received, slot.in_flight = sock, b"", 0
        selector.register(sock, selectors.EVENT_READ, slot)
        send(slot, depth)

    def drop(slot: _Slot) -> None:
        assert slot.sock is not None
        selector.unregister(slot.sock)
        slot.sock.close()
        slot.sock = None
        figures["closed_by_daemon"] += 1
        figures["lost"] += slot.in_flight

    stopping = False
    while not stopping and time.monotonic() < stop_at:
        for slot in slots:
            if slot.sock is None:
                connect(slot)
        for key, _ in selector.select(timeout=0.05):
            if key.data is None:  # standard input: end-of-file says stop
                if not os.read(sys.stdin.fileno(), 4096):
                    stopping = True
                continue
            slot = key.data
            assert isinstance(slot, _Slot) and slot.sock is not None
            try:
                data = slot.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                drop(slot)
                continue
            slot.received += data
            *whole, slot.received = slot.received.split(b"\n")
            for line in whole:
                kind = _answer_kind(line)
                answers[kind] = answers.get(kind, 0) + 1
                figures["answered"] += 1
                slot.in_flight -= 1
            if whole:
                send(slot, len(whole))
    for slot in slots:
        if slot.sock is not None:
            slot.sock.close()
    return figures


def _run_churn(config: dict[str, Any], stop_at: float) -> dict[str, Any]:
    figures = {"connects": 0, "connect_errors": 0}
    stdin = selectors.DefaultSelector()
    stdin.register(sys.stdin.fileno(), selectors.EVENT_READ)
    rounds = 0
    while time.monotonic() < stop_at:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(2.0)
        try:
            sock.connect(config["socket"])
            figures["connects"] += 1
        except OSError:
            figures["connect_errors"] += 1
        finally:
            sock.close()
        rounds += 1
        if rounds % 50 == 0 and stdin.select(timeout=0) and not os.read(sys.stdin.fileno(), 1):
            break
    stdin.close()
    return figures


def main() -> int:
    config = json.loads(sys.argv[1])
    started = time.monotonic()
    stop_at = started + float(config.get("max_seconds", 300))
    if config["mode"] == "pipeline":
        figures = _run_pipeline(config, stop_at)
    else:
        figures = _run_churn(config, stop_at)
    figures["seconds"] = round(time.monotonic() - started, 3)
    figures["uid"] = os.getuid()
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
