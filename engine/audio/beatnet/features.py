"""The learned tracker's input: log-filtered magnitude spectra at 100 frames/s, and their rise.

Each frame is the |rfft| of the 1024 samples (48 kHz, Hann) ending at a 480-sample hop — the very
spectra the live feature thread already computes (`engine.audio.onsets.hop_spectra`), so live use
adds no FFT. The spectrum is summed into `N_BANDS` bands (linear below ~1 kHz where a 1024-point
frame has no finer resolution, log-spaced above: `engine.audio.onsets.band_matrix`),
log-compressed, and paired with its half-wave rectified rise against the previous frame: a
frame's input is `2 · N_BANDS` numbers. Streaming (`LogBands.process`, block by block) and one
pass (`features_of`) give the same rows.
"""

from __future__ import annotations

import numpy as np

from engine.audio.onsets import band_matrix, hop_spectra
from engine.types import SAMPLE_RATE

N_FFT, HOP = 1024, 480
FPS = SAMPLE_RATE / HOP  # 100 frames per second
N_BANDS = 40
N_INPUT = 2 * N_BANDS


def _to_bands() -> np.ndarray:
    matrix, _ = band_matrix(SAMPLE_RATE, N_FFT, N_BANDS)
    assert matrix.shape[0] == N_BANDS
    return np.ascontiguousarray(matrix.T)  # bins × bands


class LogBands:
    """Streaming features of one stream: magnitude spectra (hops × bins) in, rows (hops × N_INPUT) out."""

    def __init__(self) -> None:
        self._matrix = _to_bands()
        self.reset()

    def reset(self) -> None:
        self._prev = np.zeros(N_BANDS, dtype=np.float32)

    def process(self, mags: np.ndarray) -> np.ndarray:
        comp = np.log1p(np.asarray(mags, dtype=np.float32) @ self._matrix)
        prev = np.concatenate([self._prev[None], comp[:-1]])
        self._prev = comp[-1].copy()
        return np.concatenate([comp, np.maximum(comp - prev, 0.0)], axis=1).astype(np.float32)


def features_of(audio: np.ndarray) -> np.ndarray:
    """One pass over a whole 48 kHz mono signal: frames × N_INPUT (frame i ends at (i + 1) · 10 ms)."""
    x = np.asarray(audio, dtype=np.float32)
    n = len(x) // HOP
    if n == 0:
        return np.zeros((0, N_INPUT), dtype=np.float32)
    window = np.hanning(N_FFT).astype(np.float32)
    rows = []
    before = np.zeros(N_FFT - HOP, dtype=np.float32)
    step = 6000 * HOP  # a minute at a time: bounded memory for long tracks
    bands = LogBands()
    for start in range(0, n * HOP, step):
        chunk = x[start : min(start + step, n * HOP)]
        rows.append(bands.process(hop_spectra(before, chunk, HOP, window).astype(np.float32)))
        before = np.concatenate([before, chunk])[-(N_FFT - HOP):]
    return np.concatenate(rows)


def frame_times(n: int) -> np.ndarray:
    """The time (s) at the end of each of `n` frames."""
    return (np.arange(n) + 1) / FPS
