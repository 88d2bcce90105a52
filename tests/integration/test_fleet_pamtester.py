"""Logins through the real PAM stack while twofad's PostgreSQL store goes away and back.

pamtester drives the real pam_python.so and the hook; twofad is a real process on a
real PostgreSQL server of the test's own (tests/support/postgres.py); codes come from
oathtool; the hook's syslog lines are received by the test (tests/support/syslog.py).
With the database out of reach, killed or frozen, twofad is up but answers
`unavailable`, and the hook's fail= choice decides: fail=secure refuses the login,
fail=open lets it in and says so in the log.  Once the database is back, the same
twofad process serves logins again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

import pytest

from pam_twofa.login import UNAVAILABLE
from support.daemon import Daemon
from support.enrollment import HOOK, enroll
from support.pam import PAM_PYTHON, PAMTESTER, Conversation, pam_service, run_in_pty
from support.postgres import Cluster
from support.syslog import Syslog, syslog_receiver
from support.users import TestUser

pytestmark = pytest.mark.integration

TAG = "pam_twofa"  # the hook's syslog tag
CANNOT_RETRIEVE = "Authentication service cannot retrieve authentication info"


@pytest.fixture
def syslog() -> Iterator[Syslog]:
    with syslog_receiver() as receiver:
        yield receiver


def login(syslog: Syslog, service: str, user: str, answers: list[str]) -> Conversation:
    """One real login through pamtester, its syslog(3) reaching the test's receiver."""
    began = time.monotonic()
    result = run_in_pty(syslog.wrap([PAMTESTER, service, user, "authenticate"]), answers)
    print(f"{service}: exit {result.returncode} after {time.monotonic() - began:.2f} s")
    return result


MODES = ("secure", "open")


def hook_service(daemon: Daemon, mode: str) -> AbstractContextManager[str]:
    """A PAM service of the hook alone, with fail=`mode`."""
    return pam_service(
        "twofa-test",
        [f"auth required {PAM_PYTHON} {HOOK} socket={daemon.socket} fail={mode}",
         "account required pam_permit.so"],
    )  # fmt: skip


OUTAGES: dict[str, tuple[Callable[[Cluster], None], Callable[[Cluster], object]]] = {
    "killed": (Cluster.kill, Cluster.start),
    "frozen": (Cluster.freeze, Cluster.thaw),
}


@pytest.mark.parametrize("outage", list(OUTAGES))
def test_logins_follow_fail_while_the_store_is_out_and_resume_when_it_is_back(
    outage: str,
    postgres_cluster: Callable[[], Cluster],
    shared_dir: Path,
    policy_path: Path,
    person: TestUser,
    syslog: Syslog,
) -> None:
    go, come_back = OUTAGES[outage]
    cluster = postgres_cluster().start()
    database = cluster.new_database()
    daemon = Daemon(shared_dir, "--policy", str(policy_path), "--store", database.uri).start()
    try:
        codes, _ = enroll(daemon, person.name)
        with ExitStack() as files:
            secure, open_ = (files.enter_context(hook_service(daemon, mode)) for mode in MODES)
            first = login(syslog, secure, person.name, [codes.next()])
            assert first.ok, first
            assert first.prompts_stripped == ["Verification code:"]

            go(cluster)
            try:
                refused = login(syslog, secure, person.name, ["123456"])
                admitted = login(syslog, open_, person.name, [])
            finally:
                come_back(cluster)
            assert not refused.ok, refused
            assert UNAVAILABLE in refused.output and CANNOT_RETRIEVE in refused.output
            assert refused.prompts_stripped == []  # no code asked for: nothing would check it
            assert admitted.ok, admitted
            assert admitted.prompts_stripped == []
            lines = syslog.wait_for(TAG, "fail=open lets")
            print("the hook's log:", *lines, sep="\n  ")
            assert len(lines) == 2, lines
            assert lines[0].startswith("twofad unavailable (")
            assert lines[0].endswith(
                f"); login of {person.name} refused (service={secure} rhost=-)"
            )
            assert lines[1].startswith("twofad unavailable (")
            assert lines[1].endswith(
                f"); fail=open lets {person.name} in without a code (service={open_} rhost=-)"
            )
            for line in lines:  # twofad itself answered, about its database
                assert "database" in line and "twofad did not answer" not in line
                assert cluster.password not in line

            again = login(syslog, secure, person.name, [codes.next()])
            assert again.ok, again
            assert again.prompts_stripped == ["Verification code:"]
        assert daemon.alive()  # the same process throughout: no restart
        log = daemon.log_text()
        assert "check not answered" in log and "internal error" not in log
    finally:
        if daemon.alive():
            daemon.stop()


def test_enrolled_on_one_host_a_person_logs_in_through_the_others_hook_once_per_code(
    postgres_server: Cluster,
    shared_dir: Path,
    policy_path: Path,
    person: TestUser,
    syslog: Syslog,
) -> None:
    """Two hosts' twofad on one store: set up on the first, a login through the second's
    PAM stack gets in, and the same code through the first's is refused."""
    database = postgres_server.new_database()
    key = shared_dir / "fleet.key"
    hosts = []
    for name in ("a", "b"):
        (shared_dir / name).mkdir()
        hosts.append(
            Daemon(
                shared_dir / name,
                "--policy",
                str(policy_path),
                "--store",
                database.uri,
                "--key-file",
                str(key),
            ).start()
        )
    first, second = hosts
    try:
        codes, _ = enroll(first, person.name)
        code = codes.next()
        with hook_service(second, "secure") as on_second, hook_service(first, "secure") as on_first:
            admitted = login(syslog, on_second, person.name, [code])
            assert admitted.ok, admitted
            replayed = login(syslog, on_first, person.name, [code])
            assert not replayed.ok, replayed
            assert replayed.prompts_stripped == ["Verification code:"]
        assert f"event=verify user={person.name} result=accepted" in second.log_text()
        assert f"event=verify user={person.name} result=replayed" in first.log_text()
        assert first.request("status", user=person.name)["last_success"]
    finally:
        for daemon in hosts:
            if daemon.alive():
                daemon.stop()
