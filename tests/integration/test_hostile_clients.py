"""Clients that misbehave on purpose, against a live twofad on a real socket.

Every case ends the same way: the offender gets a bad_request error (or just a closed
connection, for one that is too slow), and the daemon is still alive and answers others.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pam_twofa import protocol as p
from support.daemon import Daemon
from support.oath import oathtool

pytestmark = pytest.mark.integration

PERIOD = 30
PING_REPLY = {"pong": True, "protocol": p.PROTOCOL_VERSION}


# --- helpers -----------------------------------------------------------------------------


def connect(daemon: Daemon, timeout: float = 5.0) -> socket.socket:
    """A raw connection; a full listen backlog (EAGAIN on a Unix socket) is waited out."""
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(daemon.socket)
            return sock
        except BlockingIOError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextlib.contextmanager
def connection(daemon: Daemon, timeout: float = 5.0) -> Iterator[socket.socket]:
    sock = connect(daemon, timeout)
    try:
        yield sock
    finally:
        sock.close()


def read_to_end(sock: socket.socket) -> tuple[bytes, str]:
    """Everything the daemon sends until it closes: the bytes, and "eof" or "reset".

    When the daemon closes with our data still unread, Linux reports the close as a
    reset, after the bytes already queued for us.  A timeout fails the test: the daemon
    was supposed to close.
    """
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received, "reset"
        if not chunk:
            return received, "eof"
        received += chunk


def replies(data: bytes) -> list[dict[str, Any]]:
    assert data.endswith(b"\n"), f"reply not newline-terminated: {data[-200:]!r}"
    return [json.loads(line) for line in data.split(b"\n")[:-1]]


def assert_bad_request(answer: dict[str, Any], fragment: str = "") -> None:
    """A bad_request error (whose message contains `fragment`), and nothing else."""
    assert answer["v"] == p.PROTOCOL_VERSION
    assert answer["ok"] is False
    assert answer["error"]["code"] == p.BAD_REQUEST, answer
    assert fragment in answer["error"]["message"], answer
    assert "data" not in answer


def assert_single_bad_request(data: bytes, fragment: str = "") -> None:
    """Exactly one reply, a bad_request error."""
    answers = replies(data)
    assert len(answers) == 1, answers
    assert_bad_request(answers[0], fragment)


def send_and_expect_bad_request(daemon: Daemon, payload: bytes, fragment: str = "") -> None:
    with connection(daemon) as sock:
        sock.sendall(payload)
        data, _how = read_to_end(sock)
    assert_single_bad_request(data, fragment)


def assert_healthy(daemon: Daemon) -> None:
    assert daemon.alive(), daemon.log_text()
    assert daemon.request("ping") == PING_REPLY


def is_open(sock: socket.socket) -> bool:
    """True while the daemon has neither closed the connection nor sent anything on it."""
    timeout = sock.gettimeout()
    sock.settimeout(0.0)  # with a timeout set, Python would wait for data before peeking
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except ConnectionResetError:
        return False
    finally:
        sock.settimeout(timeout)


def wait_closed(sock: socket.socket, within: float) -> float | None:
    """Seconds until the daemon closed `sock` (reading whatever it sent), or None."""
    start = time.monotonic()
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - start


def enroll_root(daemon: Daemon) -> tuple[str, int]:
    """Enroll and confirm root; returns the secret and the step the confirmation used."""
    secret = str(daemon.request("enroll.begin", user="root")["secret"])
    step = _fresh_step()
    confirmed = daemon.request("enroll.confirm", user="root", code=oathtool(secret, step * PERIOD))
    assert confirmed["state"] == "active"
    assert len(confirmed["recovery_codes"]) == 8
    return secret, step


def _fresh_step(min_left: float = 3.0) -> int:
    """The current time step, after waiting for the next one if this one is nearly over."""
    left = PERIOD - time.time() % PERIOD
    if left < min_left:
        time.sleep(left + 0.05)
    return int(time.time() // PERIOD)


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One daemon for the cases that change no state: starting one per case costs ~0.5 s."""
    instance = Daemon(tmp_path_factory.mktemp("hostile")).start()
    yield instance
    if instance.alive():
        instance.stop()


