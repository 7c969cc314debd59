"""The live loops' time: the wall clock in a show, a stepped clock where timing must not depend on load.

The render loop (its pacing, render durations, the watchdog), the display loop (its frame pacing,
`now`, the duration) and whatever is injected beside them (a fake renderer's delay, a fake source's
playback position) read one `Clock`:

- `Clock` (the default): `time.monotonic`, the display paced by pygame's clock.
- `SteppedClock`: time moves only when the display loop ends a frame (`tick`), by exactly one display
  frame, and only once the other loops have done what that moment asks of them: the hooks that feed
  new audio ran (`advanced`), the conditions the harness names hold (`settled`, e.g. the feature loop
  consumed that audio), the sleepers whose deadline came were woken, and every enlisted thread is
  asleep on this clock again or parked on something not yet there. A show run on it does the same
  thing, frame for frame, on a quiet machine and on one with every core busy — what the live
  anticipation tests and benchmarks need (tests/test_anticipation.py). It is never used in a show.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)


class Clock:
    """The wall clock: what a show runs on."""

    def __init__(self) -> None:
        self._pacer: object | None = None

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Wait `seconds` or until `event` is set; whether it is set."""
        return event.wait(max(0.0, seconds))

    def parked(self, ready: Callable[[], bool]) -> contextlib.AbstractContextManager[None]:
        """Around a wait on something other than this clock (a slot); `ready` says whether what it
        waits for is there (a stepped clock does not move on while a parked thread has work)."""
        return contextlib.nullcontext()

    def enlist(self, thread: threading.Thread) -> None:
        """A loop thread whose work a stepped clock waits for before it moves on."""

    def tick(self, fps: float) -> None:
        """The display loop's frame pacing: at most `fps` frames a second."""
        import pygame

        if self._pacer is None:
            self._pacer = pygame.time.Clock()
        assert isinstance(self._pacer, pygame.time.Clock)
        self._pacer.tick(fps)

    def close(self) -> None:
        """The show ends: wake whoever sleeps on this clock."""



class SteppedClock(Clock):
    """Time that advances one display frame per `tick`, after the loops have settled (see the module
    docstring). `settle_timeout_s` (real seconds) bounds a wait for a loop that never settles (a hung
    render): the clock then moves on and says so in the log."""

    def __init__(self, settle_timeout_s: float = 60.0) -> None:
        super().__init__()
        self.settle_timeout_s = settle_timeout_s
        self.advanced: list[Callable[[float], None]] = []  # called with the new time on every tick
        self.settled: list[Callable[[], bool]] = []  # all true before sleepers are woken
        self._cond = threading.Condition()
        self._now = 0.0
        self._released = 0.0  # sleepers with a deadline up to this may run
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._asleep: dict[int, float] = {}  # thread ident → deadline
        self._waiting_on: dict[int, Callable[[], bool]] = {}  # thread ident → is what it waits for there
        self.ticks = 0
        self.late_ticks = 0  # ticks that moved on after settle_timeout_s

    def monotonic(self) -> float:
        with self._cond:
            return self._now

    def sleep(self, seconds: float) -> None:
        self._sleep_until(self.monotonic() + max(0.0, seconds), None)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        self._sleep_until(self.monotonic() + max(0.0, seconds), event)
        return event.is_set()

    def _sleep_until(self, deadline: float, event: threading.Event | None) -> None:
        me = threading.get_ident()
        with self._cond:
            self._asleep[me] = deadline
            try:
                while self._released < deadline - 1e-9 and not self._closed and not (event is not None and event.is_set()):
                    self._cond.wait(0.05)
            finally:
                del self._asleep[me]
                self._cond.notify_all()

    @contextlib.contextmanager
    def _parked(self, ready: Callable[[], bool]) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            self._waiting_on[me] = ready
        try:
            yield
        finally:
            with self._cond:
                del self._waiting_on[me]
                self._cond.notify_all()

    def parked(self, ready: Callable[[], bool]) -> contextlib.AbstractContextManager[None]:
        return self._parked(ready)

    def enlist(self, thread: threading.Thread) -> None:
        with self._cond:
            self._threads.append(thread)

    def tick(self, fps: float) -> None:
        with self._cond:
            self._now = round(self._now + 1.0 / max(1e-3, fps), 9)
            now = self._now
        self.ticks += 1
        for hook in self.advanced:
            hook(now)
        deadline = time.monotonic() + self.settle_timeout_s
        if not self._until(lambda: all(s() for s in self.settled), deadline):
            return
        with self._cond:
            self._released = now
            self._cond.notify_all()
        self._until(lambda: all(self._idle(t, now) for t in list(self._threads)), deadline)

    def _idle(self, thread: threading.Thread, now: float) -> bool:
        if not thread.is_alive() or thread.ident is None:
            return True
        with self._cond:
            if self._asleep.get(thread.ident, now) > now + 1e-9:
                return True
            ready = self._waiting_on.get(thread.ident)
        return ready is not None and not ready()

    def _until(self, condition: Callable[[], bool], deadline: float) -> bool:
        while not condition():
            if self._closed:
                return False
            if time.monotonic() > deadline:
                self.late_ticks += 1
                log.warning("stepped clock: the loops did not settle within %.0f s at %.3f; moving on",
                            self.settle_timeout_s, self._now)
                return False
            time.sleep(0.0005)
        return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
