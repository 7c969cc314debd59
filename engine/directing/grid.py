"""The beat grid that bar/beat keyframes and beat cuts are placed on.

The grid is plain lists of beat times and (optionally) downbeat times: a file's come from the
offline beat tracker (engine/audio/beatmap.py, `from_beatmap`), live input's grow as beats are
heard. Bar 1 begins on the first downbeat; without downbeats, on the first beat, with
`beats_per_bar` beats to a bar. Past the last known beat the grid continues at the median beat
period, so a keyframe at bar 97 of a live set is placed before the tracker has heard bar 97, and
moves as the real beats arrive.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.audio.beatmap import BeatMap

DEFAULT_PERIOD_S = 0.5  # 120 BPM, when fewer than two beats are known
EPS = 1e-3  # a beat within a millisecond of a time counts as at that time


@dataclass(frozen=True)
class BarGrid:
    beats: tuple[float, ...] = ()
    downbeats: tuple[float, ...] = ()
    beats_per_bar: int = 4

    @classmethod
    def from_times(cls, beats: Sequence[float], downbeats: Sequence[float] = (), beats_per_bar: int = 4) -> "BarGrid":
        return cls(tuple(sorted(float(b) for b in beats)), tuple(sorted(float(d) for d in downbeats)), beats_per_bar)

    @classmethod
    def from_beatmap(cls, beats: BeatMap, beats_per_bar: int | None = None) -> "BarGrid":
        """From the offline beat tracker's map of a track (engine/audio/beatmap.py)."""
        return cls.from_times(beats.beats.tolist(), beats.downbeats.tolist(), beats_per_bar or beats.beats_per_bar)

    def __bool__(self) -> bool:
        return bool(self.beats)

    def period(self) -> float:
        """Median seconds between beats (robust to a missed or doubled beat)."""
        if len(self.beats) < 2:
            return DEFAULT_PERIOD_S
        return float(np.median(np.diff(self.beats[-64:])))

    def beat_time(self, index: float) -> float:
        """Time of beat `index` (0 = the first beat; fractions interpolate; extrapolated both ways)."""
        if not self.beats:
            raise ValueError("the beat grid has no beats yet")
        n, p = len(self.beats), self.period()
        if index <= 0:
            return self.beats[0] + index * p
        if index >= n - 1:
            return self.beats[-1] + (index - (n - 1)) * p
        i = int(index)
        return self.beats[i] + (index - i) * (self.beats[i + 1] - self.beats[i])

    def bar_time(self, bar: int, beat: float = 1.0) -> float | None:
        """Time of `beat` (1-based, may be fractional) of `bar` (1-based); None with no beats yet."""
        if not self.beats:
            return None
        return self.beat_time(self._bar_start_index(bar) + (beat - 1.0))

    def _bar_start_index(self, bar: int) -> float:
        """Beat index (fractional past the known beats) on which `bar` begins."""
        if not self.downbeats:
            return float((bar - 1) * self.beats_per_bar)
        k = min(bar, len(self.downbeats)) - 1  # the last downbeat the tracker found, up to this bar
        return self._index_of(self.downbeats[k]) + (bar - 1 - k) * self.beats_per_bar

    def _index_of(self, t: float) -> float:
        """Beat index of a time on the grid: the nearest beat's, or extrapolated past the last."""
        if t > self.beats[-1] + EPS:
            return len(self.beats) - 1 + (t - self.beats[-1]) / self.period()
        return float(np.argmin(np.abs(np.asarray(self.beats) - t)))

    def next_beat(self, t: float) -> float:
        """The first beat at or after `t` (extrapolated past the last beat); `t` itself with no beats."""
        if not self.beats:
            return t
        i = bisect.bisect_left(self.beats, t - EPS)
        if i < len(self.beats):
            return self.beats[i]
        p = self.period()
        k = np.ceil((t - EPS - self.beats[-1]) / p)
        return self.beats[-1] + max(1.0, float(k)) * p

    def with_beat(self, t: float) -> "BarGrid":
        """This grid plus a beat heard at `t` (a live tracker's beats arrive in order)."""
        if self.beats and t <= self.beats[-1] + EPS:
            return self
        return BarGrid(self.beats + (float(t),), self.downbeats, self.beats_per_bar)
