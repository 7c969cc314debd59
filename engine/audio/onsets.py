"""Onset activation: multi-band spectral flux with adaptive whitening, one value per hop.

The beat trackers (causal `engine.audio.beats`, offline `engine.audio.beatmap`) listen to this one
signal. Per hop it takes the magnitude spectrum the feature tracker already computed and:

1. sums it into ~20 log-spaced bands (a kick, a snare and a hi-hat each light up their own bands);
2. whitens each band adaptively (Stowell & Plumbley 2007): divides by a slowly decaying peak of that
   band, so a loud bass line does not drown the hi-hats and a quiet intro still has onsets;
3. log-compresses and takes the half-wave rectified rise against the frame two hops back (20 ms:
   a 10 ms hop alone splits an attack over two frames);
4. averages the band rises: `strength`, plus the low (< 200 Hz, kicks) and high (> 5 kHz, hats)
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
class Onset:
    """One hop of activation. `strength`, `low`, `high` ≥ 0 (≈ 1 for a clear attack in every band)."""

    strength: float
    low: float
    high: float
    bands: np.ndarray  # compressed, whitened band levels (N_BANDS,)


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
    """Streaming activation for magnitude spectra of one stream (one call per hop, in order)."""

    def __init__(self, sample_rate: int, n_fft: int, fps: float) -> None:
        self.matrix, centres = band_matrix(sample_rate, n_fft)
        self.n_bands = len(centres)
        # One matmul gives the mean rise over all bands, the low bands and the high bands.
        parts = np.stack([np.ones(self.n_bands), centres < LOW_HZ, centres > HIGH_HZ]).astype(np.float32)
        self._parts = parts / np.maximum(parts.sum(axis=1, keepdims=True), 1.0)
        self._decay = float(0.5 ** (1.0 / (WHITEN_DECAY_S * fps)))
        self.reset()

    def reset(self) -> None:
        self._peak = np.full(self.n_bands, WHITEN_FLOOR, dtype=np.float32)
        self._hist = [np.zeros(self.n_bands, dtype=np.float32) for _ in range(2)]  # levels at t-2, t-1

    def process(self, mag: np.ndarray) -> Onset:
        """`mag`: |rfft| of one windowed frame."""
        level = self.matrix @ mag.astype(np.float32, copy=False)
        self._peak = np.maximum(np.maximum(level, WHITEN_FLOOR), self._peak * self._decay)
        comp = np.log1p(COMPRESSION * level / self._peak).astype(np.float32)
        rise = np.maximum(comp - self._hist[0], 0.0)
        self._hist = [self._hist[1], comp]
        strength, low, high = (self._parts @ rise).tolist()
        return Onset(strength, low, high, comp)
