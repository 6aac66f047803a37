"""Per-key rate limits (off unless ROLLCALL_RATE_LIMIT is set): a token bucket per key, per process."""

from __future__ import annotations

import collections
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


class TokenThrottle:
    """Wrong staff tokens, wherever they are tried (the console's sign-in, an API bearer token,
    `/metrics`): at most `count` per client address in any `seconds`; past that, every attempt
    from the address (right or wrong) waits until the oldest failure is `seconds` old. Kept per
    process, like the rate limits (`--workers N` allows N times as many), which is enough to make
    guessing a 32-character token hopeless."""

    def __init__(self, count: int, seconds: float) -> None:
        self.count, self.seconds = count, seconds
        self._failures: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> collections.deque[float]:
        failures = self._failures.setdefault(address, collections.deque())
        while failures and failures[0] <= now - self.seconds:
            failures.popleft()
        return failures

    def check(self, address: str) -> None:
        """`TooManyRequests` while the address has used up its failures."""
        now = time.monotonic()
        with self._lock:
            failures = self._recent(address, now)
            if len(failures) >= self.count:
                raise TooManyRequests(failures[0] + self.seconds - now)
            if not failures:
                self._failures.pop(address, None)

    def failed(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(address, now).append(now)
