"""Per-key rate limits (off unless ROLLCALL_RATE_LIMIT is set): a token bucket per key, per process."""

from __future__ import annotations

import hashlib
import math
import threading
import time

from rollcall.errors import RollcallError


class TooManyRequests(RollcallError):
    def __init__(self, retry_after: float) -> None:
        super().__init__("Too many requests; slow down.")
        self.retry_after = max(1, math.ceil(retry_after))


class RateLimiter:
    """`count` requests per `seconds` for each key, in bursts of up to `count`."""

    def __init__(self, count: int, seconds: float) -> None:
        self.capacity = float(count)
        self.rate = count / seconds
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        """Count one request for `key`, or raise `TooManyRequests` saying when to come back."""
        name = hashlib.sha256(key.encode()).hexdigest()  # keys are secrets: never kept as they are
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(name, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[name] = (tokens, now)
                raise TooManyRequests((1 - tokens) / self.rate)
            self._buckets[name] = (tokens - 1, now)


class NoLimit:
    def take(self, key: str) -> None:
        return None
