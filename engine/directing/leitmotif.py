"""Visual leitmotifs: which sections of a track are the same music, so a returning one can bring its look back.

A section's *fingerprint* is what it sounds like, apart from when it happens:
- timbre: the DCT of its mean band-energy profile (dB, 16 log-spaced bands), coefficients 1–12 —
  MFCCs' recipe on the bands `engine.directing.sections` already measures (coefficient 0, the level,
  is left to the rhythm part);
- harmony: its mean chroma (12 pitch classes, summed to 1);
- rhythm: how busy and how dynamic (mean rise in loudness per 0.1 s, the share of frames that jump
  more than 3 dB, the spread of loudness) and its level.
`CLAP` embeddings, where they run, join as a fourth part (cosine distance).

`SectionMemory` clusters fingerprints *online*, one section at a time as each ends (the same code
labels a whole track offline, in order): the nearest known section within `threshold` gives its letter,
otherwise a new letter; at most `capacity` letters are kept (the least recently heard is forgotten
and its letter reused), so a night-long set runs in bounded memory. Each letter can hold the look
the show had when it was first heard (`remember` / `recall`).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

import numpy as np
from scipy.fft import dct

from engine.types import UNHEARD, Features

SAME_SECTION = 0.22  # mean part distance under which two sections are the same music
JUMP_DB = 3.0

Look = TypeVar("Look")


@dataclass(frozen=True)
class Fingerprint:
    timbre: np.ndarray  # (12,)
    chroma: np.ndarray  # (12,), sums to 1
    rhythm: np.ndarray  # (4,): mean rise dB, jump share, loudness spread dB, level dB
    clap: np.ndarray | None = None  # unit vector


def fingerprint(values: np.ndarray, chroma: np.ndarray, clap: np.ndarray | None = None) -> Fingerprint:
    """From a section's rows of `SectionFeatures.values` (loudness dB, 16 band dB) and `.chroma`."""
    values = np.atleast_2d(np.asarray(values, np.float64))
    bands = values[:, 1:].mean(0)
    timbre = dct(bands - bands.mean(), norm="ortho")[1:13]
    c = np.asarray(chroma, np.float64).reshape(-1, 12).mean(0) if len(chroma) else np.full(12, 1 / 12)
    c = c / max(float(c.sum()), 1e-12)
    loud = values[:, 0]
    rise = np.maximum(np.diff(loud), 0.0) if len(loud) > 1 else np.zeros(1)
    rhythm = np.array([rise.mean(), float(np.mean(rise > JUMP_DB)), loud.std(), loud.mean()])
    unit = None
    if clap is not None and len(clap):
        e = np.asarray(clap, np.float64).reshape(-1, np.shape(clap)[-1]).mean(0)
        unit = e / max(float(np.linalg.norm(e)), 1e-12)
    return Fingerprint(timbre, c, rhythm, unit)


def _rel(a: np.ndarray, b: np.ndarray, floor: float) -> float:
    return float(np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b) + floor))


def distance(a: Fingerprint, b: Fingerprint) -> float:
    """0 (the same sound) … 1 (nothing alike): the mean of the parts' distances."""
    parts = [
        _rel(a.timbre, b.timbre, 6.0),  # a 6 dB spectral tilt is not nothing
        float(1.0 - a.chroma @ b.chroma / max(np.linalg.norm(a.chroma) * np.linalg.norm(b.chroma), 1e-12)),
        float(np.mean(np.abs(a.rhythm[:3] - b.rhythm[:3]) / (np.abs(a.rhythm[:3]) + np.abs(b.rhythm[:3]) + 0.5))),
        min(1.0, abs(float(a.rhythm[3] - b.rhythm[3])) / 20.0),  # 20 dB apart: as different as it gets
    ]
    if a.clap is not None and b.clap is not None:
        parts.append(float(1.0 - a.clap @ b.clap))
    return float(np.mean(parts))


@dataclass
class _Cluster(Generic[Look]):
    letter: str
    centre: Fingerprint
    count: int = 1
    heard: int = 0  # when last heard (section number)
    look: Look | None = None


