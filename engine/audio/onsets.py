"""Onset activation: multi-band spectral flux with adaptive whitening, one value per hop.

The beat trackers (causal `engine.audio.beats`, offline `engine.audio.beatmap`) listen to this one
signal. For each hop it takes the magnitude spectrum the feature tracker already computed and:

1. sums it into ~20 log-spaced bands (a kick, a snare and a hi-hat each light up their own bands);
2. whitens each band adaptively (Stowell & Plumbley 2007): divides by a slowly decaying peak of that
   band, so a loud bass line does not drown the hi-hats and a quiet intro still has onsets;
3. log-compresses and takes the half-wave rectified rise against the frame two hops back (20 ms:
   a 10 ms hop alone splits an attack over two frames);
4. averages the band rises: `strength`, plus the low (< 120 Hz, kicks) and high (> 5 kHz, hats)
   parts, and the compressed band levels (`bands`, what a chord change moves, for downbeats).

A frame at hop time t sees the N_FFT samples before t: an attack at time τ peaks in the activation
about `ONSET_DELAY_S` later (measured on clicks and drums, see tests/test_beats.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_BANDS = 20
F_MIN, F_MAX = 30.0, 16000.0
LOW_HZ, HIGH_HZ = 120.0, 5000.0
WHITEN_DECAY_S = 8.0  # a band's peak follower halves in about this long
WHITEN_FLOOR = 1e-4  # below this a band is silence: no whitening gain for noise
COMPRESSION = 20.0  # log1p(COMPRESSION · whitened level)
ONSET_DELAY_S = 0.012  # attack → activation peak, for a 1024-point frame at 48 kHz


@dataclass(frozen=True)
class Onsets:
    """Activation for a run of hops, one row per hop. `strength`, `low`, `high` ≥ 0 (≈ 1 for a
    clear attack in every band); `bands`: the compressed, whitened band levels (hops × N_BANDS)."""

    strength: np.ndarray
    low: np.ndarray
    high: np.ndarray
    bands: np.ndarray


class SampleTail:
    """The newest `keep` samples of a stream (silence before it starts), appended block by block
    into a buffer with room for more, so a block costs a copy of itself, not of the whole tail."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._buf = np.zeros(4 * keep, dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        self._buf[:] = 0
        self._end = self.keep

    def append(self, x: np.ndarray) -> None:
        n, keep = len(x), self.keep
        if n >= keep:
            self._buf[:keep], self._end = x[-keep:], keep
            return
        if self._end + n > len(self._buf):  # out of room: move the tail back to the start
            self._buf[:keep], self._end = self._buf[self._end - keep : self._end], keep
        self._buf[self._end : self._end + n] = x
        self._end += n

    def last(self, k: int) -> np.ndarray:
        """The newest k ≤ keep samples (a view: valid until the next append)."""
        return self._buf[self._end - k : self._end]


def hop_spectra(before: np.ndarray, x: np.ndarray, hop: int, window: np.ndarray) -> np.ndarray:
    """|rfft| of the windowed frame ending with each whole hop of `x` (hops × bins), in one call;
    `before`: the len(window) − hop samples before `x`."""
    n = len(x) // hop
    tail = np.concatenate([before, x[: n * hop]])
    frames = tail[None] if n == 1 else np.lib.stride_tricks.sliding_window_view(tail, len(window))[::hop]
    return np.abs(np.fft.rfft(frames * window, axis=1))


def band_matrix(sample_rate: int, n_fft: int, n_bands: int = N_BANDS) -> tuple[np.ndarray, np.ndarray]:
    """(bands × bins) 0/1 matrix of log-spaced bands, each at least one bin wide; and band centres."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = np.geomspace(F_MIN, min(F_MAX, sample_rate / 2), n_bands + 1)
    rows, centres = [], []
    lo = int(np.searchsorted(freqs, edges[0]))
    for hi_f in edges[1:]:
        hi = max(lo + 1, int(np.searchsorted(freqs, hi_f)))
        if hi > len(freqs) or lo >= hi:
            break
        row = np.zeros(len(freqs), dtype=np.float32)
        row[lo:hi] = 1.0
        rows.append(row)
        centres.append(float(freqs[lo:hi].mean()))
        lo = hi
    return np.stack(rows), np.asarray(centres)


class OnsetDetector:
    """Streaming activation for the magnitude spectra of one stream, a block of hops per call.

    A block is worked on as a whole (one matmul for all its hops), so a caller that fell behind and
    hands over many hops at once catches up faster; the result does not depend on how the stream
    was cut into blocks.
    """

    def __init__(self, sample_rate: int, n_fft: int, fps: float) -> None:
        matrix, centres = band_matrix(sample_rate, n_fft)
        self._to_bands = np.ascontiguousarray(matrix.T)  # bins × bands
        self.n_bands = len(centres)
        # One matmul gives the mean rise over all bands, the low bands and the high bands.
        parts = np.stack([np.ones(self.n_bands), centres < LOW_HZ, centres > HIGH_HZ]).astype(np.float32)
        self._parts = np.ascontiguousarray((parts / np.maximum(parts.sum(axis=1, keepdims=True), 1.0)).T)
        self._decay = np.float32(0.5 ** (1.0 / (WHITEN_DECAY_S * fps)))
        self.reset()

    def reset(self) -> None:
        self._peak = np.full(self.n_bands, WHITEN_FLOOR, dtype=np.float32)
        self._hist = np.zeros((2, self.n_bands), dtype=np.float32)  # levels at t-2, t-1

    def process(self, mags: np.ndarray) -> Onsets:
        """`mags`: |rfft| of consecutive windowed frames, one row per hop (hops × bins, float32)."""
        level = mags @ self._to_bands
        peak = np.maximum(level, WHITEN_FLOOR)
        for row in peak:  # each band's peak decays from hop to hop unless the level tops it
            np.maximum(row, self._peak * self._decay, out=row)
            self._peak = row
        self._peak = self._peak.copy()
        comp = np.log1p(COMPRESSION * level / peak)
        prev = np.concatenate([self._hist, comp])  # each hop's rise is against the level two hops back
        rise = np.maximum(comp - prev[: len(comp)], 0.0)
        self._hist = prev[-2:]
        strength, low, high = (rise @ self._parts).T
        return Onsets(strength, low, high, comp)
