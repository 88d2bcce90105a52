from __future__ import annotations

import math

import pytest

from twofad.lockout import LockoutPolicy, LockState, after_failure, retry_after, seconds_to_show

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
