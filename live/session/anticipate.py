"""Live anticipation: a scheduled change's first frame is on screen at its beat, not one render late.

Shared by the render loop (worker thread) and the display loop (main thread), on the source's clock:

- the render loop asks `seen_at(t)` — when a render started now will be on screen (its start plus the
  measured p95 render latency of this renderer and size, plus half a display frame) — renders the
  direction of *that* moment, and `tag`s the frame with how many of the schedule's changes it shows;
- the display loop and the router route a change (its knobs and look, a quantised switch's spec) when
  `routed_by(t)` reaches its time: a render can only start once the one in progress is done, so a
  change routed now is first rendered up to one render period later (the p95 of the gaps between
  render starts), then seen a latency after that;
- the display loop `arrived` each frame (its latency goes into the meter) and `hold`s a frame that
  brings a new change until that change's time (less half a display frame), so a render that was
  faster than the p95 does not show the new look early; `landed` records when each change was first
  on screen (`SessionReport.change_onsets`).

A quantised preset or playlist switch joins the changes when the router applies it (`add_change`,
with its soft cut's length): its first frame is held like a key's, and the display loop begins the
soft cut when that frame goes up, half the cut before the downbeat, so the cut is centred on it.

Live drops (engine/directing/drops.py): a build's drop predicted on a downbeat (`prepare_drop`, the
feature loop) is rendered ahead — the render that `routed_by` says is seen at the downbeat, with the
music pushed to high arousal — into a held slot, not shown. The feature loop judges at the downbeat
whether the drop came (the audio jumped) or fizzled (`judge_drop`); the display loop cuts to the held
frame on the first display frame the jump is heard in, or discards it. After a drop that came, renders
seen within its bar show the drop look too, and older renders of the normal look are not shown.

With `compensate` off (SessionConfig.anticipate = False) renders show the direction of their start,
the old way: a change then appears one render latency late.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from dataclasses import dataclass

from engine.directing.quantize import LatencyMeter
from engine.types import Frame


@dataclass(frozen=True)
class Tag:
    look: int  # how many of the direction's changes the frame shows
    started: float  # the source clock when its render started
    drop: bool = False  # it shows a drop's look


@dataclass
class LiveDrop:
    """A build's drop, predicted on the downbeat `at`."""

    at: float
    bar_s: float
    state: str = "pending"  # pending → came | fizzled
    rendered: bool = False  # its look was rendered into the held slot
    decided: float = 0.0  # the source clock when it came or fizzled


class Anticipation:
    def __init__(self, display_frame_s: float, compensate: bool = True) -> None:
        self.half_frame = 0.5 * display_frame_s
        self.compensate = compensate
        self.meter = LatencyMeter()
        self.periods = LatencyMeter()  # seconds between render starts, per renderer and size
        self._last_start: float | None = None
        self.key: tuple[str, int, int] = ("", 0, 0)
        self.change_times: list[float] = []
        self.change_fades: list[float] = []  # a soft cut's length per change (0: none)
        self._tags: deque[tuple[Frame, Tag]] = deque(maxlen=16)
        self.lock = self._lock = threading.RLock()  # the display loop routes a change and its look under it
        self.routed_look = 0  # the look of the preset the display loop last routed to the stages
        self.drop: LiveDrop | None = None

    def set_changes(self, times: list[float]) -> None:
        with self._lock:
            self.change_times = sorted(times)
            self.change_fades = [0.0] * len(times)

    def add_change(self, at: float, fade_s: float = 0.0) -> None:
        """A switch the router applies now, to be first on screen at `at` (a soft cut of `fade_s` begins
        then); renders started from now on show it (call with `lock` held, with the new spec's put)."""
        with self._lock:
            i = bisect.bisect_right(self.change_times, at)
            self.change_times.insert(i, at)
            self.change_fades.insert(i, fade_s)
            self.routed_look = max(self.routed_look + 1, i + 1)

    def fade(self, k: int) -> float:
        """The soft cut change `k` begins (0: none)."""
        with self._lock:
            return self.change_fades[k] if 0 <= k < len(self.change_fades) else 0.0

    def seen_at(self, t: float, key: tuple[str, int, int]) -> float:
        """Render loop: the moment a render started at `t` should show."""
        if not self.compensate:
            return t
        with self._lock:
            self.key = key
            return t + self.meter.p95(key) + self.half_frame

    def routed_by(self, t: float) -> float:
        """Display loop, router: the latest moment the first frame of a change routed at `t` is seen
        (the render in progress finishes first, then the change's render takes its latency)."""
        if not self.compensate:
            return t
        with self._lock:
            return t + self.periods.p95(self.key) + self.meter.p95(self.key) + self.half_frame

    def prepare_drop(self, at: float, bar_s: float) -> None:
        """Feature loop: a build predicts a drop on the downbeat `at`."""
        with self._lock:
            self.drop = LiveDrop(at, bar_s)

    def judge_drop(self, came: bool, now: float) -> None:
        """Feature loop: at the downbeat the drop came (the audio jumped), or it fizzled."""
        with self._lock:
            if self.drop is not None and self.drop.state == "pending":
                self.drop.state, self.drop.decided = ("came" if came else "fizzled"), now

    def drop_look(self, t: float, seen: float) -> tuple[bool, bool]:
        """Render loop, a render starting at `t` to be seen at `seen`: (does it show the drop look, is it
        the held render of a drop not yet judged)."""
        with self._lock:
            d = self.drop
            if d is None:
                return False, False
            if d.state == "pending" and not d.rendered and self.routed_by(t) >= d.at:
                d.rendered = True
                return True, True
            return d.state == "came" and d.at <= seen < d.at + d.bar_s, False

    def look_at(self, t: float) -> int:
        with self._lock:
            return bisect.bisect_right(self.change_times, t)

    def tag(self, frame: Frame, look: int, started: float, drop: bool = False) -> None:
        with self._lock:
            self._tags.append((frame, Tag(look, started, drop)))
            if self._last_start is not None:
                self.periods.add(self.key, started - self._last_start)
            self._last_start = started

    def arrived(self, frame: Frame, now: float) -> Tag | None:
        """Display loop: a frame has reached it; its latency is measured (to arrival, not to a hold)."""
        with self._lock:
            for f, tag in self._tags:
                if f is frame:
                    self.meter.add(self.key, now - tag.started)
                    return tag
        return None

    def due(self, look: int) -> float:
        """When a frame showing `look` changes may be on screen: its newest change's time, less half a
        display frame (so it is the frame nearest the change); 0 without changes."""
        with self._lock:
            return self.change_times[look - 1] - self.half_frame if 0 < look <= len(self.change_times) else 0.0

    def intended(self, k: int) -> float:
        with self._lock:
            return self.change_times[k]