def enrollment_of(status: dict[str, Any]) -> str:
    """none, pending or active; `enrollment` since the policy came, `state` before."""
    return str(status.get("enrollment", status.get("state")))


# --- garbage on the wire -----------------------------------------------------------------


def test_random_bytes_get_bad_request_and_close(shared_daemon: Daemon) -> None:
    rng = random.Random(20240611)
    for _ in range(25):
        payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096)))
        # Random bytes with newlines in them: the first line is garbage, the rest unread.
        with connection(shared_daemon) as sock:
            sock.sendall(payload + b"\n")
            data, _how = read_to_end(sock)
        assert_single_bad_request(data)
    assert_healthy(shared_daemon)


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff\n",
        b'{"v":1,"op":"ping","x":"\xc3\x28"}\n',  # a broken two-byte sequence
        b'{"v":1,"op":"status","user":"\xc0\xafroot"}\n',  # an overlong '/'
        b'{"v":1,"op":"status","user":"\xed\xa0\x80"}\n',  # a surrogate in UTF-8 dress
        b'{"v":1,"op":"ping"}\xfe\n',
    ],
)
def test_invalid_utf8_gets_bad_request_and_close(shared_daemon: Daemon, payload: bytes) -> None:
    send_and_expect_bad_request(shared_daemon, payload, "UTF-8")
    assert_healthy(shared_daemon)


def test_ten_mebibyte_line_is_refused_without_reading_it_all(shared_daemon: Daemon) -> None:
    """The daemon answers once the line passes 64 KiB and closes; it never takes 10 MiB."""
    total = 10 * 2**20
    chunk = b'{"v":1,"op":"ping","pad":"' + b"a" * 65_000
    sent = 0
    broken: type[OSError] | None = None
    with connection(shared_daemon, timeout=10.0) as sock:
        try:
            while sent < total:
                sent += sock.send(chunk[: total - sent])
        except (BrokenPipeError, ConnectionResetError) as exc:
            broken = type(exc)
        data, _how = read_to_end(sock)
    assert broken is not None, "the daemon read all 10 MiB without closing the connection"
    # What got through is bounded by the daemon's limit plus kernel socket buffers.
    assert sent < 2 * 2**20, f"{sent} bytes were accepted before the daemon closed"
    assert_single_bad_request(data, f"exceeds {p.MAX_MESSAGE_BYTES} bytes")
    assert_healthy(shared_daemon)


def test_line_just_over_the_limit_is_refused_and_one_at_it_is_parsed(shared_daemon: Daemon) -> None:
    head = b'{"v":1,"op":"ping","id":1'
    at_limit = head + b" " * (p.MAX_MESSAGE_BYTES - len(head) - 1) + b"}"
    assert len(at_limit) == p.MAX_MESSAGE_BYTES
    with connection(shared_daemon) as sock:
        sock.sendall(at_limit + b"\n")
        sock.shutdown(socket.SHUT_WR)
        data, _how = read_to_end(sock)
    assert replies(data) == [{"v": 1, "ok": True, "id": 1, "data": PING_REPLY}]
    send_and_expect_bad_request(shared_daemon, at_limit + b" \n", "exceeds")
    assert_healthy(shared_daemon)


