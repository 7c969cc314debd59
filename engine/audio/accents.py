"""Accents and scene moments, decided live: which beat starts the bar, and when the music drops.

- `BarCounter`: every beat gets an accent (its kick, less its snare-like hit, plus how much the
  harmony changed across it); the accents pile up per bar position with a slow decay, and the
  position that keeps winning is the downbeat. Confidence is the winner's margin.
- `SectionDetector`: a short (0.25 s) and a long (4 s) loudness follower; when the short one jumps
  `DROP_DB` above the long one — and half that above the loudest quarter second of the 4 s before
  it, so a crescendo's newest highs are not a drop — the music dropped; when it falls `BREAK_DB`
  below the long one it broke down. A
  build is the 4 s loudness climbing `BUILD_DB` or more over the last `BUILD_S` seconds, higher than
  two seconds before at every second along the way and without a jump (a crescendo, a riser), so the show can prepare for
  the drop that usually follows; a build does not hold back the drop's event.
  The event waits for the next downbeat (or beat, while the bar is unknown) so that a hard cut on it
  lands on the music, and at most one event fires every `MIN_GAP_S`.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

BAR_DECAY = 0.8  # per bar: an accent pattern is forgotten within about five bars
MIN_BARS = 2  # bars heard before a downbeat is claimed
MIN_BAR_CONFIDENCE = 0.1  # below this margin no beat is called a downbeat
METER_SWITCH = 1.25  # MeterCounter: another bar length's accent margin must be this much larger to take over
# MeterCounter: a bar of 2 divides a bar of 4, so a 4/4 whose third beat sounds half like a downbeat
# shows a bar of 2 a larger margin than its own; a bar of 2 must show this much more to be chosen.
# Chosen with the live (causal) network on the 88 validation audio pieces: downbeat F 0.402 at 0.35
# vs 0.406 at 0.5, and at 0.5 an oom-pah 4/4 with no drums is counted in 2 (tests/test_beatnet.py).
METER_WEIGHTS = {2: 0.35, 3: 1.0, 4: 1.0}
# accent = kick − ½·hit + 3·change. The kick (low-band onset) marks the bar; a beat whose broadband
# hit is strong for its kick is a backbeat snare (beats 2 and 4), which argues *against* a downbeat;
# harmony changes on the bar line. Weighed by hand on the synthetic patterns of engine.audio.rhythms.
ACCENT_WEIGHTS = np.array([1.0, -0.5, 3.0])
DROP_DB, BREAK_DB = 6.0, 9.0
BUILD_DB, BUILD_S = 4.0, 8  # the 4 s loudness this much louder than BUILD_S seconds ago, climbing all along
PEAK_SLOT_S, PEAK_SLOTS = 0.25, 16  # the recent loudest: per quarter second, over 4 s (the newest 0.5 s left out)
BUILD_GAP_S = 16.0  # at most one build event this often, and none this soon after a drop or break
EVENT_LEVEL_DB = -40.0  # quieter music than this makes no events
MIN_GAP_S = 4.0
EVENT_WAIT_S = 2.5  # a pending event fires anyway after this long without a beat to sit on


def _median_rows(x: np.ndarray) -> np.ndarray:
    """The median of each column. (np.median imports numpy.ma on its first call: tens of ms that
    the live feature thread would spend on the first beat it scores.)"""
    s = np.sort(x, axis=0)
    return 0.5 * (s[len(s) // 2] + s[(len(s) - 1) // 2])


def harmonic_change(before: np.ndarray, after: np.ndarray) -> float:
    """1 − cosine similarity of two median band spectra (0: the same sound, up to 1: disjoint)."""
    a, b = _median_rows(before), _median_rows(after)
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return 0.0 if den < 1e-9 else max(0.0, 1.0 - float(a @ b) / den)


def accent_parts(strength: np.ndarray, low: np.ndarray, bands: np.ndarray, i: int, period: float) -> tuple[float, float, float]:
    """(kick, hit, harmonic change) of the beat at frame `i` of the activation arrays (10 ms
    frames; `period` in frames): the strongest low-band and overall onset from 2 frames before
    to 6 after the beat, and the change between the band spectra of ¾ beat before and after it."""
    n = len(strength)
    a, b = max(0, i - 2), min(n, i + 7)
    if a >= b:
        return 0.0, 0.0, 0.0
    w = max(2, int(0.75 * period))
    before, after = bands[max(0, i - w) : max(0, i - 1)], bands[min(n, i + 2) : min(n, i + w)]
    change = harmonic_change(before, after) if len(before) and len(after) else 0.0
    return float(low[a:b].max()), float(strength[a:b].max()), change


class BarCounter:
    """Counts beats into bars of `beats_per_bar` and learns which position is the downbeat."""

    def __init__(self, beats_per_bar: int = 4) -> None:
        self.beats_per_bar = beats_per_bar
        self.reset()

    def reset(self) -> None:
        self._score = np.zeros(self.beats_per_bar)
        self._counts = np.zeros(self.beats_per_bar)
        self._seen = 0
        self.confidence = 0.0  # 0..1: the winner's margin; 0 until MIN_BARS bars were heard
        self.downbeat = 0  # which beat count (mod beats_per_bar) starts a bar

    def add(self, count: int, kick: float, hit: float, change: float) -> None:
        """The accent parts of beat number `count` (beats counted since the tracker locked)."""
        # Each position keeps the mean accent of its beats (an EMA once MIN_BARS are in), so that
        # positions heard a different number of times compare fairly at every moment.
        k = count % self.beats_per_bar
        self._counts[k] += 1
        rate = max(1.0 / self._counts[k], 1.0 - BAR_DECAY)
        self._score[k] += rate * (float(np.dot(ACCENT_WEIGHTS, (kick, hit, change))) - self._score[k])
        self._seen += 1
        self.downbeat = int(np.argmax(self._score))
        if self._seen >= MIN_BARS * self.beats_per_bar:
            top = np.sort(self._score)[::-1]
            scale = max(abs(top[0]), float(np.abs(self._score).mean())) + 1e-9
            self.confidence = float(np.clip((top[0] - top[1]) / scale, 0.0, 1.0))

    @property
    def margin(self) -> float:
        """How far the downbeat's mean accent stands above the runner-up's (0 until MIN_BARS bars)."""
        if self._seen < MIN_BARS * self.beats_per_bar:
            return 0.0
        top = np.sort(self._score)[::-1]
        return float(top[0] - top[1])


class MeterCounter:
    """A `BarCounter` that also learns the meter: one counter per candidate bar length (2, 3, 4
    beats; 6/8 counts 2 dotted-quarter beats) hears every beat, and the bar length whose downbeat
    stands furthest above its runner-up (the raw accent margin, weighed by `METER_WEIGHTS`: a 3/4
    heard in bars of 4 has no margin) is the meter. A new meter must beat the current one's margin by
    `METER_SWITCH` (no flapping between readings that explain the accents almost equally)."""

    def __init__(self, meters: tuple[int, ...] = (2, 3, 4), default: int = 4) -> None:
        self._counters = {m: BarCounter(m) for m in meters}
        self._default = default
        self.reset()

    def reset(self) -> None:
        for c in self._counters.values():
            c.reset()
        self.beats_per_bar = self._default
        self.confidence = 0.0
        self.downbeat = 0

    def add(self, count: int, kick: float, hit: float, change: float) -> None:
        for c in self._counters.values():
            c.add(count, kick, hit, change)
        margins = {m: c.margin * METER_WEIGHTS.get(m, 1.0) for m, c in self._counters.items()}
        best = max(margins, key=lambda m: margins[m])
        if margins[best] > METER_SWITCH * margins[self.beats_per_bar]:
            self.beats_per_bar = best
        chosen = self._counters[self.beats_per_bar]
        self.downbeat, self.confidence = chosen.downbeat, chosen.confidence


class SectionDetector:
    """Drop / break moments from the loudness of each hop."""

    def __init__(self, fps: float) -> None:
        self._a_short = 1.0 - math.exp(-1.0 / (0.25 * fps))
        self._a_long = 1.0 - math.exp(-1.0 / (4.0 * fps))
        self.reset()

    def reset(self) -> None:
        self._short = self._long = 1e-10
        self._long_weight = 0.0  # bias correction: "typical so far" until 4 s have been heard
        self._seconds: deque[tuple[int, float]] = deque(maxlen=BUILD_S + 1)  # (second, 4 s loudness dB)
        self._last_event = self._last_build = -math.inf
        self._slots: deque[tuple[int, float]] = deque(maxlen=PEAK_SLOTS + 2)  # (slot, loudest short dB)
        self._pending: tuple[str, float] | None = None

    def update(self, rms: float, t: float) -> None:
        power = rms * rms + 1e-10
        if power < 1e-8 and self._long_weight == 0.0:
            return  # digital silence before the music: nothing to compare with yet
        self._long_weight += self._a_long * (1.0 - self._long_weight)
        a_long = self._a_long / self._long_weight  # 1 on the first sound, then the 4 s average
        self._short += (self._a_short if self._long_weight > self._a_long else 1.0) * (power - self._short)
        self._long += a_long * (power - self._long)
        short_db, long_db = 10 * math.log10(self._short), 10 * math.log10(self._long)
        slot = int(t / PEAK_SLOT_S)
        if self._slots and self._slots[-1][0] == slot:
            self._slots[-1] = (slot, max(self._slots[-1][1], short_db))
        else:
            self._slots.append((slot, short_db))
        recent = max((db for k, db in self._slots if k < slot - 1), default=-math.inf)
        if self._pending is not None:
            return
        if t - self._last_event >= MIN_GAP_S:
            if short_db > EVENT_LEVEL_DB and short_db - long_db > DROP_DB and short_db - recent > DROP_DB / 2:
                self._pending = ("drop", t)
                return
            if long_db > EVENT_LEVEL_DB and long_db - short_db > BREAK_DB:
                self._pending = ("break", t)
                return
        if not self._seconds or self._seconds[-1][0] != int(t):
            self._seconds.append((int(t), long_db))
        levels = [db for _, db in self._seconds]
        if (len(levels) > BUILD_S and t - self._last_build >= BUILD_GAP_S and t - self._last_event >= BUILD_GAP_S
                and long_db > EVENT_LEVEL_DB and levels[-1] - levels[0] >= BUILD_DB
                and all(b > a for a, b in zip(levels, levels[2:])) and short_db - long_db < DROP_DB / 2):
            self._pending = ("build", t)

    @property
    def pending(self) -> tuple[str, float] | None:
        """The event heard and waiting for its beat: (kind, when it was heard), else None."""
        return self._pending

    def take(self, t: float, beat: bool, downbeat: bool, bar_known: bool) -> str:
        """The event to fire in this hop ("" for none): on the first downbeat after it was heard
        (the first beat while the bar is unknown), or after EVENT_WAIT_S regardless."""
        if self._pending is None:
            return ""
        kind, since = self._pending
        if (beat and (downbeat or not bar_known)) or t - since > EVENT_WAIT_S:
            self._pending = None
            if kind == "build":
                self._last_build = t
            else:
                self._last_event = t
            return kind
        return ""
