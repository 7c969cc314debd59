"""The offline beat pass: every beat and downbeat of a whole track, for `analyze` and export.

Offline we may look ahead, so instead of a phase-locked loop this is the classic dynamic programme
(Ellis 2007): a beat sequence maximising onset activation at its beats minus a penalty for gaps
that stray from the local beat period, solved for the whole track and traced back from its end.
The local period comes from `estimate_tempo` on 8 s windows every second (continuity with the
previous window, so a half-time breakdown keeps the tempo), which lets the programme follow ramps.

Then: beats before the music starts or after it ends are dropped, each beat is placed to a fraction
of a frame on its activation peak, gets a confidence (how far its onset stands above the local
background: 1 = as strong as the strongest onsets around, 0 = a beat carried through a gap), and
a Viterbi pass over the beats' accents (`engine.audio.accents.accent_parts`) numbers them in bars.

`BeatAnalyzer` takes blocks as they are decoded (memory: ~50 bytes per 10 ms hop, about 50 MB for
a 3-hour mix); `analyze_beats(path)` runs it over a file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.audio.accents import ACCENT_WEIGHTS, MIN_BAR_CONFIDENCE, accent_parts
from engine.audio.onsets import ONSET_DELAY_S, OnsetDetector, SampleTail, hop_spectra
from engine.audio.tempo import estimate_tempo
from engine.types import SAMPLE_RATE, BeatGrid

TEMPO_WINDOW_S, TEMPO_STEP_S = 8.0, 1.0
TIGHTNESS = 100.0  # penalty weight on log(gap / period)² (librosa's default)
SILENCE_RMS = 1e-4
BAR_SWITCH = 0.01  # Viterbi: probability that the bar position jumps (a dropped or added beat)


@dataclass(frozen=True)
class BeatMap:
    """All beats of a track: times (s), per-beat confidence 0..1, bar position (0 = downbeat)."""

    beats: np.ndarray
    confidence: np.ndarray
    positions: np.ndarray
    tempo_bpm: float
    beats_per_bar: int = 4
    downbeat_confidence: float = 0.0

    @property
    def downbeats(self) -> np.ndarray:
        return self.beats[self.positions == 0]

    def grid_at(self, t: float) -> BeatGrid:
        """The local grid at `t`: anchored on the last beat at or before t, its period the exact gap
        to the next beat (so phase 0 falls on every true beat). Before the first beat, and from
        half a beat after the last one, the grid is unlocked: no pulse before or after the music."""
        b = self.beats
        unlocked = BeatGrid(period=60.0 / self.tempo_bpm, beats_per_bar=self.beats_per_bar)
        if len(b) < 2 or t + 1e-9 < b[0] or t >= b[-1] + 0.5 * (b[-1] - b[-2]):
            return unlocked
        i = int(np.clip(np.searchsorted(b, t + 1e-9, side="right") - 1, 0, len(b) - 2))
        return BeatGrid(
            anchor=float(b[i]), period=float(b[i + 1] - b[i]), beats_per_bar=self.beats_per_bar,
            anchor_in_bar=max(0, int(self.positions[i])),
            confidence=float(self.confidence[i]), downbeat_confidence=self.downbeat_confidence,
        )

    def between(self, t0: float, t1: float) -> np.ndarray:
        """Indices of the beats in (t0, t1]."""
        return np.arange(np.searchsorted(self.beats, t0, side="right"), np.searchsorted(self.beats, t1, side="right"))


class BeatAnalyzer:
    """Collects onset activation from blocks of a stream; `finish()` returns its BeatMap."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, hop: int = 480, n_fft: int = 1024, beats_per_bar: int = 4) -> None:
        self.sr, self.hop, self.fps = sample_rate, hop, sample_rate / hop
        self.beats_per_bar = beats_per_bar
        self._onsets = OnsetDetector(sample_rate, n_fft, self.fps)
        self._window = np.hanning(n_fft).astype(np.float32)
        self._past = SampleTail(n_fft - hop)  # the samples before the next hop's frame
        self._pending = np.zeros(0, dtype=np.float32)
        self._strength: list[np.ndarray] = []  # per fed block, one value (or band row) per hop
        self._low: list[np.ndarray] = []
        self._rms: list[np.ndarray] = []
        self._bands: list[np.ndarray] = []

    def feed(self, block: np.ndarray) -> None:
        data = np.concatenate([self._pending, np.asarray(block, dtype=np.float32).reshape(-1)])
        hop = self.hop
        n = len(data) // hop
        self._pending = data[n * hop :]
        if n == 0:
            return
        hops = data[: n * hop].reshape(n, hop)
        on = self._onsets.process(hop_spectra(self._past.last(self._past.keep), data, hop, self._window))
        self._past.append(data[: n * hop])
        self._strength.append(on.strength)
        self._low.append(on.low)
        self._bands.append(on.bands.astype(np.float16))
        self._rms.append(np.sqrt(np.add.reduce(hops * hops, axis=1) / hop))

    def finish(self) -> BeatMap:
        env = _joined(self._strength).astype(np.float64)
        periods, tempo = local_periods(env, self.fps)
        active = active_frames(_joined(self._rms), self.fps)
        if tempo is None or not active.any():
            return BeatMap(np.zeros(0), np.zeros(0), np.zeros(0, int), 120.0, self.beats_per_bar)
        frames = track_beats(env / (env.std() + 1e-9), periods)
        frames = frames[active[frames]]
        times = np.array([self._beat_time(env, i) for i in frames])
        conf = _confidence(env, frames, self.fps)
        low = _joined(self._low).astype(np.float64)
        bands = _joined(self._bands, self._onsets.n_bands).astype(np.float32)
        accents = np.array([np.dot(ACCENT_WEIGHTS, accent_parts(env, low, bands, int(i), periods[i])) for i in frames])
        positions, db_conf = bar_positions(accents, self.beats_per_bar)
        if db_conf < MIN_BAR_CONFIDENCE:  # no accent pattern: do not invent downbeats
            positions, db_conf = np.full(len(frames), -1), 0.0
        return BeatMap(times, conf, positions, tempo, self.beats_per_bar, db_conf)

    def bars_at(self, times: np.ndarray) -> tuple[np.ndarray, float]:
        """Bar positions (0 = downbeat; −1 when no accent pattern stands out) and their confidence
        for beats another tracker found at `times`, from the accents this pass heard there."""
        env = _joined(self._strength).astype(np.float64)
        if len(times) < 2 or len(env) == 0:
            return np.full(len(times), -1), 0.0
        low = _joined(self._low).astype(np.float64)
        bands = _joined(self._bands, self._onsets.n_bands).astype(np.float32)
        frames = np.clip(np.round((np.asarray(times) + ONSET_DELAY_S) * self.fps - 1).astype(int), 0, len(env) - 1)
        periods = np.gradient(np.asarray(times, dtype=np.float64)) * self.fps
        accents = np.array([np.dot(ACCENT_WEIGHTS, accent_parts(env, low, bands, int(i), p)) for i, p in zip(frames, periods)])
        positions, conf = bar_positions(accents, self.beats_per_bar)
        if conf < MIN_BAR_CONFIDENCE:
            return np.full(len(times), -1), 0.0
        return positions, conf

    def _beat_time(self, env: np.ndarray, i: int) -> float:
        """Frame i's beat time: its activation peak to a fraction of a frame, less the onset delay."""
        shift = 0.0
        if 0 < i < len(env) - 1 and env[i] >= env[i - 1] and env[i] >= env[i + 1]:
            den = env[i - 1] - 2 * env[i] + env[i + 1]
            shift = 0.5 * (env[i - 1] - env[i + 1]) / den if abs(den) > 1e-12 else 0.0
        return (i + 1 + shift) / self.fps - ONSET_DELAY_S