BAD_JSON_REQUESTS = {
    # not an object, or no JSON at all
    "array": (b"[1, 2, 3]", "JSON object"),
    "string": (b'"ping"', "JSON object"),
    "number": (b"1", "JSON object"),
    "null": (b"null", "JSON object"),
    "empty line": (b"", "JSON"),
    "two objects": (b'{"v":1,"op":"ping"} {"v":1,"op":"ping"}', "JSON"),
    "deep nesting": (b"[" * 30_000 + b"]" * 30_000, "JSON"),
    # non-JSON numbers
    "NaN": (b'{"v":1,"op":"ping","id":NaN}', "JSON"),
    "Infinity": (b'{"v":1,"op":"status","user":Infinity}', "JSON"),
    "-Infinity": (b'{"v":1,"op":"ping","x":-Infinity}', "JSON"),
    "huge integer": (b'{"v":1,"op":"ping","id":' + b"7" * 5000 + b"}", "JSON"),
    # duplicate keys: which one counts must never be guessed
    "duplicate op": (b'{"v":1,"op":"ping","op":"list"}', "JSON"),
    "duplicate user": (
        b'{"v":1,"op":"verify","user":"nobody","code":"123456","user":"root"}',
        "JSON",
    ),
    # version
    "no version": (b'{"op":"ping"}', "version"),
    "version 2": (b'{"v":2,"op":"ping"}', "version"),
    "version string": (b'{"v":"1","op":"ping"}', "version"),
    # operation
    "no op": (b'{"v":1}', "op must be a string"),
    "op null": (b'{"v":1,"op":null}', "op must be a string"),
    "op number": (b'{"v":1,"op":7}', "op must be a string"),
    "op list": (b'{"v":1,"op":["ping"]}', "op must be a string"),
    "unknown op": (b'{"v":1,"op":"shutdown"}', "unknown operation"),
    "op with different case": (b'{"v":1,"op":"PING"}', "unknown operation"),
    # fields
    "unknown field": (b'{"v":1,"op":"ping","user":"root"}', "unknown field"),
    "unknown field on verify": (
        b'{"v":1,"op":"verify","user":"root","code":"123456","secret":"x"}',
        "unknown field",
    ),
    "missing user": (b'{"v":1,"op":"status"}', "required"),
    "missing code": (b'{"v":1,"op":"verify","user":"root"}', "required"),
    "user number": (b'{"v":1,"op":"status","user":0}', "user must be a string"),
    "user object": (b'{"v":1,"op":"status","user":{"name":"root"}}', "user must be a string"),
    "user bool": (b'{"v":1,"op":"status","user":true}', "user must be a string"),
    "user path": (b'{"v":1,"op":"status","user":"../root"}', "not a valid user name"),
    "user option": (b'{"v":1,"op":"status","user":"-root"}', "not a valid user name"),
    "user empty": (b'{"v":1,"op":"status","user":""}', "user must be"),
    "user NUL": (b'{"v":1,"op":"status","user":"ro\\u0000ot"}', "not a valid user name"),
    "code number": (b'{"v":1,"op":"verify","user":"root","code":123456}', "code must be"),
    "code control": (
        b'{"v":1,"op":"verify","user":"root","code":"123\\n456"}',
        "control characters",
    ),
    "code too long": (
        b'{"v":1,"op":"verify","user":"root","code":"' + b"1" * 129 + b'"}',
        "code must be",
    ),
    "service list": (
        b'{"v":1,"op":"check","user":"root","service":["sshd"]}',
        "service must be a string",
    ),
    "rhost number": (b'{"v":1,"op":"check","user":"root","rhost":127001}', "rhost must be"),
    # id
    "id negative": (b'{"v":1,"op":"ping","id":-1}', "id must be"),
    "id float": (b'{"v":1,"op":"ping","id":1.5}', "id must be"),
    "id integral float": (b'{"v":1,"op":"ping","id":1.0}', "id must be"),
    "id string": (b'{"v":1,"op":"ping","id":"1"}', "id must be"),
    "id bool": (b'{"v":1,"op":"ping","id":true}', "id must be"),
    "id too large": (b'{"v":1,"op":"ping","id":9007199254740992}', "id must be"),
}


JSON_SYNTAX_ERRORS = {
    "unfinished object": b'{"v":1,"op":"ping"',
    "missing comma": b'{"v":1 "op":"ping"}',
    "unquoted key": b'{v:1,"op":"ping"}',
    "trailing comma": b'{"v":1,"op":"ping",}',
    "unterminated string": b'{"v":1,"op":"pi',
    "lone brace": b"{",
}
BAD_REQUEST_CASES = [
    pytest.param(line, fragment, id=name) for name, (line, fragment) in BAD_JSON_REQUESTS.items()
] + [pytest.param(line, "JSON", id=name) for name, line in JSON_SYNTAX_ERRORS.items()]


