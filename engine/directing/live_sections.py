"""Live section letters: sections found as the music plays and lettered as each ends (issue 26, part 3).

The offline pass (engine/directing/sections.py) sees a whole track; a live input has only what was
heard. `LiveSections` finds boundaries with the same novelty measure on the last seconds, and letters
each section as it ends with the same online clustering (`SectionMemory`, engine/directing/leitmotif.py).
"""

from __future__ import annotations

import numpy as np

from engine.directing.leitmotif import SectionMemory, fingerprint
from engine.directing.sections import FRAME_S, section_features


class LiveSections:
    """Live: sections found as the music plays and lettered as each ends, in bounded memory.

    Audio comes in blocks of any size (`feed`); every 0.1 s of it becomes a row of loudness and band
    energies (dB) and chroma (`engine.directing.sections.section_features`). A boundary is where the
    mean of the last `kernel_s` of rows differs most from the `kernel_s` before (squared distance in
    units of their spread, at least 1 dB, summed over the dimensions: the offline novelty's measure),
    once that exceeds `threshold` and has peaked, at least `min_gap_s` after the last one: it is
    found `kernel_s` late. The section that ended is fingerprinted and clustered (`SectionMemory`,
    at most `capacity` letters); the new one gets the letter of the nearest known section its first
    `kernel_s` sound like ("A" again: a return), else a new one when it ends. A section longer than
    `max_section_s` is closed there, so memory stays bounded in a night-long set.
    """

    def __init__(self, sample_rate: int, kernel_s: float = 3.0, min_gap_s: float = 6.0, threshold: float = 12.0,
                 capacity: int = 26, max_section_s: float = 120.0) -> None:
        self.sample_rate, self.frame_s = sample_rate, FRAME_S
        self.k = max(2, int(round(kernel_s / FRAME_S)))
        self.min_gap, self.threshold = int(round(min_gap_s / FRAME_S)), threshold
        self.max_rows = int(round(max_section_s / FRAME_S))
        self.memory: SectionMemory[object] = SectionMemory(capacity=capacity)
        self._pending = np.zeros(0, np.float32)
        self._values: list[np.ndarray] = []  # the current section's rows (and the next one's first k)
        self._chroma: list[np.ndarray] = []
        self._since = 0  # rows since the last boundary
        self._last_novelty = 0.0
        self.letter = ""  # the section playing now: its letter once known
        self.returning = False  # it sounds like a section heard before
        self.form: list[str] = []  # the letters of the sections that ended, in order (the last 64)

    def feed(self, samples: np.ndarray) -> str:
        """Audio heard since the last call → the letter of a section that ended in it, else ""."""
        n = int(round(self.frame_s * self.sample_rate))
        self._pending = np.concatenate([self._pending, np.asarray(samples, np.float32).reshape(-1)])
        if len(self._pending) < n:
            return ""
        k = len(self._pending) // n
        rows = section_features([self._pending[: k * n]], self.sample_rate)
        self._pending = self._pending[k * n :]
        ended = ""
        for v, c in zip(rows.values, rows.chroma):
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
        recent = np.asarray(self._values[-2 * k :])
        before, after = recent[:k], recent[k:]
        spread = np.maximum(recent.std(0), 1.0)
        novelty = float(np.sum(((after.mean(0) - before.mean(0)) / spread) ** 2))
        peaked = self._last_novelty > self.threshold and novelty < self._last_novelty
        self._last_novelty = novelty
        if peaked and self._since - k - 1 >= self.min_gap:
            return self._close(len(self._values) - k - 1)
        return ""

    def _close(self, at: int) -> str:
        """The section up to row `at` ended: its letter; the rows after it begin the next."""
        fp = fingerprint(np.asarray(self._values[:at]), np.asarray(self._chroma[:at]))
        letter, _ = self.memory.assign(fp)
        self.form = (self.form + [letter])[-64:]
        self._values, self._chroma = self._values[at:], self._chroma[at:]
        self._since, self._last_novelty = len(self._values), 0.0
        self.letter, self.returning = "", False
        if self._values:  # what the new section's first seconds sound like
            near = self.memory.nearest(fingerprint(np.asarray(self._values), np.asarray(self._chroma)))
            if near:
                self.letter, self.returning = near, True
        return letter
