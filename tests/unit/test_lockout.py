from __future__ import annotations

import math

import pytest

from twofad.lockout import (
    MAX_FORGIVEN,
    Failure,
    LockoutPolicy,
    LockState,
    after_failure,
    after_success,
    decode_recent,
    encode_recent,
    origin_of,
    retry_after,
    seconds_to_show,
)

POLICY = LockoutPolicy(after=5, first=30, maximum=3600, hard_after=100)


def _fail(times: int, now: float = 0.0) -> LockState:
    state = LockState(0, None, False)
    for _ in range(times):
        state = after_failure(POLICY, state, now)
    return state


def test_no_lock_before_the_threshold() -> None:
    state = _fail(4)
    assert state.failures == 4 and retry_after(state, 0) is None


@pytest.mark.parametrize(
    ("failures", "seconds"),
    [(5, 30), (6, 60), (7, 120), (8, 240), (11, 1920), (12, 3600), (99, 3600)],
)
def test_lock_doubles_from_the_first_up_to_the_cap(failures: int, seconds: float) -> None:
    assert retry_after(_fail(failures), 0) == seconds


def test_hard_lock_at_the_hard_threshold_never_expires() -> None:
    state = _fail(100)
    assert state.hard_locked
    assert retry_after(state, 10**12) == math.inf


def test_lock_expires_with_time() -> None:
    state = _fail(5, now=100)
    assert retry_after(state, 129.5) == pytest.approx(0.5)
    assert retry_after(state, 130) is None


def test_seconds_are_rounded_up_and_never_zero() -> None:
    assert seconds_to_show(0.2) == 1
    assert seconds_to_show(29.01) == 30


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        LockoutPolicy(after=0)
    with pytest.raises(ValueError):
        LockoutPolicy(after=10, hard_after=5)
    with pytest.raises(ValueError):
        LockoutPolicy(first=0)
    with pytest.raises(ValueError):
        LockoutPolicy(forgive_within=-1)


# --- the lifetime count -------------------------------------------------------------

HOME = origin_of("sshd", "192.0.2.10")
ELSEWHERE = origin_of("sshd", "203.0.113.9")


def _fail_from(state: LockState, origin: str, times: int, now: float) -> LockState:
    for _ in range(times):
        state = after_failure(POLICY, state, now, origin)
    return state


def test_a_success_ends_the_back_off_but_keeps_strikes_it_does_not_forgive() -> None:
    state = _fail_from(LockState(0, None, False), ELSEWHERE, 7, now=0)
    assert (state.failures, state.strikes) == (7, 7) and retry_after(state, 0) == 120
    state = after_success(POLICY, state, 200, HOME)
    assert (state.failures, state.strikes) == (0, 7)
    assert retry_after(state, 200) is None and state.recent == ()


def test_strikes_hard_lock_however_the_failures_are_spread() -> None:
    state = LockState(0, None, False)
    for _ in range(33):
        state = _fail_from(state, ELSEWHERE, 3, now=0)
        state = after_success(POLICY, state, 1, HOME)
    assert state.strikes == 99 and not state.hard_locked
    state = after_failure(POLICY, state, 2, ELSEWHERE)
    assert state.failures == 1 and state.hard_locked and retry_after(state, 10**12) == math.inf


def test_the_owners_typos_from_the_same_origin_are_forgiven() -> None:
    state = _fail_from(LockState(0, None, False), HOME, 2, now=1000)
    assert after_success(POLICY, state, 1000 + 599, HOME).strikes == 0


def test_no_more_than_after_minus_one_are_forgiven_per_success() -> None:
    state = _fail_from(LockState(0, None, False), HOME, 9, now=0)
    assert len(state.recent) == POLICY.after - 1  # only those that could be forgiven are kept
    assert after_success(POLICY, state, 3600, HOME).strikes == 9  # too late: none
    state = LockState(9, None, False, 9, state.recent)
    assert after_success(POLICY, state, 60, HOME).strikes == 9 - (POLICY.after - 1)


@pytest.mark.parametrize(
    "origin",
    [ELSEWHERE, origin_of("login", "192.0.2.10"), origin_of("sshd", None), origin_of(None, None)],
)
def test_failures_from_another_origin_are_never_forgiven(origin: str) -> None:
    state = _fail_from(LockState(0, None, False), origin, 3, now=0)
    assert after_success(POLICY, state, 10, HOME).strikes == 3


def test_failures_older_than_the_window_are_not_forgiven() -> None:
    state = _fail_from(LockState(0, None, False), HOME, 1, now=0)
    assert after_success(POLICY, state, 601, HOME).strikes == 1
    off = LockoutPolicy(forgive_within=0)
    state = after_failure(off, LockState(0, None, False), 0, HOME)
    assert after_success(off, state, 0, HOME).strikes == 1


def test_only_the_newest_failures_are_kept_so_a_flood_pushes_the_typo_out() -> None:
    state = after_failure(POLICY, LockState(0, None, False), 0, HOME)
    state = _fail_from(state, ELSEWHERE, POLICY.after - 1, now=1)
    assert [f.origin for f in state.recent] == [ELSEWHERE] * (POLICY.after - 1)
    assert after_success(POLICY, state, 2, HOME).strikes == POLICY.after


@pytest.mark.parametrize(("after", "forgivable"), [(1, 1), (2, 1), (5, 4), (11, 10), (1000, 10)])
def test_forgivable_is_after_minus_one_within_bounds(after: int, forgivable: int) -> None:
    assert LockoutPolicy(after=after, hard_after=1000).forgivable == forgivable
    assert forgivable <= MAX_FORGIVEN


def test_origins_differ_by_service_and_host_and_have_a_fixed_size() -> None:
    names = {origin_of(s, h) for s in ("sshd", "login", None) for h in ("a", "b", "", None)}
    assert len(names) == 12 and {len(name) for name in names} == {16}


def test_kept_failures_round_trip_and_garbage_forgives_nothing() -> None:
    recent = (Failure(1.5, HOME), Failure(2.0, ELSEWHERE))
    assert decode_recent(encode_recent(recent)) == recent
    assert encode_recent(()) is None and decode_recent(None) == ()
    for garbage in ("not json", "{}", "[1, 2]", '[["x", "y", "z"]]', "[[1, 2]]", "null"):
        assert decode_recent(garbage) == ()