def _joined(parts: list[np.ndarray], width: int | None = None) -> np.ndarray:
    if parts:
        return np.concatenate(parts)
    return np.zeros((0, width) if width else 0)


def local_periods(env: np.ndarray, fps: float) -> tuple[np.ndarray, float | None]:
    """(beat period in frames for every frame, median tempo in BPM), from 8 s windows every 1 s."""
    win, step = int(TEMPO_WINDOW_S * fps), int(TEMPO_STEP_S * fps)
    centres, values, held = [], [], None
    for start in range(0, max(1, len(env) - win // 2), step):
        est = estimate_tempo(env[start : start + win], fps, held)
        if est is not None and est.confidence > 0.1:
            held = est.period
            centres.append(min(start + win // 2, len(env) - 1))
            values.append(est.period)
    if not values:
        return np.full(len(env), 60.0 * fps / 120.0), None
    periods = np.interp(np.arange(len(env)), centres, values)
    return periods, float(60.0 * fps / np.median(values))


def track_beats(env: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """Ellis' beat-tracking dynamic programme with a per-frame period; returns beat frame indices."""
    n = len(env)
    score = env.copy()
    back = np.full(n, -1)
    for t in range(n):
        p = periods[t]
        lo, hi = max(0, int(t - 2 * p)), int(t - p / 2)
        if hi <= lo:
            continue
        gaps = t - np.arange(lo, hi)
        cand = score[lo:hi] - TIGHTNESS * np.log(gaps / p) ** 2
        j = int(np.argmax(cand))
        score[t] += cand[j]
        back[t] = lo + j
    tail = max(0, n - int(periods[-1]) - 1)
    i = tail + int(np.argmax(score[tail:]))
    beats = [i]
    while back[beats[-1]] >= 0:
        beats.append(back[beats[-1]])
    return np.asarray(beats[::-1])


def active_frames(rms: np.ndarray, fps: float) -> np.ndarray:
    """Frames with audible sound in the half second before them or the 50 ms after (a beat in
    silence is not a beat; the music's last beat may ring for a moment)."""
    back, ahead = int(0.5 * fps), int(0.05 * fps)
    loud = np.concatenate([np.zeros(back), (rms > SILENCE_RMS).astype(np.float64), np.zeros(ahead)])
    sums = np.cumsum(np.concatenate([[0.0], loud]))
    n = len(rms)
    return (sums[back + ahead + 1 : back + ahead + 1 + n] - sums[:n]) > 0


def _confidence(env: np.ndarray, frames: np.ndarray, fps: float) -> np.ndarray:
    out = np.zeros(len(frames))
    w = int(4 * fps)
    for n, i in enumerate(frames):
        local = env[max(0, i - w) : i + w]
        base, top = np.median(local), np.percentile(local, 95)
        peak = env[max(0, i - 2) : i + 3].max()
        out[n] = np.clip((peak - base) / (top - base + 1e-9), 0.0, 1.0)
    return out


def bar_positions(accents: np.ndarray, beats_per_bar: int = 4) -> tuple[np.ndarray, float]:
    """Bar position (0 = downbeat) of every beat, by Viterbi over "position advances by one" with a
    small chance of a jump; the downbeat state is rewarded by the beat's accent. Also a confidence:
    the margin of the mean accent on downbeats over the best other position."""
    n, m = len(accents), beats_per_bar
    if n < 2 * m:
        return np.full(n, -1), 0.0
    z = (accents - accents.mean()) / (accents.std() + 1e-9)
    stay, jump = math.log(1 - BAR_SWITCH), math.log(BAR_SWITCH / (m - 1))
    trans = np.full((m, m), jump)
    trans[np.arange(m), (np.arange(m) + 1) % m] = stay
    delta = np.where(np.arange(m) == 0, z[0], 0.0)
    back = np.zeros((n, m), dtype=int)
    for k in range(1, n):
        cand = delta[:, None] + trans  # from state i to state j
        back[k] = np.argmax(cand, axis=0)
        delta = cand[back[k], np.arange(m)] + np.where(np.arange(m) == 0, z[k], 0.0)
    pos = np.zeros(n, dtype=int)
    pos[-1] = int(np.argmax(delta))
    for k in range(n - 1, 0, -1):
        pos[k - 1] = back[k, pos[k]]
    means = np.array([accents[pos == j].mean() if (pos == j).any() else -np.inf for j in range(m)])
    others = np.max(means[1:])
    conf = float(np.clip((means[0] - others) / (abs(means[0]) + 1e-9), 0.0, 1.0))
    return pos, conf


def analyze_beats(path: str | Path, block_size: int = 4800) -> BeatMap:
    """The BeatMap of an audio file (decoded block by block)."""
    from engine.audio.io import iter_audio_blocks

    analyzer = BeatAnalyzer(SAMPLE_RATE)
    for block in iter_audio_blocks(path, block_size, SAMPLE_RATE):
        analyzer.feed(block)
    return analyzer.finish()
