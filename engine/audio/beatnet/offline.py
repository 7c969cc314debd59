"""The learned offline beat pass: features of a whole track → the offline network → bar-pointer Viterbi.

Same interface as the DSP pass (`engine.audio.beatmap.BeatAnalyzer`): `feed(block)` as the track is
decoded, `finish()` → a `BeatMap` whose `beats_per_bar` is the decoded meter (2 for 6/8: dotted
quarter beats). Where the network hears no bar (its downbeat probability no higher on the decoded
downbeats than elsewhere), the DSP pass's accents number the learned beats in 4/4 bars when they
show a pattern (an accented metronome), else no beat is called a downbeat. Beats where nothing is audible,
beats before the first and after the last one the network heard (beat probability ≥ `MIN_PEAK`:
the decoder carries beats through gaps, not past the ends), and all beats when it heard none, are
dropped: silence gives no beats.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.audio.beatmap import BeatAnalyzer, BeatMap, active_frames
from engine.audio.beatnet.decode import decode
from engine.audio.beatnet.features import HOP, N_FFT, LogBands
from engine.audio.beatnet.net import Net, TempoViews, beat_time_of_frame
from engine.audio.onsets import SampleTail, hop_spectra
from engine.types import SAMPLE_RATE

# The network hears the track three times: as it is, and played 7 % slower and 7 % faster (as its
# training's tempo augmentation plays pieces); the decoder reads the mean of the three. On the 125
# validation pieces this lifts beat F from 0.900 to 0.909 (±5 %: 0.906; adding ±13 %: 0.908).
TEMPO_VIEWS = (1.0, 0.93, 1.07)
MIN_PEAK = 0.2  # a track whose beat probability never reaches this has no beats
# The network's downbeat probability must stand this much higher on the decoded downbeats than on
# the other beats for it to call them downbeats. The 64-channel net shows up to 0.28 on a short
# track of equal clicks (it hears the track's edges); on the 125 validation pieces this costs
# downbeat F 0.860 → 0.831 against the 0.1 the DSP accents need (accents.MIN_BAR_CONFIDENCE); 7 pieces fall below it.
MIN_BAR_MARGIN = 0.3


class LearnedBeatAnalyzer:
    """Collects features from blocks of a 48 kHz stream; `finish()` decodes the whole track."""

    def __init__(self, net: Net) -> None:
        self.fps = SAMPLE_RATE / HOP
        self._bands = LogBands()
        self._window = np.hanning(N_FFT).astype(np.float32)
        self._past = SampleTail(N_FFT - HOP)
        self._pending = np.zeros(0, dtype=np.float32)
        self._views = TempoViews(net, TEMPO_VIEWS)  # they run as the features arrive; the track's features are never all held
        self._rms: list[np.ndarray] = []
        self._accents = BeatAnalyzer(SAMPLE_RATE)  # the DSP pass, for its accents only

    def feed(self, block: np.ndarray) -> None:
        self._accents.feed(block)
        data = np.concatenate([self._pending, np.asarray(block, dtype=np.float32).reshape(-1)])
        n = len(data) // HOP
        self._pending = data[n * HOP :]
        if n == 0:
            return
        whole = data[: n * HOP]
        mags = hop_spectra(self._past.last(self._past.keep), whole, HOP, self._window)
        self._past.append(whole)
        self._views.feed(self._bands.process(mags.astype(np.float32)))
        hops = whole.reshape(n, HOP)
        self._rms.append(np.sqrt(np.add.reduce(hops * hops, axis=1) / HOP))

    def activations(self) -> np.ndarray:
        """The whole track's activations (frames × 2), the mean over the tempo views; call once, at the end."""
        return self._views.finish()

    def finish(self) -> BeatMap:
        act = self.activations()
        rms = np.concatenate(self._rms) if self._rms else np.zeros(0)
        return beatmap_of(act, rms, self.fps, self._accents.bars_at)


def track_activations(net: Net, feats: np.ndarray) -> np.ndarray:
    """A whole track's features (frames × N_INPUT) → the activations `LearnedBeatAnalyzer` decodes."""
    views = TempoViews(net, TEMPO_VIEWS)
    views.feed(feats)
    return views.finish()


def _peak_shift(x: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Where each activation peak lies between frames (parabola through its neighbours), −0.5..0.5."""
    i = np.clip(frames, 1, len(x) - 2)
    a, b, c = x[i - 1], x[i], x[i + 1]
    den = a - 2 * b + c
    shift = np.where(np.abs(den) > 1e-9, 0.5 * (a - c) / np.where(np.abs(den) > 1e-9, den, 1.0), 0.0)
    inside = (frames >= 1) & (frames <= len(x) - 2) & (b >= a) & (b >= c)
    return np.where(inside, np.clip(shift, -0.5, 0.5), 0.0)


def beatmap_of(act: np.ndarray, rms: np.ndarray, fps: float,
               bars_at: Callable[[np.ndarray], tuple[np.ndarray, float]] | None = None) -> BeatMap:
    """Decode activations (frames × 2) into a BeatMap; `rms` per frame drops beats in silence;
    `bars_at(times)`: bar positions from elsewhere, for when the network hears no bar."""
    empty = BeatMap(np.zeros(0), np.zeros(0), np.zeros(0, int), 120.0, 4)
    if len(act) < 2 or float(act[:, 0].max()) < MIN_PEAK:
        return empty
    d = decode(act)
    keep = active_frames(rms, fps)[np.minimum(d.frames, len(rms) - 1)] if len(rms) else np.ones(len(d.frames), bool)
    keep &= np.asarray(beat_time_of_frame(d.frames)) > -1.5 / fps  # frame 0 is the track's first instant
    frames, positions = d.frames[keep], d.positions[keep]
    if len(frames) < 2:
        return empty
    times = np.maximum(np.asarray(beat_time_of_frame(frames + _peak_shift(act[:, 0], frames)), dtype=np.float64), 0.0)
    lo, hi = np.maximum(frames - 2, 0), np.minimum(frames + 3, len(act))
    conf = np.array([act[a:b, 0].max() for a, b in zip(lo, hi)])
    down = np.array([act[a:b, 1].max() for a, b in zip(lo, hi)])
    strong = np.nonzero(conf >= MIN_PEAK)[0]  # the decoder carries beats through gaps, not past the ends
    if len(strong) < 2:
        return empty
    ends = slice(int(strong[0]), int(strong[-1]) + 1)
    frames, positions, times, conf, down = frames[ends], positions[ends], times[ends], conf[ends], down[ends]
    db = positions == 0
    db_conf = float(np.clip(down[db].mean() - (down[~db].mean() if (~db).any() else 0.0), 0.0, 1.0)) if db.any() else 0.0
    per_bar = d.beats_per_bar
    if db_conf < MIN_BAR_MARGIN:  # the network hears no bar: the accents may; else no downbeats
        positions, db_conf = bars_at(times) if bars_at is not None else (np.full(len(frames), -1), 0.0)
        per_bar = 4 if db_conf > 0 else per_bar
    tempo = float(60.0 / np.median(np.diff(times)))
    return BeatMap(times, np.clip(conf, 0.0, 1.0), positions, tempo, per_bar, db_conf)
