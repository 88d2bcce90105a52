"""The operations, driven with an injected clock: replay, lock-out, recovery, enrollment."""

from __future__ import annotations

import pytest

from pam_twofa import protocol as p
from support.fakes import Clock
from twofad import totp
from twofad.policy import Policy
from twofad.service import Service, ServiceError
from twofad.store import Conflict

PARAMS = totp.TotpParams()


def code(secret: str, clock: Clock, steps: int = 0) -> str:
    return totp.code_at(secret, PARAMS, totp.time_step(clock.now, 30) + steps)


def enroll(service: Service, clock: Clock, user: str = "alice") -> tuple[str, list[str]]:
    """Enroll and confirm `user`; return the secret and the recovery codes."""
    secret = service.enroll_begin(user)["secret"]
    codes = service.enroll_confirm(user, code(secret, clock))["recovery_codes"]
    clock.advance(30)  # the confirming step is spent; start the test on a fresh one
    return secret, codes


def fail(service: Service, user: str, times: int) -> list[dict[str, object]]:
    return [service.verify(user, "000000" if i % 2 else "999999") for i in range(times)]


# --- enrollment ---------------------------------------------------------------------


def test_begin_returns_secret_uri_and_qr(service: Service) -> None:
    data = service.enroll_begin("alice")
    assert len(data["secret"]) == 32
    assert data["uri"] == f"otpauth://totp/testhost:alice?secret={data['secret']}&issuer=testhost"
    assert "█" in data["qr"]
    assert service.status("alice")["enrollment"] == "pending"


def test_pending_user_is_not_prompted_and_not_enrolled(service: Service) -> None:
    service.enroll_begin("alice")
    assert service.check("alice")["action"] == p.SKIP
    assert service.verify("alice", "123456")["result"] == p.NOT_ENROLLED


def test_begin_again_replaces_the_pending_secret(service: Service, clock: Clock) -> None:
    first = service.enroll_begin("alice")["secret"]
    second = service.enroll_begin("alice")["secret"]
    assert first != second
    with pytest.raises(ServiceError) as refused:
        service.enroll_confirm("alice", code(first, clock))
    assert refused.value.code == p.INVALID_CODE
    assert service.enroll_confirm("alice", code(second, clock))["recovery_codes"]


