"""Sliding-window rate limits, driven by a fake clock."""

from __future__ import annotations

import pytest

from arena.errors import UserError
from arena.limits import RateLimited, RateLimiter, RateLimits


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


KEYS = ["session:abc", "ip:hash1"]


def make(messages: int = 3, votes: int = 2, **kwargs: int) -> tuple[RateLimiter, FakeClock]:
    clock = FakeClock()
    return RateLimiter(RateLimits(messages_per_minute=messages, votes_per_hour=votes), clock=clock, **kwargs), clock


def test_messages_over_the_limit_are_refused_with_a_sentence() -> None:
    limiter, clock = make(messages=3)
    for _ in range(3):
        limiter.check_message(KEYS)
        clock.advance(10)
    with pytest.raises(RateLimited) as refused:
        limiter.check_message(KEYS)
    # The first message was 30 s ago, so its slot frees in 30 s.
    assert str(refused.value) == (
        "You are sending messages too fast: the limit is 3 per minute. Please wait 30 seconds."
    )
    assert refused.value.retry_after == pytest.approx(30)
    assert isinstance(refused.value, UserError)


def test_votes_are_limited_per_hour() -> None:
    limiter, clock = make(votes=2)
    limiter.check_vote(KEYS)
    limiter.check_vote(KEYS)
    clock.advance(600)
    with pytest.raises(RateLimited, match=r"voting too fast: the limit is 2 per hour\. Please wait 50 minutes\."):
        limiter.check_vote(KEYS)
    clock.advance(3_000)
    limiter.check_vote(KEYS)


def test_messages_and_votes_are_counted_apart() -> None:
    limiter, _ = make(messages=1, votes=1)
    limiter.check_message(KEYS)
    limiter.check_vote(KEYS)
    with pytest.raises(RateLimited):
        limiter.check_message(KEYS)


def test_window_slides() -> None:
    limiter, clock = make(messages=2)
    limiter.check_message(KEYS)
    clock.advance(40)
    limiter.check_message(KEYS)
    clock.advance(20)  # the first message is now exactly a minute old, so it no longer counts
    limiter.check_message(KEYS)
    with pytest.raises(RateLimited, match="Please wait 40 seconds"):  # the one sent at +40 s frees at +100 s
        limiter.check_message(KEYS)


def test_keys_are_independent() -> None:
    limiter, _ = make(messages=2)
    limiter.check_message(["session:a", "ip:shared"])
    limiter.check_message(["session:b", "ip:shared"])
    # A third session behind the same IP is refused because of the IP key …
    with pytest.raises(RateLimited):
        limiter.check_message(["session:c", "ip:shared"])
    # … while the same sessions from elsewhere still have room.
    limiter.check_message(["session:a", "ip:other"])
    limiter.check_message(["session:c"])


def test_refused_attempts_do_not_count() -> None:
    limiter, clock = make(messages=1)
    limiter.check_message(KEYS)
    for _ in range(5):
        clock.advance(10)
        with pytest.raises(RateLimited):
            limiter.check_message(KEYS)
    clock.advance(10.5)  # 60.5 s after the only counted message
    limiter.check_message(KEYS)


def test_refused_attempt_does_not_count_for_the_other_key() -> None:
    limiter, _ = make(messages=1)
    limiter.check_message(["ip:x"])
    with pytest.raises(RateLimited):
        limiter.check_message(["session:s", "ip:x"])
    limiter.check_message(["session:s"])  # not charged for the refused attempt above


def test_a_key_repeated_in_one_call_counts_once() -> None:
    limiter, _ = make(messages=2)
    limiter.check_message(["ip:x", "ip:x"])
    limiter.check_message(["ip:x"])


def test_short_waits_are_in_seconds_and_never_zero() -> None:
    limiter, clock = make(messages=1)
    limiter.check_message(KEYS)
    clock.advance(59.9)
    with pytest.raises(RateLimited, match=r"Please wait 1 second\.$"):
        limiter.check_message(KEYS)


def test_zero_disables_a_limit() -> None:
    limiter, _ = make(messages=0, votes=0)
    for _ in range(1_000):
        limiter.check_message(KEYS)
        limiter.check_vote(KEYS)
    assert limiter.tracked_keys == 0


def test_negative_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="messages_per_minute"):
        RateLimits(messages_per_minute=-1)


def test_keys_are_forgotten_once_their_windows_pass() -> None:
    limiter, clock = make(messages=5, votes=5)
    for n in range(100):
        limiter.check_message([f"session:{n}", f"ip:{n}"])
    limiter.check_vote(["session:0"])
    assert limiter.tracked_keys == 201
    clock.advance(61)
    limiter.check_message(["session:new"])
    assert limiter.tracked_keys == 2  # session:new for messages, session:0 for votes
    clock.advance(3_600)
    limiter.check_message(["session:newer"])
    assert limiter.tracked_keys == 1


def test_tracked_keys_are_capped() -> None:
    limiter, clock = make(messages=5, max_keys=10)
    for n in range(50):
        limiter.check_message([f"ip:{n}"])
        clock.advance(0.01)
    assert limiter.tracked_keys == 10
    # The oldest keys were dropped, so they start afresh; the newest are still counted.
    for _ in range(4):
        limiter.check_message(["ip:49"])
    with pytest.raises(RateLimited):
        limiter.check_message(["ip:49"])


def test_default_limits() -> None:
    limits = RateLimits()
    assert (limits.messages_per_minute, limits.votes_per_hour) == (20, 120)
    limiter, _ = make(messages=20, votes=120)
    for _ in range(20):
        limiter.check_message(KEYS)
    with pytest.raises(RateLimited, match="the limit is 20 per minute"):
        limiter.check_message(KEYS)
