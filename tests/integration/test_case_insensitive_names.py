"""One account, one state, however its name is typed, where NSS matches names without case.

A real twofad and real logins (pamtester, pam_python.so, the hook) run inside a private
mount namespace whose nsswitch.conf adds a case-insensitive passwd module (see
support/nss.py): there `TFA1234` is the account `tfa1234`, as under SSSD with
`case_sensitive = false` or winbind. The machine's own nsswitch.conf is never touched.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pam_twofa import protocol
from pam_twofa.client import RequestFailed
from support import nss
from support.daemon import Daemon
from support.enrollment import HOOK, enroll
from support.pam import PAM_PYTHON, PAMTESTER, Conversation, pam_service, run_in_pty
from support.users import TestUser, throwaway_user

pytestmark = pytest.mark.integration


class FoldingDaemon(Daemon):
    """twofad started inside the namespace where names match without case."""

    def __init__(self, root: Path, directory: nss.FoldingDirectory, *extra_args: str) -> None:
        super().__init__(root, *extra_args)
        self.directory = directory

    def command(self) -> list[str]:
        return self.directory.inside(super().command())


@pytest.fixture
def folding(shared_dir: Path) -> nss.FoldingDirectory:
    directory = shared_dir / "nss"
    directory.mkdir(mode=0o755)
    return nss.build(directory)


@pytest.fixture
def group() -> Iterator[str]:
    name = f"tfg{os.urandom(3).hex()}"
    subprocess.run(["groupadd", name], check=True)
    yield name
    subprocess.run(["groupdel", name], check=False)


@pytest.fixture
def member(group: str) -> Iterator[TestUser]:
    with throwaway_user(groups=(group,)) as user:
        yield user


def start(shared_dir: Path, folding: nss.FoldingDirectory, policy: str) -> Daemon:
    path = shared_dir / "policy.yaml"
    path.write_text(policy)
    return FoldingDaemon(shared_dir, folding, "--policy", str(path)).start()


@pytest.fixture
def service(shared_dir: Path) -> Iterator[str]:
    hook = f"auth required {PAM_PYTHON} {HOOK} socket={shared_dir / 'twofad.sock'}"
    with pam_service("twofa-test", [hook, "account required pam_permit.so"]) as name:
        yield name


def login(folding: nss.FoldingDirectory, service: str, user: str, answer: str) -> Conversation:
    """`pamtester SERVICE USER authenticate` inside the namespace, typing `answer`."""
    return run_in_pty(folding.inside([PAMTESTER, service, user, "authenticate"]), [answer])


def test_the_namespace_matches_names_without_case_and_the_machine_does_not(
    folding: nss.FoldingDirectory, member: TestUser
) -> None:
    typed = member.name.upper()
    inside = subprocess.run(
        folding.inside(["getent", "passwd", typed]), capture_output=True, text=True
    )
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.startswith(f"{member.name}:x:{member.uid}:")
    outside = subprocess.run(["getent", "passwd", typed], capture_output=True)
    assert outside.returncode == 2


@pytest.mark.parametrize("rule", ["users", "groups"])
def test_a_name_typed_in_capitals_must_give_the_code(
    shared_dir: Path,
    folding: nss.FoldingDirectory,
    service: str,
    member: TestUser,
    group: str,
    rule: str,
) -> None:
    listed = member.name if rule == "users" else group
    daemon = start(
        shared_dir,
        folding,
        f"default: optional\nrules:\n  - name: ops\n    {rule}: [{listed}]\n    action: required\n",
    )
    try:
        codes, _ = enroll(daemon, member.name)
        typed = member.name.upper()
        # The rule applies to the account, its groups computed for its real name.
        explained = daemon.request("policy.explain", user=typed, service=service)
        assert (explained["user"], explained["action"], explained["rule"]) == (
            member.name,
            "required",
            "ops",
        )
        wrong = login(folding, service, typed, "000000")
        assert wrong.prompts_stripped == ["Verification code:"], wrong
        assert not wrong.ok and "Invalid verification code" in wrong.output
        code = codes.next()
        right = login(folding, service, typed, code)
        assert right.ok and right.prompts_stripped == ["Verification code:"], right
        # One account, one replay state: the code just used is spent for every spelling.
        replay = login(folding, service, member.name, code)
        assert not replay.ok and "Invalid verification code" in replay.output
    finally:
        daemon.stop()


def test_failures_in_any_case_count_toward_one_lock_out(
    shared_dir: Path, folding: nss.FoldingDirectory, service: str, member: TestUser
) -> None:
    daemon = start(shared_dir, folding, "default: required\n")
    try:
        codes, _ = enroll(daemon, member.name)
        spellings = [member.name.upper(), member.name, member.name.capitalize()]
        for attempt in range(5):  # the policy's lock-out starts after 5 failures
            failed = login(folding, service, spellings[attempt % 3], "000000")
            assert failed.prompts_stripped == ["Verification code:"], failed
            assert not failed.ok
        status = daemon.request("status", user=member.name.upper())
        assert (status["user"], status["failures"], status["locked"]) == (member.name, 5, True)
        for spelling in spellings:
            locked = login(folding, service, spelling, codes.next())
            assert not locked.ok and "Too many failed attempts" in locked.output, locked
            assert locked.prompts_stripped == []
    finally:
        daemon.stop()


def test_a_name_in_capitals_is_not_offered_a_second_enrollment(
    shared_dir: Path, folding: nss.FoldingDirectory, service: str, member: TestUser
) -> None:
    daemon = start(shared_dir, folding, "default: required\nenrollment: {at_login: true}\n")
    try:
        codes, _ = enroll(daemon, member.name)
        result = login(folding, service, member.name.upper(), codes.next())
        assert result.ok, result
        assert result.prompts_stripped == ["Verification code:"]
        assert "otpauth://" not in result.output
        users = daemon.request("list")["users"]
        assert isinstance(users, list)
        listed = [entry["user"] for entry in users]
        assert [name for name in listed if name.lower() == member.name] == [member.name]
        with pytest.raises(RequestFailed) as refused:
            daemon.request("enroll.begin", user=member.name.capitalize())
        assert refused.value.code == protocol.ALREADY_ENROLLED
    finally:
        daemon.stop()