@pytest.mark.parametrize(("line", "fragment"), BAD_REQUEST_CASES)
def test_well_formed_but_invalid_requests_get_bad_request_and_close(
    shared_daemon: Daemon, line: bytes, fragment: str
) -> None:
    # After the bad line comes a valid one: it must not be answered, the stream is dropped.
    with connection(shared_daemon) as sock:
        sock.sendall(line + b'\n{"v":1,"op":"ping","id":2}\n')
        data, _how = read_to_end(sock)
    assert_single_bad_request(data, fragment)
    assert_healthy(shared_daemon)


def test_a_refused_request_changes_nothing(daemon: Daemon) -> None:
    """A valid-looking verify with a duplicate user key must not reach the service."""
    secret, step = enroll_root(daemon)
    before = daemon.request("status", user="root")
    code = oathtool(secret, (step + 1) * PERIOD).encode()
    send_and_expect_bad_request(
        daemon, b'{"v":1,"op":"verify","user":"root","code":"' + code + b'","user":"root"}\n'
    )
    send_and_expect_bad_request(
        daemon, b'{"v":1,"op":"verify","user":"root","code":"' + code + b'","x":1}\n'
    )
    assert daemon.request("status", user="root") == before
    # The code was not spent by the refused requests.
    assert daemon.request("verify", user="root", code=code.decode())["result"] == "accepted"


# --- crowds, half-closed, slow and greedy clients ---------------------------------------


def test_five_hundred_idle_connections_do_not_keep_a_login_out(daemon: Daemon) -> None:
    idle = []
    try:
        for _ in range(500):
            idle.append(connect(daemon))
        # Let the daemon accept every one of them before the real client comes.
        with connection(daemon) as sock:
            sock.sendall(b'{"v":1,"op":"ping","id":9}\n')
            assert replies(sock.recv(4096))[0]["data"] == PING_REPLY

        # Each request on its own connection (5 s timeout), as separate logins would.
        secret = str(daemon.request("enroll.begin", user="root")["secret"])
        step = _fresh_step()
        confirmed = daemon.request(
            "enroll.confirm", user="root", code=oathtool(secret, step * PERIOD)
        )
        assert confirmed["state"] == "active"
        verified = daemon.request("verify", user="root", code=oathtool(secret, (step + 1) * PERIOD))
        assert verified == {
            "user": "root",
            "result": "accepted",
            "method": "totp",
            "device": "phone",
        }
        assert_healthy(daemon)
        # Below the cap of 512 nobody was evicted.
        assert sum(is_open(sock) for sock in idle) == 500
    finally:
        for sock in idle:
            sock.close()
    assert_healthy(daemon)


def test_at_the_connection_cap_the_longest_idle_connection_makes_room(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path, "--max-connections", "20").start()
    held = []
    try:
        for index in range(20):
            sock = connect(daemon)
            sock.sendall(b'{"v":1,"op":"ping","id":%d}\n' % index)
            assert replies(sock.recv(4096))[0]["id"] == index
            held.append(sock)
            time.sleep(0.002)  # distinct last-activity times: held[0] is the oldest
        # A new client still gets in, and the oldest idle connection paid for it.
        assert daemon.request("ping") == PING_REPLY
        assert wait_closed(held[0], within=5.0) is not None
        assert all(is_open(sock) for sock in held[1:])
        assert_healthy(daemon)
    finally:
        for sock in held:
            sock.close()
        daemon.stop()


