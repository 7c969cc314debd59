"""Live section letters: sections found as the music plays and lettered as each ends (issue 26, part 3).

The offline pass (engine/directing/sections.py) sees a whole track; a live input has only what was
heard. `LiveSections` finds boundaries with the same novelty measure on the last seconds, and letters
each section as it ends with the same online clustering (`SectionMemory`, engine/directing/leitmotif.py).
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

from engine.directing.leitmotif import MoodTrack, SectionMemory, distance, fingerprint
from engine.directing.sections import FLOOR_DB, FRAME_S, MIN_FEATURE_NOVELTY, section_features
from engine.types import Features

MOOD_KEEP_S = 600.0  # how far back a return can recall the mood it had
SMOOTH_ROWS = 5  # novelty is averaged over this many rows (0.5 s) before its peak is looked for
# A cut needs what follows a fifth further from the section so far than the letters' "same section"
# line: 3 s of one chord of a quiet intro fingerprint up to 0.20 from the whole intro (the demo track)
CUT_MARGIN = 1.2
RECHECK_ROWS, RECHECK_UNTIL = 10, 150  # a new section is compared with the known ones every 1 s for 15 s
STATS_KEEP_S = 600.0  # the running statistics that standardise the features forget over about this long


class LiveSections:
    """Live: sections found as the music plays and lettered as each ends, in bounded memory.

    Audio comes in blocks of any size (`feed`); every 0.1 s of it becomes a row of loudness and band
    energies (dB) and chroma (`engine.directing.sections.section_features`), floored `FLOOR_DB` below
    the loudest heard so far. A boundary is where the mean of the last `kernel_s` of rows differs most
    from the up to `before_s` of the section before them (squared distance in units of the *running*
    spread of everything heard, at least 1 dB, summed over the dimensions: the offline novelty's
    measure, standardised as offline does over the whole track, but with what has been heard only;
    the spread of the two windows themselves would blow a chord change up into a section change).
    The novelty, averaged over 0.5 s, must exceed `threshold` (the offline novelty's floor: the
    running spread grows as a set goes on, so a second drop scores lower than the first) and have
    peaked, at least `min_gap_s` after the last boundary, and what follows must sound like another
    section than the one so far (the letters' own distance, `CUT_MARGIN` beyond their line), so a
    chord change, a filter sweep or the first bars of a slow build are not cut: it is found about
    `kernel_s` late. The section that ended is fingerprinted and clustered (`SectionMemory`, at most
    `capacity` letters); the new one gets the letter of the nearest known section it sounds like
    (checked at its start and every second for 15 s: "A" again, a return), else a new one when it
    ends. A section longer than `max_section_s` is closed there, so memory stays bounded in a
    night-long set.
    """

    def __init__(self, sample_rate: int, kernel_s: float = 3.0, min_gap_s: float = 6.0,
                 threshold: float = MIN_FEATURE_NOVELTY, capacity: int = 26, max_section_s: float = 120.0,
                 before_s: float = 6.0) -> None:
        self.sample_rate, self.frame_s = sample_rate, FRAME_S
        self.k = max(2, int(round(kernel_s / FRAME_S)))
        self.before = max(self.k, int(round(before_s / FRAME_S)))
        # Running statistics of every row heard (exponentially forgetting over STATS_KEEP_S): live's
        # stand-in for the offline pass's standardisation over the whole track, and its loudest row
        # for the offline FLOOR_DB floor.
        self._n = 0
        self._mean = np.zeros(0)
        self._var = np.zeros(0)
        self._loudest = np.full(2, -np.inf)
        self.min_gap, self.threshold = int(round(min_gap_s / FRAME_S)), threshold
        self.max_rows = int(round(max_section_s / FRAME_S))
        self.memory: SectionMemory[object] = SectionMemory(capacity=capacity)
        self._pending = np.zeros(0, np.float32)
        self._values: list[np.ndarray] = []  # the current section's rows (and the next one's first k)
        self._chroma: list[np.ndarray] = []
        self._since = 0  # rows since the last boundary
        self._last_novelty = 0.0
        self._recent: deque[float] = deque(maxlen=SMOOTH_ROWS)  # the last rows' novelty, smoothed over
        self.letter = ""  # the section playing now: its letter once known
        self.returning = False  # it sounds like a section heard before
        self.form: list[str] = []  # the letters of the sections that ended, in order (the last 64)
        self._t0: float | None = None  # the time of the first sample fed
        self._base = 0  # the row number (since the first sample) of _values[0]: the current section's start
        self._first: dict[str, int] = {}  # a letter's first occurrence: its start row
        self.recalled: tuple[float, float] | None = None  # a return: (its start, its first occurrence's start), s

    def feed(self, samples: np.ndarray, t_end: float | None = None) -> str:
        """Audio heard since the last call (ending at `t_end`, s) → the letter of a section that ended
        in it, else ""."""
        n = int(round(self.frame_s * self.sample_rate))
        if self._t0 is None:
            self._t0 = (t_end if t_end is not None else 0.0) - len(samples) / self.sample_rate
        self._pending = np.concatenate([self._pending, np.asarray(samples, np.float32).reshape(-1)])
        if len(self._pending) < n:
            return ""
        k = len(self._pending) // n
        rows = section_features([self._pending[: k * n]], self.sample_rate)
        self._pending = self._pending[k * n :]
        ended = ""
        for v, c in zip(rows.values, rows.chroma):
            v = self._heard(v)
            self._values.append(v)
            self._chroma.append(c)
            self._since += 1
            ended = self._step() or ended
        return ended

    def _step(self) -> str:
        k = self.k
        if len(self._values) >= self.max_rows:
            return self._close(len(self._values))
        if len(self._values) < 2 * k:
            return ""
        recent = np.asarray(self._values[-(k + self.before) :])
        before, after = recent[:-k], recent[-k:]
        spread = np.maximum(np.sqrt(self._var), 1.0)
        self._recent.append(float(np.sum(((after.mean(0) - before.mean(0)) / spread) ** 2)))
        novelty = float(np.mean(self._recent))
        peaked = self._last_novelty > self.threshold and novelty < self._last_novelty
        self._last_novelty = novelty
        lag = k + 1 + SMOOTH_ROWS // 2
        if peaked and self._since - lag >= self.min_gap and self._differs(len(self._values) - lag):
            return self._close(len(self._values) - lag)
        if not self.returning and self.form and self._since % RECHECK_ROWS == 0 and self._since <= RECHECK_UNTIL:
            self._recognise()  # a return whose first seconds were blurred (a fade, a fill) is known later
        return ""

    def _differs(self, at: int) -> bool:
        """Whether what followed row `at` sounds like another section than the one before it (the
        letters' own measure): a change inside a section (a chord, a filter sweep, the first bars of a
        slow build) is no boundary."""
        v, c = np.asarray(self._values), np.asarray(self._chroma)
        return distance(fingerprint(v[:at], c[:at]), fingerprint(v[at:], c[at:])) >= CUT_MARGIN * self.memory.threshold

    def _heard(self, v: np.ndarray) -> np.ndarray:
        """A row floored FLOOR_DB below the loudest heard so far (loudness and bands apart, as offline),
        and counted into the running mean and variance."""
        self._loudest = np.maximum(self._loudest, [v[0], v[1:].max()])
        v = np.concatenate([[max(v[0], self._loudest[0] - FLOOR_DB)], np.maximum(v[1:], self._loudest[1] - FLOOR_DB)])
        self._n += 1
        if self._n == 1:
            self._mean, self._var = v.astype(np.float64), np.zeros(len(v))
        else:
            a = max(1.0 / self._n, FRAME_S / STATS_KEEP_S)
            d = v - self._mean
            self._mean = self._mean + a * d
            self._var = (1 - a) * (self._var + a * d * d)
        return v

    def _close(self, at: int) -> str:
        """The section up to row `at` ended: its letter; the rows after it begin the next."""
        fp = fingerprint(np.asarray(self._values[:at]), np.asarray(self._chroma[:at]))
        letter, before = self.memory.assign(fp)
        known = self.memory.known()
        self._first = {x: row for x, row in self._first.items() if x in known}  # forgotten letters go
        if not before or letter not in self._first:
            self._first[letter] = self._base
        self.form = (self.form + [letter])[-64:]
        self._values, self._chroma = self._values[at:], self._chroma[at:]
        self._base += at
        self._since, self._last_novelty = len(self._values), 0.0
        self._recent.clear()
        self.letter, self.returning, self.recalled = "", False, None
        if self._values:
            self._recognise()
        return letter

    def _recognise(self) -> None:
        """Whether the section playing, as far as heard, sounds like a known one: a return."""
        near = self.memory.nearest(fingerprint(np.asarray(self._values), np.asarray(self._chroma)))
        if near:
            self.letter, self.returning = near, True
            if near in self._first:
                self.recalled = (self._time(self._base), self._time(self._first[near]))

    def _time(self, row: int) -> float:
        return (self._t0 or 0.0) + row * self.frame_s


class LiveRecall:
    """What a return recalls live: the music's mood (every 0.1 s of the last `MOOD_KEEP_S`) and the
    animation clock of the same moment of the section's first occurrence. The feature loop writes
    (`heard`, `returning`), the render loop reads (`render`); thread-safe."""

    def __init__(self, keep_s: float = MOOD_KEEP_S) -> None:
        self._lock = threading.Lock()
        self._moods: deque[tuple[float, tuple[float, ...]]] = deque(maxlen=int(keep_s / FRAME_S))
        self._map: tuple[float, float] | None = None

    def heard(self, f: Features) -> None:
        with self._lock:
            if not self._moods or f.t - self._moods[-1][0] >= FRAME_S:
                self._moods.append((f.t, (f.rms, f.low, f.mid, f.high, f.valence, f.arousal)))  # MOOD_KEYS' order

    def returning(self, mapping: tuple[float, float] | None) -> None:
        """(the return's start, its first occurrence's start), or None outside a return."""
        with self._lock:
            self._map = mapping

    def render(self, t: float, features: Features, weight: float) -> tuple[Features, float]:
        """What a render seen at `t` is given: in a return, the mood `weight` of the way to the first
        occurrence's at the same offset, and the clock as far toward that moment."""
        with self._lock:
            if weight <= 0 or self._map is None or t < self._map[0] or not self._moods:
                return features, t
            then = self._map[1] + (t - self._map[0])
            if then < self._moods[0][0] or then > self._moods[-1][0]:
                return features, t
            times = np.array([m[0] for m in self._moods])
            rows = np.array([m[1] for m in self._moods])
        return MoodTrack(times, rows).recall(features, then, weight), t + weight * (then - t)
