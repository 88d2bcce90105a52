"""The server's framing and dispatch, driven through an in-memory socket pair.

A socketpair is a real Unix socket, so SO_PEERCRED answers as it would on the daemon's
listening socket, but no file, no process and no event loop of a daemon are involved.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
from pathlib import Path

import pytest

from pam_twofa import protocol as p
from support.exchange import exchange
from support.fakes import Accounts, Clock
from twofad import totp
from twofad.access import Peer
from twofad.audit import Audit
from twofad.audit_trail import AUDIT_BURST
from twofad.connections import Limits, peer_credentials
from twofad.policy_file import parse
from twofad.server import COSTLY_BURST, COSTLY_INTERVAL, Server
from twofad.service import Service


@pytest.fixture
def audit_log() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def server(service: Service, audit_log: io.StringIO) -> Server:
    return Server(service, Audit(stream=audit_log))


def test_peer_credentials_are_the_kernels(server: Server) -> None:
    a, b = socket.socketpair()
    with a, b:
        peer = peer_credentials(a)
    assert (peer.pid, peer.uid, peer.gid) == (os.getpid(), os.getuid(), os.getgid())


def test_several_requests_on_one_connection(server: Server) -> None:
    replies = exchange(
        server,
        p.encode_request("ping", id=1) + p.encode_request("status", id=2, user="bob"),
    )
    assert [r.id for r in replies] == [1, 2]
    assert replies[0].data["pong"] is True
    assert replies[1].data["enrollment"] == "none" and replies[1].data["state"] == "disabled"


def test_a_malformed_line_gets_an_error_and_the_connection_closes(server: Server) -> None:
    replies = exchange(server, b"not json\n" + p.encode_request("ping", id=2))
    assert len(replies) == 1 and replies[0].code == p.BAD_REQUEST


def test_an_oversized_line_is_refused_without_waiting_for_its_end(server: Server) -> None:
    replies = exchange(server, b"x" * (p.MAX_MESSAGE_BYTES + 10), shut=False)
    assert replies[0].code == p.BAD_REQUEST and "exceeds" in replies[0].message


def test_a_message_cut_short_is_refused(server: Server) -> None:
    replies = exchange(server, b'{"v":1,"op":"pi')
    assert replies[0].code == p.BAD_REQUEST and "incomplete" in replies[0].message


def test_service_errors_keep_the_connection(server: Server) -> None:
    replies = exchange(
        server,
        p.encode_request("status", id=1, user="mallory") + p.encode_request("ping", id=2),
    )
    assert replies[0].code == p.UNKNOWN_USER
    assert replies[1].ok


def test_audit_names_the_event_but_never_a_code(
    server: Server, service: Service, clock: Clock, audit_log: io.StringIO
) -> None:
    secret = service.enroll_begin("alice")["secret"]
    current = totp.code_at(secret, totp.TotpParams(), totp.time_step(clock.now, 30))
    replies = exchange(server, p.encode_request("enroll.confirm", user="alice", code=current))
    recovery_codes = replies[0].data["recovery_codes"]
    replies = exchange(server, p.encode_request("verify", user="alice", code=recovery_codes[0]))
    assert replies[0].data["result"] == p.ACCEPTED
    log = audit_log.getvalue()
    assert "event=enroll.confirm user=alice" in log
    assert "event=verify user=alice result=accepted method=recovery" in log
    for secret_text in (secret, current, *recovery_codes):
        assert secret_text not in log


def test_an_internal_error_is_reported_not_raised(
    server: Server, service: Service, audit_log: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(user: str) -> dict[str, object]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(service, "status", broken)
    replies = exchange(server, p.encode_request("status", user="bob") + p.encode_request("ping"))
    assert replies[0].code == p.INTERNAL and "disk" not in replies[0].message
    assert replies[1].ok
    assert "disk on fire" in audit_log.getvalue()


def test_the_longest_idle_connection_makes_room(service: Service, audit_log: io.StringIO) -> None:
    server = Server(service, Audit(stream=audit_log), limits=Limits(max_connections=2))

    async def run() -> list[bytes]:
        pairs = [socket.socketpair() for _ in range(3)]
        loop = asyncio.get_running_loop()
        connections = []
        for ours, theirs in pairs:
            _, connection = await loop.connect_accepted_socket(server.connection, theirs)
            connections.append(connection)
            ours.setblocking(False)
            await asyncio.sleep(0.01)
        # The first, idle the longest, was closed to admit the third.
        first = await asyncio.wait_for(loop.sock_recv(pairs[0][0], 100), 5)
        await loop.sock_sendall(pairs[2][0], p.encode_request("ping"))
        third = await asyncio.wait_for(loop.sock_recv(pairs[2][0], 1000), 5)
        for ours, _ in pairs:
            ours.close()
        await asyncio.wait_for(asyncio.gather(*(c.closed for c in connections)), 5)
        return [first, third]

    first, third = asyncio.run(run())
    assert first == b""
    assert p.decode_response(third.rstrip(b"\n")).ok


def _largest_listing(service: Service, accounts: Accounts, count: int) -> None:
    """`count` accounts with the longest names, all enrolled, locked, by the longest rule."""
    rule = "r" * 64
    service.policy = parse(f"rules:\n  - {{name: {rule}, groups: [many], action: required}}\n")
    for index in range(count):
        name = f"user{index:04d}".ljust(32, "x")
        accounts.add(name, 20_000 + index, "many")
        service.import_secret(name, totp.new_secret(), totp.TotpParams("SHA512", 8, 120), [])
        for _ in range(7):
            service.verify(name, "00000000")


def test_a_long_listing_comes_in_pages_that_each_fit(
    server: Server, service: Service, accounts: Accounts
) -> None:
    _largest_listing(service, accounts, 230)
    seen: list[str] = []
    cursor = None
    while True:
        fields = {"after": cursor} if cursor else {}
        [reply] = exchange(server, p.encode_request("list", **fields))
        assert reply.ok, reply.message
        assert len(reply.data["users"]) <= p.MAX_PAGE
        seen += [entry["user"] for entry in reply.data["users"]]
        cursor = reply.data["next"]
        if cursor is None:
            break
    assert seen == sorted(n for n in accounts.users if n.startswith("user"))


def test_policy_check_pages_who_would_be_required(
    server: Server, service: Service, accounts: Accounts
) -> None:
    _largest_listing(service, accounts, 120)
    request = {"text": "default: required\n", "name": "new.yaml"}
    [first] = exchange(server, p.encode_request("policy.check", **request))
    assert first.ok and len(first.data["required"]) == p.MAX_PAGE
    [second] = exchange(
        server, p.encode_request("policy.check", after=first.data["next"], **request)
    )
    everyone = [r["user"] for r in first.data["required"] + second.data["required"]]
    assert everyone == sorted(accounts.users) and second.data["next"] is None


def test_a_reply_too_large_to_send_is_an_error_not_a_cut(
    server: Server, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "status", lambda user: {"blob": "x" * p.MAX_MESSAGE_BYTES})
    replies = exchange(
        server, p.encode_request("status", id=7, user="bob") + p.encode_request("ping", id=8)
    )
    assert (replies[0].id, replies[0].code) == (7, p.INTERNAL)
    assert "too large" in replies[0].message
    assert replies[1].ok


def test_the_worst_policy_still_gets_its_errors_back(server: Server) -> None:
    """The most problems of the widest characters a policy file can hold fit in a reply."""
    wide = "\N{GRINNING FACE}" * 30
    line = f"  - {{users: ['{wide}'], action: exempt}}\n"
    text = "rules:\n" + line * ((48 * 1024 - 10) // len(line.encode()))
    [reply] = exchange(server, p.encode_request("policy.check", text=text))
    assert reply.code == p.INVALID_POLICY
    assert reply.message.endswith("more")


# --- what an unprivileged peer can make the daemon do -----------------------------------

BOB = Peer(pid=4242, uid=1001, gid=1001)


def test_costly_requests_of_an_unprivileged_peer_are_limited_and_roots_are_not(
    server: Server, clock: Clock
) -> None:
    begin = p.Request("enroll.begin", {"user": "bob"}, 1)
    answers = [server.dispatch(BOB, begin) for _ in range(COSTLY_BURST + 1)]
    assert all(answer.ok for answer in answers[:-1])
    assert answers[-1].code == p.RATE_LIMITED
    assert "try again in 12 s" in answers[-1].message
    root = Peer(pid=1, uid=0, gid=0)
    assert all(server.dispatch(root, begin).ok for _ in range(COSTLY_BURST + 1))
    clock.advance(COSTLY_INTERVAL)
    assert server.dispatch(BOB, begin).ok


def test_an_unprivileged_peers_reads_are_logged_up_to_a_budget_then_summarised(
    server: Server, audit_log: io.StringIO
) -> None:
    status = p.Request("status", {"user": "bob"}, 1)
    for _ in range(1000):
        assert server.dispatch(BOB, status).ok
    lines = audit_log.getvalue().splitlines()
    reads = [line for line in lines if "event=status" in line]
    summaries = [line for line in lines if "event=audit" in line]
    assert len(reads) == AUDIT_BURST
    left_out = sum(int(line.split("left_out=")[1].split()[0]) for line in summaries)
    assert left_out == 1000 - AUDIT_BURST
    assert all("peer_uid=1001" in line for line in summaries)


def test_changes_are_logged_whatever_the_budget(
    server: Server, audit_log: io.StringIO, clock: Clock
) -> None:
    status = p.Request("status", {"user": "bob"}, 1)
    for _ in range(AUDIT_BURST * 2):
        server.dispatch(BOB, status)
    begun = server.dispatch(BOB, p.Request("enroll.begin", {"user": "bob"}, 2))
    code = totp.code_at(begun.data["secret"], totp.TotpParams(), int(clock() // 30))
    done = server.dispatch(BOB, p.Request("enroll.confirm", {"user": "bob", "code": code}, 3))
    assert done.ok
    log = audit_log.getvalue()
    assert "event=enroll.begin user=bob result=ok" in log
    assert "event=enroll.confirm user=bob result=ok" in log


def test_roots_events_are_never_left_out(server: Server, audit_log: io.StringIO) -> None:
    root = Peer(pid=1, uid=0, gid=0)
    check = p.Request("check", {"user": "bob", "service": "sshd"}, 1)
    for _ in range(AUDIT_BURST * 3):
        server.dispatch(root, check)
    assert audit_log.getvalue().count("event=check") == AUDIT_BURST * 3
    assert "event=audit" not in audit_log.getvalue()


def test_a_verify_read_after_its_sender_gave_up_is_not_acted_on(
    service: Service, audit_log: io.StringIO, clock: Clock
) -> None:
    now = [100.0]
    server = Server(service, Audit(stream=audit_log), monotonic=lambda: now[0])
    root = Peer(pid=1, uid=0, gid=0)
    begun = server.dispatch(root, p.Request("enroll.begin", {"user": "bob"}, 1))
    code = totp.code_at(begun.data["secret"], totp.TotpParams(), int(clock() // 30))
    assert server.dispatch(root, p.Request("enroll.confirm", {"user": "bob", "code": code}, 2)).ok
    late = {"user": "bob", "code": "000000", "expires": 99.5}
    answer = server.dispatch(root, p.Request("verify", late, 3))
    assert answer.code == p.EXPIRED
    assert service.status("bob")["failures"] == 0  # not counted
    assert "event=verify user=bob peer_uid=0 peer_pid=1 error=expired" in audit_log.getvalue()
    in_time = {"user": "bob", "code": "000000", "expires": 100.5}
    assert server.dispatch(root, p.Request("verify", in_time, 4)).data["result"] == p.REJECTED
    assert service.status("bob")["failures"] == 1


# --- a current code, asked where the access table says --------------------------------

ALICE = Peer(pid=4243, uid=1000, gid=1000)  # an administrator (sudo)
ROOT = Peer(pid=1, uid=0, gid=0)


@pytest.mark.parametrize("op", ["enroll.begin", "disable", "recovery.regenerate", "secret.show"])
def test_a_code_is_asked_of_the_account_itself_an_administrators_own_too(
    server: Server, service: Service, clock: Clock, op: str
) -> None:
    for user in ("alice", "bob"):
        secret = service.enroll_begin(user)["secret"]
        service.enroll_confirm(user, totp.code_at(secret, totp.TotpParams(), int(clock() // 30)))
    extra = {"replace": True} if op == "enroll.begin" else {}
    extra |= {"code": "000000"} if op == "secret.show" else {}  # required: a wrong one
    refusal = p.INVALID_CODE if op == "secret.show" else p.UNAUTHORIZED

    def ask(peer: Peer, user: str) -> str | None:
        return server.dispatch(peer, p.Request(op, {"user": user, **extra}, 1)).code

    assert ask(BOB, "bob") == refusal
    assert ask(ALICE, "alice") == refusal
    assert ask(ALICE, "bob") == (refusal if op == "secret.show" else None)
    assert ask(ROOT, "alice") == (refusal if op == "secret.show" else None)


def test_policy_check_previews_a_drop_in_beside_the_daemons_policy(
    service: Service, audit_log: io.StringIO, tmp_path: Path
) -> None:
    main = tmp_path / "policy.yaml"
    main.write_text(
        "include: [policy.d/*.yaml]\nrules: [{name: own, users: [root], action: exempt}]\n"
    )
    server = Server(service, Audit(stream=audit_log), policy_path=str(main))
    dropin = {
        "name": "web.yaml",
        "text": "rules: [{name: web, groups: [sudo], action: required}]\n",
    }
    [reply] = exchange(server, p.encode_request("policy.check", dropin=dropin))
    assert reply.ok and reply.data["source"] == str(main) and reply.data["rules"] == 2
    assert reply.data["dropin"] == {
        "name": "policy.d/web.yaml",
        "file": str(tmp_path / "policy.d/web.yaml"),
        "included": True,
    }
    assert not (tmp_path / "policy.d").exists()  # a preview writes nothing
    # With the main file as text, the drop-in is the one the text includes (none here).
    [other] = exchange(server, p.encode_request("policy.check", text="", dropin=dropin))
    assert other.ok and other.data["rules"] == 0 and not other.data["dropin"]["included"]
    bad = {"name": "web.yaml", "text": "default: required\n"}
    [refused] = exchange(server, p.encode_request("policy.check", dropin=bad))
    assert refused.code == p.INVALID_POLICY
    assert (
        f"{tmp_path}/policy.d/web.yaml:1:10: default: a drop-in holds only rules" in refused.message
    )
    main.unlink()
    [missing] = exchange(server, p.encode_request("policy.check", dropin=dropin))
    assert missing.code == p.INVALID_POLICY and str(main) in missing.message


def test_without_a_policy_file_a_drop_in_cannot_be_previewed(server: Server) -> None:
    dropin = {"name": "web.yaml", "text": ""}
    [reply] = exchange(server, p.encode_request("policy.check", dropin=dropin))
    assert reply.code == p.INVALID_POLICY and "reads no policy file" in reply.message