def test_request_then_half_close_still_gets_every_reply(shared_daemon: Daemon) -> None:
    with connection(shared_daemon) as sock:
        sock.sendall(
            b'{"v":1,"op":"ping","id":1}\n'
            b'{"v":1,"op":"status","user":"root","id":2}\n'
            b'{"v":1,"op":"status","user":"no-such-user-x","id":3}\n'
        )
        sock.shutdown(socket.SHUT_WR)
        data, how = read_to_end(sock)
    assert how == "eof"
    first, second, third = replies(data)
    assert first == {"v": 1, "ok": True, "id": 1, "data": PING_REPLY}
    assert second["id"] == 2 and second["ok"] is True
    assert enrollment_of(second["data"]) == "none"
    assert third["id"] == 3 and third["error"]["code"] == p.UNKNOWN_USER
    assert_healthy(shared_daemon)


@pytest.mark.parametrize(
    "partial",
    [b'{"v":1,"op":"ping"', b'{"v":1,"op":"ping"}', b'{"v":1,"op":"ping","id":1}\n{"v":1'],
    ids=["unfinished json", "no newline", "second line unfinished"],
)
def test_partial_line_then_half_close_gets_an_error(shared_daemon: Daemon, partial: bytes) -> None:
    with connection(shared_daemon) as sock:
        sock.sendall(partial)
        sock.shutdown(socket.SHUT_WR)
        data, how = read_to_end(sock)
    assert how == "eof"
    answers = replies(data)
    if partial.count(b"\n"):
        assert answers[0] == {"v": 1, "ok": True, "id": 1, "data": PING_REPLY}
    assert len(answers) == 1 + partial.count(b"\n")
    assert_bad_request(answers[-1], "incomplete message")
    assert_healthy(shared_daemon)


def test_slow_client_is_closed(tmp_path: Path) -> None:
    """Bytes of one message, each after a pause longer than the timeout: closed mid-message."""
    daemon = Daemon(tmp_path, "--idle-timeout", "1").start()
    try:
        message = b'{"v":1,"op":"ping","id":1}\n'
        with connection(daemon) as sock:
            sock.sendall(message[:1])
            closed_after = None
            for index in range(1, len(message)):
                time.sleep(1.5)
                try:
                    sock.sendall(message[index : index + 1])
                except (BrokenPipeError, ConnectionResetError):
                    closed_after = index
                    break
                if not is_open(sock):
                    closed_after = index
                    break
            assert closed_after is not None and closed_after < 3, closed_after
            data, _how = read_to_end(sock)
        # The message was never finished, so it was never answered; at most an error came.
        if data:
            assert_single_bad_request(data)
        assert_healthy(daemon)

        # A silent connection goes too, after the idle timeout and not much later.
        with connection(daemon) as sock:
            waited = wait_closed(sock, within=5.0)
        assert waited is not None and waited >= 0.9
        assert_healthy(daemon)
    finally:
        daemon.stop()


def test_message_dribbled_forever_is_cut_off_by_the_message_timeout(tmp_path: Path) -> None:
    """Limits.message_timeout (5 s) bounds a whole message, however steadily it drips."""
    daemon = Daemon(tmp_path, "--idle-timeout", "2").start()
    try:
        with connection(daemon) as sock:
            sock.sendall(b'{"v":1,"op":"ping","pad":"')
            started = time.monotonic()
            cut_off = False
            while time.monotonic() - started < 6.5:  # message_timeout 5 s, plus slack
                time.sleep(0.5)
                try:
                    sock.sendall(b"a")
                except (BrokenPipeError, ConnectionResetError):
                    cut_off = True
                    break
                if not is_open(sock):
                    cut_off = True
                    break
        assert_healthy(daemon)
        assert cut_off, "a message still unfinished after 6.5 s was not cut off"
    finally:
        daemon.stop()


def test_pipelined_requests_are_answered_in_order(shared_daemon: Daemon) -> None:
    count = 300
    with connection(shared_daemon) as sock:
        sock.sendall(b"".join(b'{"v":1,"op":"ping","id":%d}\n' % i for i in range(count)))
        sock.shutdown(socket.SHUT_WR)
        data, how = read_to_end(sock)
    assert how == "eof"
    assert [answer["id"] for answer in replies(data)] == list(range(count))
    assert_healthy(shared_daemon)


