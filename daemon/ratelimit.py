"""Token buckets per key (a peer's uid): how often someone may do something costly.

Bounded in the keys it remembers, so a stream of new uids cannot grow it; a key
forgotten starts again with a full bucket, which only ever errs toward letting an
honest user through.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]
KEYS_KEPT = 4096


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimit:
    """`burst` at once, then one more every `interval` seconds, per key."""

    def __init__(self, burst: int, interval: float, clock: Clock) -> None:
        if burst < 1 or interval <= 0:
            raise ValueError("a rate limit needs a burst of 1 or more and a positive interval")
        self.burst = burst
        self.interval = interval
        self._clock = clock
        self._buckets: OrderedDict[int, _Bucket] = OrderedDict()

    def take(self, key: int) -> float | None:
        """Spend one token: None if there was one, else the seconds until there is."""
        now = self._clock()
        bucket = self._buckets.pop(key, None) or _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) / self.interval)
        bucket.at = now
        self._buckets[key] = bucket
        while len(self._buckets) > KEYS_KEPT:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) * self.interval