def test_begin_never_replaces_an_active_secret(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    with pytest.raises(ServiceError) as refused:
        service.enroll_begin("alice")
    assert refused.value.code == p.ALREADY_ENROLLED
    assert service.verify("alice", code(secret, clock))["result"] == p.ACCEPTED


def test_confirm_hands_out_recovery_codes_once(service: Service, clock: Clock) -> None:
    secret = service.enroll_begin("alice")["secret"]
    first = service.enroll_confirm("alice", code(secret, clock))
    assert len(first["recovery_codes"]) == 8
    assert len(set(first["recovery_codes"])) == 8
    with pytest.raises(ServiceError) as again:
        service.enroll_confirm("alice", code(secret, clock, 1))
    assert again.value.code == p.NOT_ENROLLED
    assert "recovery_codes" not in service.status("alice")


def test_confirm_consumes_its_time_step(service: Service, clock: Clock) -> None:
    secret = service.enroll_begin("alice")["secret"]
    used = code(secret, clock)
    service.enroll_confirm("alice", used)
    assert service.verify("alice", used)["result"] == p.REPLAYED


def test_unknown_user_cannot_enroll(service: Service) -> None:
    with pytest.raises(ServiceError) as refused:
        service.enroll_begin("mallory")
    assert refused.value.code == p.UNKNOWN_USER


def test_confirm_without_begin_is_not_enrolled(service: Service) -> None:
    with pytest.raises(ServiceError) as refused:
        service.enroll_confirm("bob", "123456")
    assert refused.value.code == p.NOT_ENROLLED


# --- verification and replay ----------------------------------------------------------


def test_accepts_the_current_code_once(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    current = code(secret, clock)
    assert service.verify("alice", current) == {"result": p.ACCEPTED, "method": "totp"}
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


def test_unknown_user_is_rejected_not_revealed(service: Service) -> None:
    assert service.check("mallory")["action"] == p.PROMPT
    assert service.verify("mallory", "123456") == {"result": p.REJECTED}


def test_an_unknown_name_locks_out_like_an_account(service: Service, clock: Clock) -> None:
    """Lock-out replies must not tell a name with no account from a real one."""
    enroll(service, clock)
    for _ in range(4):
        assert service.verify("alice", "000000")["result"] == p.REJECTED
        assert service.verify("mallory", "000000")["result"] == p.REJECTED
    real = service.verify("alice", "000000")
    fake = service.verify("mallory", "000000")
    assert real == fake
    assert fake["retry_after"] == 30 and fake["hard_locked"] is False
    assert service.check("alice") == service.check("mallory")
    assert service.check("mallory")["action"] == p.LOCKED
    assert service.verify("mallory", "123456") == service.verify("alice", "123456")
    clock.advance(31)
    assert service.check("mallory")["action"] == p.PROMPT
    assert service.verify("mallory", "000000")["retry_after"] == 60


def test_unknown_names_remembered_are_bounded(service: Service) -> None:
    from twofad import service as service_module

    for index in range(service_module.UNKNOWN_LOCKS_KEPT + 50):
        service.verify(f"nobody{index}", "000000")
    assert len(service._unknown_locks) == service_module.UNKNOWN_LOCKS_KEPT
    assert "nobody0" not in service._unknown_locks


def test_known_user_without_2fa_is_skipped(service: Service) -> None:
    assert service.check("bob")["action"] == p.SKIP
    assert service.verify("bob", "123456")["result"] == p.NOT_ENROLLED


def test_enrolled_user_is_prompted(service: Service, clock: Clock) -> None:
    enroll(service, clock)
    assert service.check("alice", "sshd", "192.0.2.1")["action"] == p.PROMPT


# --- lock-out --------------------------------------------------------------------------


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


def test_unlock_lifts_a_timed_lock(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    fail(service, "alice", 5)
    service.unlock("alice")
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


# --- recovery codes --------------------------------------------------------------------


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


def test_regenerate_replaces_all_codes(service: Service, clock: Clock) -> None:
    _, old = enroll(service, clock)
    new = service.regenerate_recovery_codes("alice")["recovery_codes"]
    assert len(new) == 8 and not set(new) & set(old)
    assert service.verify("alice", old[0])["result"] == p.REJECTED
    assert service.verify("alice", new[0])["result"] == p.ACCEPTED


def test_regenerate_claims_the_row_so_a_racing_writer_starts_over(
    service: Service, clock: Clock
) -> None:
    enroll(service, clock)
    with service.store.transaction():
        before = service.store.get_user("alice")
    assert before is not None
    service.regenerate_recovery_codes("alice")
    with pytest.raises(Conflict), service.store.transaction():
        service.store.update_user(before, failures=0)


def test_regenerate_for_oneself_needs_a_current_code(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    with pytest.raises(ServiceError) as refused:
        service.regenerate_recovery_codes("alice", needs_proof=True)
    assert refused.value.code == p.UNAUTHORIZED
    with pytest.raises(ServiceError) as wrong:
        service.regenerate_recovery_codes("alice", "000000", needs_proof=True)
    assert wrong.value.code == p.INVALID_CODE
    assert service.status("alice")["failures"] == 1  # a wrong proof counts as a failure
    assert service.regenerate_recovery_codes("alice", code(secret, clock), needs_proof=True)


# --- disable, status, resync -----------------------------------------------------------


def test_disable_removes_secret_and_codes(service: Service, clock: Clock) -> None:
    _, codes = enroll(service, clock)
    service.disable("alice")
    assert service.status("alice")["enrollment"] == "none"
    assert service.check("alice")["action"] == p.SKIP
    assert service.verify("alice", codes[0])["result"] == p.NOT_ENROLLED


def test_self_disable_needs_a_code_once_active(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    with pytest.raises(ServiceError):
        service.disable("alice", needs_proof=True)
    assert service.status("alice")["enrollment"] == "active"
    service.disable("alice", code(secret, clock), needs_proof=True)
    assert service.status("alice")["enrollment"] == "none"


def test_self_disable_of_a_pending_setup_needs_no_code(service: Service) -> None:
    service.enroll_begin("alice")
    service.disable("alice", needs_proof=True)
    assert service.status("alice")["enrollment"] == "none"


def test_disable_unknown_is_an_error(service: Service) -> None:
    with pytest.raises(ServiceError) as none:
        service.disable("bob")
    assert none.value.code == p.NOT_ENROLLED
    with pytest.raises(ServiceError) as unknown:
        service.disable("mallory")
    assert unknown.value.code == p.UNKNOWN_USER


def test_status_reports_lock_and_counts(service: Service, clock: Clock) -> None:
    enroll(service, clock)
    fail(service, "alice", 5)
    clock.advance(10)
    status = service.status("alice")
    assert (status["state"], status["enrollment"]) == ("locked", "active")
    assert status["locked"] is True and status["retry_after"] == 20
    assert status["recovery_codes_left"] == 8
    assert (status["algorithm"], status["digits"], status["period"]) == ("SHA1", 6, 30)
    assert [s["user"] for s in service.list_users()["users"]] == ["alice"]


def test_resync_finds_a_drifted_clock_and_centres_the_window(
    service: Service, clock: Clock
) -> None:
    secret, _ = enroll(service, clock)
    # The phone runs 5 minutes (10 steps) fast.
    assert service.verify("alice", code(secret, clock, 10))["result"] == p.REJECTED
    reply = service.resync("alice", code(secret, clock, 11), code(secret, clock, 12))
    assert reply == {"result": p.ACCEPTED, "drift": 12}
    clock.advance(60)
    assert service.verify("alice", code(secret, clock, 12))["result"] == p.ACCEPTED
    assert service.status("alice")["drift"] == 12


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
    assert service.status("alice")["drift"] == 0


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


def test_per_user_parameters_are_fixed_at_enrollment(service: Service, clock: Clock) -> None:
    secret = service.enroll_begin("alice")["secret"]
    service.policy = Policy(issuer="x", totp=totp.TotpParams("SHA256", 8, 60))
    # The pending secret keeps the parameters its QR code announced.
    service.enroll_confirm("alice", code(secret, clock))
    status = service.status("alice")
    assert (status["algorithm"], status["digits"]) == ("SHA1", 6)