def test_a_flood_of_pipelined_requests_is_answered_whole_and_others_meanwhile(
    shared_daemon: Daemon,
) -> None:
    """Thousands of verifies written at once are all answered, in order, and a ping sent
    while they are being answered is answered before they are done.

    (Which of two connections goes first is decided inside one event-loop turn; the
    unit tests of `connection` pin that down exactly.)"""
    count = 8000  # unknown users: each costs a decoy check, as a real one would
    flood = b"".join(
        p.encode_request("verify", id=i, user=f"nobody-{i}", code="123456") for i in range(count)
    )
    with connection(shared_daemon, timeout=30.0) as flooder, connection(shared_daemon) as honest:

        def send_all() -> None:
            flooder.sendall(flood)
            flooder.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send_all, daemon=True)
        sender.start()
        received = flooder.recv(65536)  # the flood is being answered
        honest.sendall(p.encode_request("ping", id=1))
        assert p.decode_response(honest.recv(65536).rstrip(b"\n")).ok
        rest, how = read_to_end(flooder)  # what was still to come when the ping was answered
        sender.join(10)
    answers = replies(received + rest)
    assert how == "eof" and [answer["id"] for answer in answers] == list(range(count))
    assert rest.count(b"\n") > 0, "the ping waited for the whole flood"
    assert_healthy(shared_daemon)


def flood_without_reading(daemon: Daemon, count: int = 40_000) -> tuple[socket.socket, dict]:
    """A client sending `count` pings (about 30 bytes each) and reading nothing back.

    The sending happens in a thread, which blocks once the daemon stops reading; the
    returned dict gets "error" (None, or the exception that ended sendall) at its end.
    """
    flood = b"".join(b'{"v":1,"op":"ping","id":%d}\n' % i for i in range(1, count + 1))
    sock = connect(daemon, timeout=30.0)
    outcome: dict[str, Any] = {"thread": None}

    def send_everything() -> None:
        try:
            sock.sendall(flood)
            outcome["error"] = None
        except OSError as exc:
            outcome["error"] = exc

    outcome["thread"] = threading.Thread(target=send_everything, daemon=True)
    outcome["thread"].start()
    return sock, outcome


def test_client_that_never_reads_its_replies_is_throttled_not_buffered(daemon: Daemon) -> None:
    """Replies pile up, the daemon stops reading from that client, and serves the others."""
    count = 40_000  # 1.2 MB of requests and 2 MB of replies: far beyond socket buffers
    sock, outcome = flood_without_reading(daemon, count)
    try:
        time.sleep(0.5)
        assert outcome["thread"].is_alive(), "the daemon took the whole flood, unthrottled"
        for _ in range(5):
            assert_healthy(daemon)
        # Now read: what arrives is the right answers, in order, with none lost.
        sock.settimeout(10.0)
        received = b""
        lines = 0
        while lines < count:
            chunk = sock.recv(1 << 20)
            assert chunk, f"the daemon closed the connection after {lines} replies"
            received += chunk
            lines += chunk.count(b"\n")
        outcome["thread"].join(timeout=10.0)
        assert outcome["error"] is None
    finally:
        sock.close()
    answers = replies(received)
    assert [answer["id"] for answer in answers] == list(range(1, count + 1))
    assert all(answer["data"] == PING_REPLY for answer in answers)
    assert_healthy(daemon)


def test_client_that_never_reads_its_replies_is_dropped(daemon: Daemon) -> None:
    """Limits.write_timeout (5 s): a reply nobody reads ends the connection."""
    sock, outcome = flood_without_reading(daemon)
    try:
        outcome["thread"].join(timeout=7.0)  # write_timeout 5 s, plus slack
        assert_healthy(daemon)
        assert not outcome["thread"].is_alive(), "the connection is still open after 7 s"
        assert isinstance(outcome["error"], BrokenPipeError | ConnectionResetError)
    finally:
        sock.close()
