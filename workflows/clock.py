"""The one clock of rsvpmail.

Every rule asks `now()` and nothing else for the time, so that tests can freeze it
(time-machine patches `datetime.now`, which the default clock reads) and the demo can run a
month of an event's timeline in minutes by installing an accelerated clock.
"""

from __future__ import annotations

import threading
import time as _time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


_lock = threading.Lock()
_clock: Clock = system_clock


def now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return _clock()


def set_clock(clock: Clock) -> Clock:
    """Install `clock` for the whole process; returns the previous one so callers can restore."""
    global _clock
    with _lock:
        previous, _clock = _clock, clock
    return previous


class AcceleratedClock:
    """A clock that starts at `start` and runs `speed` times faster than real time.

    Used by the demo: at speed 20,000 a month passes in about two minutes. It is monotonic,
    so jobs never see time go backwards.
    """

    def __init__(self, start: datetime, speed: float) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.start = start.astimezone(UTC)
        self.speed = speed
        self._t0 = _time.monotonic()

    def __call__(self) -> datetime:
        elapsed = _time.monotonic() - self._t0
        return self.start + timedelta(seconds=elapsed * self.speed)

    def real_seconds_until(self, moment: datetime) -> float:
        """How long in real seconds until the clock shows `moment` (0 when already past)."""
        return max(0.0, (moment - self()).total_seconds() / self.speed)
