"""failover: how long logins are refused when a fleet's PostgreSQL primary dies and its
synchronous standby is promoted, under one running twofad.

Real parts throughout: a throwaway primary and a synchronous streaming standby made by
the tests' harness (tests/support/postgres.py, ``synchronous_commit = remote_apply``),
and one twofad whose ``--store`` is a libpq URI naming both, the primary first, with
``target_session_attrs=read-write``: libpq takes whichever host accepts writes, so the
same process goes on after the promotion with no restart and no change of its
configuration.  The users are written with the daemon stopped through twofad's own
PostgreSQL store code (bench/fleet.py's bulk load): enrolling through the socket needs
a real system account per user.

A client sends one verify every 50 ms (an open loop: the next is sent on time whatever
the last one's answer is doing), each from a user of its own with the code of the
current step (oathtool), over a few persistent connections, as the PAM stacks of a
busy host would.  After a few seconds the primary is killed (SIGKILL to the server and
every backend: no shutdown at all) and the standby promoted at once, as an operator or
a cluster manager would (``--promote-delay`` for one that waits).  Recorded:

- the time from the kill to the first verify answered ``accepted`` again, among those
  sent after the kill (the target), split into the kill, the promotion and the rest;
- what every verify was answered meanwhile: ``unavailable`` (the hook's ``fail=``
  decides then), and never ``internal`` (that would refuse every login whatever
  ``fail=`` says, and mean twofad took a passing outage for a configuration error);
- after the failover, every code accepted before the kill sent again, and every code
  accepted after it: each must be answered ``replayed``, none ``accepted``: a step
  spent on the old primary stays spent on the new one.  The codes answered
  ``unavailable`` are sent again too: accepted now, unless the old primary had the
  step committed (and applied on the standby) when it died, before it could answer.

Phases go by the time a verify was answered, so one in flight at the kill counts
among the outage's; the daemon's log (its stderr where there is no journald) is
searched for "internal error" and for every code sent.

Run as root: `make bench`, or `.venv/bin/python bench/failover.py`.
"""

from __future__ import annotations

import argparse
import re
import selectors
import socket
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, cast

import common as c
from common import Codes
from fleet import pg_bulk_load, user_list

from support.daemon import Daemon
from support.postgres import Cluster, both_hosts_uri

CONNECTIONS = 8
SECRETS = 16
TARGET_SECONDS = 10.0
ACCEPTED = "accepted"
UNAVAILABLE = "error:unavailable"
INTERNAL = "error:internal"
PHASES = ("before the kill", "kill → accepted again", "after")


# --------------------------------------------------------------------------- the client


@dataclass
class Attempt:
    """One verify: whose, which code, when it was sent and answered (perf_counter)."""

    user: str
    code: str
    sent: float
    answered: float | None = None
    result: str | None = None


@dataclass
class Driver:
    """Verifies at a steady rate over persistent connections, in a thread of its own.

    Each tick takes the next user and the code of the current step, and sends it on a
    connection with nothing in flight (round robin, so every connection stays in use);
    a tick finding every connection busy is counted and skipped, never sent late.
    `recovered` is set at the first `accepted` answer to a verify sent after
    `watch_from` (set by whoever kills the primary, once the kill has landed).
    """

    socket_path: str
    users: Sequence[tuple[str, str]]
    codes: Codes
    interval: float
    connections: int = CONNECTIONS
    attempts: list[Attempt] = field(default_factory=list)
    skipped_busy: int = 0
    ran_out: bool = False
    watch_from: float | None = None
    recovered_at: float | None = None
    recovered: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the main thread
            self.error = exc
            self.recovered.set()

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        conns = []
        for _ in range(self.connections):
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.connect(self.socket_path)
            conn.setblocking(False)
            selector.register(conn, selectors.EVENT_READ)
            conns.append(conn)
        in_flight: dict[int, Attempt] = {}
        buffers = {conn.fileno(): bytearray() for conn in conns}
        perf = time.perf_counter
        next_tick = perf()
        turn = 0
        try:
            while not self.stop.is_set() or in_flight:
                now = perf()
                if now >= next_tick and not self.stop.is_set():
                    next_tick += self.interval
                    if next_tick < now:  # this thread was held up: no burst to catch up
                        next_tick = now + self.interval
                    idle = [
                        conns[(turn + k) % len(conns)]
                        for k in range(len(conns))
                        if conns[(turn + k) % len(conns)].fileno() not in in_flight
                    ]
                    if len(self.attempts) >= len(self.users):
                        self.ran_out = True
                    elif not idle:
                        self.skipped_busy += 1
                    else:
                        conn = idle[0]
                        turn = (conns.index(conn) + 1) % len(conns)
                        name, secret = self.users[len(self.attempts)]
                        code = self.codes.at_step(secret, c.current_step())
                        attempt = Attempt(name, code, perf())
                        self.attempts.append(attempt)
                        in_flight[conn.fileno()] = attempt
                        conn.sendall(c.verify_request(name, code, len(self.attempts)))
                wait = max(0.0, next_tick - perf()) if not self.stop.is_set() else 0.5
                for key, _ in selector.select(timeout=wait):
                    conn = cast(socket.socket, key.fileobj)
                    chunk = conn.recv(65536)
                    if not chunk:
                        raise ConnectionError("twofad closed a benchmark connection")
                    buffer = buffers[conn.fileno()]
                    buffer += chunk
                    end = buffer.find(b"\n")
                    if end < 0:
                        continue
                    attempt = in_flight.pop(conn.fileno())
                    attempt.answered = perf()
                    attempt.result = c.classify(bytes(buffer[:end]))
                    del buffer[: end + 1]
                    if (
                        attempt.result == ACCEPTED
                        and self.watch_from is not None
                        and attempt.sent >= self.watch_from
                        and self.recovered_at is None
                    ):
                        self.recovered_at = attempt.answered
                        self.recovered.set()
        finally:
            selector.close()
            for conn in conns:
                conn.close()


