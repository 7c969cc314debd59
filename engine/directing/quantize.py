"""Changes that land on the beat: when a queued change happens, and how early its render must start.

Every change the music or the performer asks for (a preset or playlist switch, a schedule key, a
section change, a drop, a cue) is *queued* for the next musical boundary a preset chooses
(`[transitions] quantize`):

    "off"       at once (the request's own time)
    "beat"      the next beat
    "downbeat"  the next downbeat (bar line)
    "bar:N"     the next bar line that starts a group of N bars (bar 1, N+1, 2N+1, …)

and its render is started early by the *measured* render latency (`LatencyMeter`: a running p95
per renderer and size, of start → first frame on screen), so the first frame of the new look is
seen at the boundary, not one render late. `land` works on either grid the project has: the live
tracker's phase-locked `BeatGrid` (engine.types) or a track's `BarGrid` of known beats
(engine.directing.grid). Everything here is pure: the caller owns the clock.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass

import numpy as np

from engine.directing.grid import EPS, BarGrid
from engine.types import BeatGrid

QUANTIZE_PATTERN = r"^(off|beat|downbeat|bar:([1-9]|[1-9][0-9]))$"
MAX_BEATS_AHEAD = 256  # a change is never queued further than this many beats out


@dataclass(frozen=True)
class Quantize:
    unit: str = "off"  # off | beat | downbeat | bar
    bars: int = 1  # bar:N

    @classmethod
    def parse(cls, text: str) -> Quantize:
        m = re.match(QUANTIZE_PATTERN, text.strip())
        if m is None:
            raise ValueError(f"quantize must be off, beat, downbeat or bar:N (N = 1..99), not {text!r}")
        if m.group(2):
            return cls("bar", int(m.group(2)))
        return cls(m.group(1))

    @property
    def on(self) -> bool:
        return self.unit != "off"

    def __str__(self) -> str:
        return f"bar:{self.bars}" if self.unit == "bar" else self.unit


def land(q: Quantize, t: float, grid: BeatGrid | BarGrid | None) -> float:
    """When a change asked for at `t` happens: the first boundary of `q` at or after `t` (within a
    millisecond). `t` itself when `q` is off or the grid has no beats yet; a grid whose bar lines are
    unknown counts bars from its first beat (BarGrid) or its anchor (BeatGrid)."""
    if not q.on or grid is None:
        return t
    if isinstance(grid, BarGrid):
        return _land_bars(q, t, grid)
    return _land_live(q, t, grid)


def _land_live(q: Quantize, t: float, g: BeatGrid) -> float:
    if g.anchor is None:
        return t
    k = math.ceil((t - g.anchor) / g.period - EPS / g.period)  # the first beat at or after t
    if q.unit == "beat":
        return g.anchor + k * g.period
    per = g.beats_per_bar * (q.bars if q.unit == "bar" else 1)
    first = -g.anchor_in_bar if g.downbeat_confidence > 0 else 0  # beat index of a bar line
    k = first + math.ceil((k - first) / per) * per
    return g.anchor + k * g.period


def _land_bars(q: Quantize, t: float, g: BarGrid) -> float:
    if not g.beats:
        return t
    if q.unit == "beat":
        return g.next_beat(t)
    n = q.bars if q.unit == "bar" else 1
    lo, hi = 1, 2
    while (g.bar_time(hi) or 0.0) < t - EPS and hi < 1 << 30:  # bar_time is increasing: search it
        lo, hi = hi, hi * 2
    while lo < hi:
        mid = (lo + hi) // 2
        if (g.bar_time(mid) or 0.0) < t - EPS:
            lo = mid + 1
        else:
            hi = mid
    bar = lo + (-(lo - 1)) % n  # the next bar 1 + m·n
    landed = g.bar_time(bar)
    return t if landed is None else landed


def beats_until(t: float, at: float, grid: BeatGrid | BarGrid | None) -> int:
    """Whole beats from `t` until a change at `at` lands (the HUD's count-down), at least 0."""
    if at <= t:
        return 0
    if isinstance(grid, BarGrid) and grid.beats:
        period = grid.period()
    elif isinstance(grid, BeatGrid) and grid.anchor is not None:
        period = grid.period
    else:
        return 0
    return max(0, math.ceil((at - t) / period - 1e-6))


class LatencyMeter:
    """Render latency per (renderer, width, height): seconds from a render's start until its frame is
    first on screen, the last `keep` of them; `p95` is what a change's render is started early by."""

    def __init__(self, keep: int = 64) -> None:
        self.keep = keep
        self._seen: dict[tuple[str, int, int], deque[float]] = {}

    def add(self, key: tuple[str, int, int], seconds: float) -> None:
        if math.isfinite(seconds) and seconds >= 0:
            self._seen.setdefault(key, deque(maxlen=self.keep)).append(float(seconds))

    def p95(self, key: tuple[str, int, int]) -> float:
        """0 before the first measurement (no latency known: no lead)."""
        seen = self._seen.get(key)
        return float(np.percentile(np.asarray(seen), 95)) if seen else 0.0

    def count(self, key: tuple[str, int, int]) -> int:
        return len(self._seen.get(key, ()))


@dataclass(frozen=True)
class Queued:
    """A change waiting for its boundary."""

    what: str  # what changes, for the HUD and the log ("preset neon", "key 3 (line 12)")
    asked: float  # when it was asked for (the music's clock)
    lands: float  # when its first frame must be on screen


def queued_text(item: Queued | None, t: float, grid: BeatGrid | BarGrid | None) -> str:
    """The HUD's line for the next queued change: "preset neon in 3 beats" / "… now"."""
    if item is None:
        return ""
    n = beats_until(t, item.lands, grid)
    return f"{item.what} {'now' if n == 0 else f'in {n} beat' + ('s' if n > 1 else '')}"
