"""Token buckets per uid, with an injected clock."""

from __future__ import annotations

import pytest

from support.fakes import Clock
from twofad import ratelimit
from twofad.ratelimit import RateLimit


def test_a_burst_then_one_per_interval() -> None:
    clock = Clock()
    limit = RateLimit(3, 10.0, clock)
    assert [limit.take(1000) for _ in range(3)] == [None, None, None]
    assert limit.take(1000) == pytest.approx(10.0)
    clock.advance(4)
    assert limit.take(1000) == pytest.approx(6.0)
    clock.advance(6)
    assert limit.take(1000) is None
    assert limit.take(1000) is not None


def test_each_key_has_its_own_bucket() -> None:
    limit = RateLimit(1, 60.0, Clock())
    assert limit.take(1000) is None
    assert limit.take(1000) is not None
    assert limit.take(1001) is None


def test_a_bucket_never_holds_more_than_the_burst() -> None:
    clock = Clock()
    limit = RateLimit(2, 1.0, clock)
    clock.advance(1_000_000)
    assert [limit.take(5) is None for _ in range(3)] == [True, True, False]


def test_the_keys_remembered_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "KEYS_KEPT", 10)
    limit = RateLimit(1, 60.0, Clock())
    for key in range(100):
        limit.take(key)
    assert len(limit._buckets) == 10


@pytest.mark.parametrize(("burst", "interval"), [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_a_limit_that_allows_nothing_is_refused(burst: int, interval: float) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        RateLimit(burst, interval, Clock())