def resend(socket_path: str, attempts: Sequence[Attempt]) -> dict[str, int]:
    """Every attempt's code sent again for its user, 8 connections at a time: counts."""
    if not attempts:
        return {}
    messages = iter([c.verify_request(a.user, a.code, i) for i, a in enumerate(attempts)])
    return cast(
        dict[str, int],
        c.closed_loop(socket_path, messages, min(CONNECTIONS, len(attempts)), max_seconds=60.0)[
            "counts"
        ],
    )


# --------------------------------------------------------------------------- the run


@dataclass
class Marks:
    """The moments of the failover (perf_counter)."""

    kill: float = 0.0
    killed: float = 0.0
    promote: float = 0.0
    promoted: float = 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=2_000, help="enrolled users (one per verify)")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between verifies")
    parser.add_argument("--before", type=float, default=4.0, help="seconds before the kill")
    parser.add_argument("--after", type=float, default=4.0, help="seconds after accepted again")
    parser.add_argument(
        "--promote-delay", type=float, default=0.0, help="seconds from the kill to the promotion"
    )
    parser.add_argument(
        "--give-up", type=float, default=30.0, help="seconds after the promotion to wait at most"
    )
    args = parser.parse_args()
    c.require_root()

    print("failover: a fleet's PostgreSQL primary killed, its synchronous standby promoted")
    codes = Codes()
    secret_list = [c.new_secret() for _ in range(SECRETS)]
    users = user_list("fo", args.users, secret_list)
    with ExitStack() as stack:
        primary = Cluster().start()
        stack.callback(primary.destroy)
        database = primary.new_database()
        standby = primary.standby()
        stack.callback(standby.destroy)
        root = stack.enter_context(c.work_dir("failover"))
        policy = root / "policy.yaml"
        policy.write_text("default: optional\n")
        key_file = root / "fleet.key"
        load_seconds = pg_bulk_load(database.conninfo, key_file, users)
        c.note(
            f"{len(users):,} users written through PostgresStore in {load_seconds:.1f} s "
            "(each commit applied on the synchronous standby before it returned)"
        )
        (root / "host").mkdir()
        daemon = Daemon(
            root / "host",
            "--store", both_hosts_uri(database, standby), "--key-file", str(key_file),
            "--policy", str(policy),
        ).start()  # fmt: skip
        stack.callback(lambda: daemon.stop() if daemon.alive() else None)
        c.note(
            f"twofad pid {daemon.proc.pid if daemon.proc else '?'}; primary on "
            f"127.0.0.1:{primary.port}, standby on 127.0.0.1:{standby.port}; one verify "
            f"every {args.interval * 1000:g} ms over {CONNECTIONS} persistent connections"
        )
        step = c.current_step()
        for secret in secret_list:  # oathtool ahead of time, not on the client's ticks
            for at in range(step, step + 3):
                codes.at_step(secret, at)

        driver = Driver(daemon.socket, users, codes, args.interval)
        thread = threading.Thread(target=driver.run, name="failover-client", daemon=True)
        thread.start()
        marks = Marks()
        time.sleep(args.before)
        marks.kill = time.perf_counter()
        primary.kill()
        marks.killed = time.perf_counter()
        driver.watch_from = marks.killed
        if args.promote_delay:
            time.sleep(args.promote_delay)
        marks.promote = time.perf_counter()
        standby.promote()
        marks.promoted = time.perf_counter()
        driver.recovered.wait(args.give_up)
        if driver.recovered_at is not None:
            time.sleep(args.after)
        driver.stop.set()
        thread.join(30)
        if driver.error is not None:
            raise driver.error
        accepted_before = [
            a
            for a in driver.attempts
            if a.result == ACCEPTED and phase_of(a, marks, None) == PHASES[0]
        ]
        accepted_after = [
            a
            for a in driver.attempts
            if a.result == ACCEPTED and phase_of(a, marks, None) != PHASES[0]
        ]
        refused = [a for a in driver.attempts if a.result == UNAVAILABLE]
        again = {
            "accepted_before_kill": resend(daemon.socket, accepted_before),
            "accepted_after_kill": resend(daemon.socket, accepted_after),
            "refused_unavailable": resend(daemon.socket, refused),
        }
        alive = daemon.alive()
        log = daemon.log_text()
    return report(
        args,
        driver,
        marks,
        again,
        {
            "daemon_alive_throughout": alive,
            "log_internal_errors": log.count("internal error"),
            "log_codes_leaked": sum(
                1 for a in driver.attempts if re.search(rf"(?<!\d){a.code}(?!\d)", log)
            ),
            "load_seconds": round(load_seconds, 2),
        },
    )