@dataclass
class SectionMemory(Generic[Look]):
    """Online clustering of sections into letters, bounded (see the module docstring)."""

    threshold: float = SAME_SECTION
    capacity: int = 26
    _clusters: list[_Cluster[Look]] = field(default_factory=list)
    _heard: int = 0

    def assign(self, fp: Fingerprint) -> tuple[str, bool]:
        """A section that just ended → (its letter, whether that letter was heard before)."""
        self._heard += 1
        best = self._nearest(fp)
        if best is not None:
            best.centre = _mean(best.centre, fp, best.count)
            best.count = min(best.count + 1, 8)
            best.heard = self._heard
            return best.letter, True
        used = self.known()
        free = [x for x in string.ascii_uppercase if x not in used]
        if len(self._clusters) >= self.capacity or not free:
            oldest = min(self._clusters, key=lambda c: c.heard)
            self._clusters.remove(oldest)
            free = [oldest.letter]
        self._clusters.append(_Cluster(free[0], fp, heard=self._heard))
        return free[0], False

    def nearest(self, fp: Fingerprint) -> str:
        """The letter of the known section `fp` sounds like (within `threshold`), else "" (nothing changes)."""
        best = self._nearest(fp)
        return best.letter if best is not None else ""

    def _nearest(self, fp: Fingerprint) -> _Cluster[Look] | None:
        """The known section nearest `fp`, if within `threshold`."""
        best = min(self._clusters, key=lambda c: distance(fp, c.centre), default=None)
        return best if best is not None and distance(fp, best.centre) < self.threshold else None

    def known(self) -> set[str]:
        """The letters kept."""
        return {c.letter for c in self._clusters}

    def remember(self, letter: str, look: Look) -> None:
        """The look a letter had when it was first on screen (kept until the letter is forgotten)."""
        for c in self._clusters:
            if c.letter == letter and c.look is None:
                c.look = look

    def recall(self, letter: str) -> Look | None:
        return next((c.look for c in self._clusters if c.letter == letter), None)

    def __len__(self) -> int:
        return len(self._clusters)


def _mean(a: Fingerprint, b: Fingerprint, n: int) -> Fingerprint:
    w = 1.0 / (n + 1)
    clap = None if a.clap is None or b.clap is None else (1 - w) * a.clap + w * b.clap
    return Fingerprint((1 - w) * a.timbre + w * b.timbre, (1 - w) * a.chroma + w * b.chroma,
                       (1 - w) * a.rhythm + w * b.rhythm, clap)


def letters(fingerprints: list[Fingerprint], threshold: float = SAME_SECTION) -> list[str]:
    """A whole track's sections, in order, labelled by the online memory: "A B A C B"."""
    memory: SectionMemory[object] = SectionMemory(threshold)
    return [memory.assign(fp)[0] for fp in fingerprints]


MOOD_KEYS = ("rms", "low", "mid", "high", "valence", "arousal")


@dataclass(frozen=True)
class MoodTrack:
    """A track's feature scalars every 0.1 s (`engine.audio.analysis.analyze_track`'s frames): what a
    returning section recalls of how the music moved the picture the first time (the renderers' palette,
    brightness and motion follow these)."""

    times: np.ndarray  # (n,)
    rows: np.ndarray  # (n, len(MOOD_KEYS))

    @classmethod
    def from_frames(cls, frames: list[dict[str, float]]) -> MoodTrack:
        return cls(np.array([f["t"] for f in frames], np.float64),
                   np.array([[f[k] for k in MOOD_KEYS] for f in frames], np.float64).reshape(-1, len(MOOD_KEYS)))

    def recall(self, features: Features, then: float, weight: float) -> Features:
        """`features` with its mood scalars moved `weight` of the way to the track's at time `then`."""
        if weight <= 0 or not len(self.times):
            return features
        f = features
        if then < self.times[0]:  # before the track's first block nothing was heard: what the feed gave then
            row = _mood(UNHEARD)
        else:
            row = np.array([np.interp(then, self.times, self.rows[:, j]) for j in range(len(MOOD_KEYS))])
        now = _mood(f)
        rms, low, mid, high, valence, arousal = ((1 - weight) * now + weight * row).tolist()
        return replace(f, rms=rms, low=low, mid=mid, high=high, valence=valence, arousal=arousal)


def _mood(f: Features) -> np.ndarray:
    """`f`'s mood scalars in MOOD_KEYS' order."""
    return np.array([f.rms, f.low, f.mid, f.high, f.valence, f.arousal])
