"""The hook's questions, with an injected clock: check, verify (replay, lock-out,
recovery codes) and resync."""

from __future__ import annotations

import pytest

from pam_twofa import protocol as p
from support.fakes import Clock
from support.service import code, enroll, fail, use_policy
from twofad import totp
from twofad.service import Service

# --- check, as the policy decides it ----------------------------------------------


def test_known_user_without_2fa_is_skipped(service: Service) -> None:
    assert service.check("bob")["action"] == p.SKIP
    assert service.verify("bob", "123456")["result"] == p.NOT_ENROLLED


def test_enrolled_user_is_prompted(service: Service, clock: Clock) -> None:
    enroll(service, clock)
    assert service.check("alice", "sshd", "192.0.2.1")["action"] == p.PROMPT


def test_optional_prompts_only_the_enrolled(service: Service, clock: Clock) -> None:
    enroll(service, clock, "alice")
    assert service.check("alice", "sshd", "203.0.113.1") == {
        "action": p.PROMPT,
        "digits": 6,
        "email": False,
    }
    assert service.check("bob", "sshd", "203.0.113.1") == {"action": p.SKIP}


def test_required_and_not_set_up_enrolls_at_login_or_refuses(service: Service) -> None:
    use_policy(service, "default: required\n")
    assert service.check("bob", "sshd")["action"] == p.ENROLL
    use_policy(service, "default: required\nenrollment: {at_login: false}\n")
    assert service.check("bob", "sshd")["action"] == p.REFUSE
    service.enroll_begin("bob")  # a pending set-up is still not set up
    assert service.check("bob", "sshd")["action"] == p.REFUSE


def test_exempt_skips_even_the_enrolled(service: Service, clock: Clock) -> None:
    enroll(service, clock, "alice")
    use_policy(service, "rules:\n  - {from: [192.168.1.0/24], action: exempt}\n")
    assert service.check("alice", "sshd", "192.168.1.7") == {"action": p.SKIP}
    assert service.check("alice", "sshd", "192.168.2.7") == {
        "action": p.PROMPT,
        "digits": 6,
        "email": False,
    }


def test_a_locked_user_is_told_so_before_the_prompt(service: Service, clock: Clock) -> None:
    enroll(service, clock, "alice")
    for _ in range(5):
        service.verify("alice", "000000")
    assert service.check("alice", "sshd") == {
        "action": p.LOCKED,
        "result": p.LOCKED,
        "retry_after": 30,
        "hard_locked": False,
    }


# --- verification and replay ------------------------------------------------------