# --------------------------------------------------------------------------- the report


def phase_of(attempt: Attempt, marks: Marks, recovered_at: float | None) -> str:
    """By the time of the answer: one in flight when the primary died is the outage's."""
    answered = attempt.answered
    if answered is not None and answered < marks.kill:
        return PHASES[0]
    if answered is None or recovered_at is None or answered <= recovered_at:
        return PHASES[1]
    return PHASES[2]


def after_kill_ms(moment: float | None, marks: Marks) -> float | None:
    """Milliseconds from the kill's start; None if it never happened (JSON's null)."""
    return None if moment is None else c.ms(moment - marks.kill)


def shown(value: float | None) -> float:
    return float("nan") if value is None else value


def report(
    args: argparse.Namespace,
    driver: Driver,
    marks: Marks,
    again: dict[str, dict[str, int]],
    facts: dict[str, Any],
) -> int:
    recovered = driver.recovered_at
    rows: list[dict[str, Any]] = []
    kinds = sorted({a.result or "no answer" for a in driver.attempts})
    for phase in PHASES:
        mine = [a for a in driver.attempts if phase_of(a, marks, recovered) == phase]
        latencies = [a.answered - a.sent for a in mine if a.answered is not None]
        counts = {kind: 0 for kind in kinds}
        for a in mine:
            counts[a.result or "no answer"] += 1
        rows.append(
            {
                "phase": phase,
                "verifies": len(mine),
                "results": counts,
                "p50_ms": c.ms(c.percentile(latencies, 50)) if latencies else None,
                "max_ms": c.ms(max(latencies)) if latencies else None,
            }
        )
    c.heading(f"verifies every {args.interval * 1000:g} ms, a user and a fresh code each")
    c.table(
        ["phase", "verifies", *kinds, "p50 ms", "max ms"],
        [
            [r["phase"], r["verifies"], *(r["results"][k] for k in kinds), shown(r["p50_ms"]),
             shown(r["max_ms"])]
            for r in rows
        ],
    )  # fmt: skip
    c.note("phases by the time a verify was answered; ms: from sending to the whole answer")
    if driver.skipped_busy:
        c.note(f"{driver.skipped_busy} ticks skipped: all {CONNECTIONS} connections were waiting")
    if driver.ran_out:
        c.note("(the users ran out before the end: raise --users)")

    refused = [
        a for a in driver.attempts if a.result != ACCEPTED and phase_of(a, marks, None) != PHASES[0]
    ]
    answered_refused = [a.answered for a in refused if a.answered is not None]
    unavailable = [a for a in refused if a.result == UNAVAILABLE]
    internal = [a for a in driver.attempts if a.result == INTERNAL]
    outage = [a for a in driver.attempts if phase_of(a, marks, recovered) == PHASES[1]]
    other_outage = [a for a in outage if a.result not in (ACCEPTED, UNAVAILABLE)]
    timeline = {
        "kill_ms": c.ms(marks.killed - marks.kill),
        "promotion_began_ms": after_kill_ms(marks.promote, marks),
        "promotion_returned_ms": after_kill_ms(marks.promoted, marks),
        "first_refusal_answered_ms": after_kill_ms(min(answered_refused, default=None), marks),
        "last_refusal_answered_ms": after_kill_ms(max(answered_refused, default=None), marks),
        "accepted_again_ms": after_kill_ms(recovered, marks),
    }
    moments = [
        ("primary and its backends dead and reaped (SIGKILL)", timeline["kill_ms"]),
        ("promotion began (pg_promote, waiting)", timeline["promotion_began_ms"]),
        ("promotion returned, out of recovery seen", timeline["promotion_returned_ms"]),
        ("first verify refused, answered", timeline["first_refusal_answered_ms"]),
        ("last verify refused, answered", timeline["last_refusal_answered_ms"]),
        ("first verify accepted again, answered", timeline["accepted_again_ms"]),
    ]
    c.heading("the failover, ms after the kill began")
    c.table(["moment", "ms"], [[moment, shown(value)] for moment, value in moments])
    c.note(
        "promotion returned: the harness's pg_promote(wait) and its check of "
        "pg_is_in_recovery() over new connections, so writes can be taken before it; a "
        f"verify goes out every {args.interval * 1000:g} ms, the resolution of the last line"
    )
    c.heading("codes answered once, sent again after the failover")
    kinds_again = sorted({kind for counts in again.values() for kind in counts})
    labels = {
        "accepted_before_kill": "accepted before the kill (by the old primary)",
        "accepted_after_kill": "accepted after it (by the promoted standby)",
        "refused_unavailable": "answered `unavailable` meanwhile",
    }
    c.table(
        ["codes", "sent", *kinds_again],
        [
            [label, sum(again[key].values()), *(again[key].get(k, 0) for k in kinds_again)]
            for key, label in labels.items()
        ],
    )
    c.note(
        "expected: every accepted one `replayed`, none `accepted`; one answered "
        "`unavailable` `accepted` now (its step never reached a database), or `replayed` "
        "if the primary had it committed on the standby when it died, before answering"
    )
    seconds = None if recovered is None else (recovered - marks.kill)
    met = seconds is not None and seconds <= TARGET_SECONDS
    twice = again["accepted_before_kill"].get(ACCEPTED, 0) + again["accepted_after_kill"].get(
        ACCEPTED, 0
    )
    sound = (
        not internal
        and not other_outage
        and twice == 0
        and facts["daemon_alive_throughout"]
        and not facts["log_codes_leaked"]
        and not facts["log_internal_errors"]
    )
    c.heading("targets")
    c.note(
        f"verifies refused between: {len(unavailable)} `unavailable`, {len(internal)} "
        f"`internal`, {len(other_outage)} other; accepted twice: {twice}; twofad alive "
        f"throughout: {facts['daemon_alive_throughout']}; 'internal error' in its log: "
        f"{facts['log_internal_errors']} — {c.verdict(sound)}"
    )
    took = "never" if seconds is None else f"{seconds:.2f} s"
    c.note(
        f"failover: logins refused for ≤ {TARGET_SECONDS:g} s: accepted again {took} after "
        f"the kill — {c.verdict(met)}"
    )
    c.emit(
        "failover",
        {
            "method": f"one twofad, --store naming the primary and its synchronous standby "
            f"(target_session_attrs=read-write); a verify every {args.interval * 1000:g} ms, "
            f"open loop, over {CONNECTIONS} persistent connections, a bulk-loaded user and "
            "the current step's code (oathtool) each; SIGKILL to the primary and every "
            f"backend after {args.before:g} s, pg_promote on the standby "
            f"{args.promote_delay:g} s later",
            "users": len(driver.users),
            "verifies": len(driver.attempts),
            "skipped_busy": driver.skipped_busy,
            "phases": rows,
            "timeline_ms": timeline,
            "refused": {
                "unavailable": len(unavailable),
                "internal": len(internal),
                "other": len(other_outage),
            },
            "resent": again,
            **facts,
            "targets": {
                "refused_seconds_max": TARGET_SECONDS,
                "refused_seconds": None if seconds is None else round(seconds, 3),
                "refused_met": met,
                "accepted_twice": twice,
                "sound": sound,
            },
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
