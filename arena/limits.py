"""Rate limits for anonymous strangers: sliding windows per session and per hashed IP."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from arena.errors import UserError


class RateLimited(UserError):
    """Too many attempts in a window; str(error) states the limit and how long to wait."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        """Keep the wait in seconds too, for a Retry-After header or a countdown."""
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RateLimits:
    """How many messages and votes one key may make; 0 disables a limit."""

    messages_per_minute: int = 20
    votes_per_hour: int = 120

    def __post_init__(self) -> None:
        """Refuse negative limits, which would silently block everyone."""
        for name in ("messages_per_minute", "votes_per_hour"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 (no limit) or more, not {getattr(self, name)}.")


def _duration(seconds: float) -> str:
    """A wait rounded up to what a person can act on: seconds under 90, minutes beyond."""
    if seconds < 90:
        whole = max(1, math.ceil(seconds))
        return f"{whole} second" if whole == 1 else f"{whole} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


class _Window:
    """Recent event times per key for one limit; the caller holds the lock."""

    def __init__(self, *, limit: int, period: float, unit: str, doing: str, max_keys: int) -> None:
        self.limit = limit
        self.period = period
        self.unit = unit
        self.doing = doing
        self.max_keys = max_keys
        # Ordered by each key's last event, oldest first, because every recorded event moves its key to the end
        # (the clock never goes back): expired and least recently active keys are always at the front.
        self.events: OrderedDict[str, deque[float]] = OrderedDict()

    def prune(self, now: float) -> None:
        while self.events:
            key, times = next(iter(self.events.items()))
            if times and times[-1] > now - self.period:
                break
            del self.events[key]

    def attempt(self, keys: Sequence[str], now: float) -> None:
        if self.limit == 0:
            return
        wait = 0.0
        for key in keys:
            times = self.events.get(key)
            if times is None:
                continue
            while times and times[0] <= now - self.period:
                times.popleft()
            if len(times) >= self.limit:
                wait = max(wait, times[-self.limit] + self.period - now)
        if wait > 0:
            # Refused attempts are not recorded, so someone who waits as told is let through.
            raise RateLimited(
                f"You are {self.doing} too fast: the limit is {self.limit} per {self.unit}. "
                f"Please wait {_duration(wait)}.",
                retry_after=wait,
            )
        for key in keys:
            times = self.events.setdefault(key, deque(maxlen=self.limit))
            times.append(now)
            self.events.move_to_end(key)
        while len(self.events) > self.max_keys:
            self.events.popitem(last=False)  # forgetting the least recently active key errs on letting them in


class RateLimiter:
    """Counts messages and votes per key (a session, a hashed IP …) and refuses those over the limits."""

    def __init__(
        self,
        limits: RateLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        """Limits to enforce; a monotonic clock in seconds; how many keys each window may track at most."""
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, not {max_keys}.")
        self._clock = clock
        # Calls come from one event loop today; the lock is cheap insurance for handlers run in worker threads.
        self._lock = threading.Lock()
        self._messages = _Window(
            limit=limits.messages_per_minute, period=60.0, unit="minute", doing="sending messages", max_keys=max_keys
        )
        self._votes = _Window(
            limit=limits.votes_per_hour, period=3600.0, unit="hour", doing="voting", max_keys=max_keys
        )

    def check_message(self, keys: Sequence[str]) -> None:
        """Count one message for every key, or raise RateLimited (and count nothing) if any key is over its limit."""
        self._attempt(self._messages, keys)

    def check_vote(self, keys: Sequence[str]) -> None:
        """Count one vote for every key, or raise RateLimited (and count nothing) if any key is over its limit."""
        self._attempt(self._votes, keys)

    @property
    def tracked_keys(self) -> int:
        """How many keys are held in memory across both windows (a key in both counts twice)."""
        with self._lock:
            return len(self._messages.events) + len(self._votes.events)

    def _attempt(self, window: _Window, keys: Sequence[str]) -> None:
        unique = list(dict.fromkeys(keys))  # the same key twice must not count twice
        with self._lock:
            now = self._clock()
            # Both windows are pruned on every call so a quiet window does not hold memory until its next use.
            self._messages.prune(now)
            self._votes.prune(now)
            window.attempt(unique, now)