def test_accepts_the_current_code_once(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    current = code(secret, clock)
    assert service.verify("alice", current) == {
        "result": p.ACCEPTED,
        "method": "totp",
        "device": "phone",
    }
    assert service.verify("alice", current)["result"] == p.REPLAYED


@pytest.mark.parametrize("offset", [-1, 1])
def test_window_allows_one_step_either_way(service: Service, clock: Clock, offset: int) -> None:
    secret, _ = enroll(service, clock)
    clock.advance(60)
    assert service.verify("alice", code(secret, clock, offset))["result"] == p.ACCEPTED


@pytest.mark.parametrize("offset", [-2, 2])
def test_window_refuses_two_steps_away(service: Service, clock: Clock, offset: int) -> None:
    secret, _ = enroll(service, clock)
    clock.advance(90)
    assert service.verify("alice", code(secret, clock, offset))["result"] == p.REJECTED


def test_an_older_step_is_refused_after_a_newer_one(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    clock.advance(60)
    assert service.verify("alice", code(secret, clock, 1))["result"] == p.ACCEPTED
    assert service.verify("alice", code(secret, clock, 0))["result"] == p.REPLAYED
    assert service.verify("alice", code(secret, clock, -1))["result"] == p.REPLAYED


def test_code_typed_with_spaces_or_full_width_digits(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    typed = code(secret, clock)
    wide = "".join(chr(ord(c) + 0xFEE0) for c in typed)
    assert service.verify("alice", f"{typed[:3]} {typed[3:]}")["result"] == p.ACCEPTED
    clock.advance(30)
    assert (
        service.verify("alice", "".join(chr(ord(c) + 0xFEE0) for c in code(secret, clock)))[
            "result"
        ]
        == p.ACCEPTED
    )
    assert wide != typed


# --- lock-out ---------------------------------------------------------------------


def test_five_failures_lock_for_thirty_seconds(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    results = fail(service, "alice", 5)
    assert [r["result"] for r in results] == [p.REJECTED] * 5
    assert results[-1]["retry_after"] == 30
    locked = service.verify("alice", code(secret, clock))
    assert locked == {"result": p.LOCKED, "retry_after": 30, "hard_locked": False}
    clock.advance(29)
    assert service.verify("alice", code(secret, clock))["result"] == p.LOCKED
    clock.advance(1)
    assert service.verify("alice", code(secret, clock))["result"] == p.ACCEPTED


def test_attempts_while_locked_are_not_checked_or_counted(service: Service, clock: Clock) -> None:
    enroll(service, clock)
    fail(service, "alice", 5)
    for _ in range(20):
        assert service.verify("alice", "123456")["result"] == p.LOCKED
    assert service.status("alice")["failures"] == 5


def test_each_further_failure_doubles_the_lock(service: Service, clock: Clock) -> None:
    enroll(service, clock)
    fail(service, "alice", 5)
    expected = [60, 120, 240, 480, 960, 1920, 3600, 3600]
    for seconds in expected:
        clock.advance(4000)
        reply = service.verify("alice", "000000")
        assert reply["result"] == p.REJECTED and reply["retry_after"] == seconds


def test_success_resets_the_count(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    fail(service, "alice", 4)
    assert service.verify("alice", code(secret, clock))["result"] == p.ACCEPTED
    assert service.status("alice")["failures"] == 0
    fail(service, "alice", 4)
    assert service.status("alice")["locked"] is False


def test_hard_lock_after_100_failures_until_unlock(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    for _ in range(100):
        clock.advance(3601)
        service.verify("alice", "000000")
    status = service.status("alice")
    assert status["hard_locked"] is True and status["failures"] == 100
    clock.advance(10 * 365 * 86400)
    assert service.verify("alice", code(secret, clock)) == {
        "result": p.LOCKED,
        "retry_after": None,
        "hard_locked": True,
    }
    service.unlock("alice")
    assert service.status("alice")["failures"] == 0
    assert service.verify("alice", code(secret, clock))["result"] == p.ACCEPTED


def test_replays_count_as_failures(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    current = code(secret, clock)
    service.verify("alice", current)
    for _ in range(4):
        assert service.verify("alice", current)["result"] == p.REPLAYED
    assert service.status("alice")["failures"] == 4


def test_failures_of_one_user_do_not_touch_another(service: Service, clock: Clock) -> None:
    enroll(service, clock, "alice")
    bob_secret, _ = enroll(service, clock, "bob")
    fail(service, "alice", 10)
    assert service.verify("bob", code(bob_secret, clock))["result"] == p.ACCEPTED


# --- recovery codes ---------------------------------------------------------------


def test_recovery_code_works_exactly_once(service: Service, clock: Clock) -> None:
    _, codes = enroll(service, clock)
    first = service.verify("alice", codes[0])
    assert first == {"result": p.ACCEPTED, "method": "recovery", "recovery_codes_left": 7}
    assert service.verify("alice", codes[0])["result"] == p.REPLAYED
    assert service.verify("alice", codes[1].upper().replace("-", " "))["result"] == p.ACCEPTED


def test_recovery_code_of_another_user_is_rejected(service: Service, clock: Clock) -> None:
    _, alice_codes = enroll(service, clock, "alice")
    enroll(service, clock, "bob")
    assert service.verify("bob", alice_codes[0])["result"] == p.REJECTED


def test_recovery_code_is_refused_while_locked(service: Service, clock: Clock) -> None:
    _, codes = enroll(service, clock)
    fail(service, "alice", 5)
    assert service.verify("alice", codes[0])["result"] == p.LOCKED


# --- resync -----------------------------------------------------------------------


def test_resync_finds_a_drifted_clock_and_centres_the_window(
    service: Service, clock: Clock
) -> None:
    secret, _ = enroll(service, clock)
    # The phone runs 5 minutes (10 steps) fast.
    assert service.verify("alice", code(secret, clock, 10))["result"] == p.REJECTED
    reply = service.resync("alice", code(secret, clock, 11), code(secret, clock, 12))
    assert reply == {"result": p.ACCEPTED, "drift": 12, "device": "phone"}
    clock.advance(60)
    assert service.verify("alice", code(secret, clock, 12))["result"] == p.ACCEPTED
    assert service.status("alice")["devices"][0]["drift"] == 12


def test_resync_needs_consecutive_codes_within_ten_minutes(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    assert (
        service.resync("alice", code(secret, clock, 3), code(secret, clock, 5))["result"]
        == p.REJECTED
    )
    assert (
        service.resync("alice", code(secret, clock, 25), code(secret, clock, 26))["result"]
        == p.REJECTED
    )
    assert service.status("alice")["failures"] == 2
    assert service.status("alice")["devices"][0]["drift"] == 0


@pytest.mark.parametrize("period", [15, 60, 120])
def test_resync_reaches_ten_minutes_whatever_the_period(
    service: Service, clock: Clock, period: int
) -> None:
    params = totp.TotpParams("SHA1", 6, period)
    secret = totp.new_secret()
    service.import_secret("alice", secret, params, [])
    step = totp.time_step(clock.now, period)
    reach = -(-600 // period)

    def at(offset: int) -> str:
        return totp.code_at(secret, params, step + offset)

    assert service.resync("alice", at(reach + 1), at(reach + 2))["result"] == p.REJECTED
    assert service.resync("alice", at(reach - 1), at(reach))["result"] == p.ACCEPTED


def test_resync_does_not_reuse_spent_steps(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    assert (
        service.resync("alice", code(secret, clock, 4), code(secret, clock, 5))["result"]
        == p.ACCEPTED
    )
    assert (
        service.resync("alice", code(secret, clock, 4), code(secret, clock, 5))["result"]
        == p.REJECTED
    )
