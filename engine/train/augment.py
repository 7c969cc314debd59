"""Audio augmentations for head training (seed thesis §5.6), seeded so runs repeat bit for bit.

A song gives many training windows: a random 10 s crop of its middle 3/5, slightly faster or slower
(time stretch), slightly higher or lower (pitch shift), with a little noise and a random gain. Each
is a resampling or a sum, done with soxr on the CPU — cheap next to a CLAP forward pass.

Time stretch and pitch shift are both resampling tricks: stretch resamples and keeps the new length
(tempo and pitch move together, like a turntable's pitch fader, which is what DJs do to music anyway);
pitch shift resamples and then restores the duration with WSOLA (a waveform-similarity overlap-add
stretch that keeps pitch). No phase vocoder, and CLAP's embedding is robust to the small artefacts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr

from engine.types import SAMPLE_RATE


@dataclass(frozen=True)
class AugmentConfig:
    seconds: float = 10.0
    stretch: float = 0.08  # max relative speed change (±8 %)
    pitch_semitones: float = 2.0  # max shift, ±
    noise_db: tuple[float, float] = (-45.0, -25.0)  # noise level relative to the signal's RMS
    gain_db: tuple[float, float] = (-6.0, 3.0)
    p_stretch: float = 0.5
    p_pitch: float = 0.5
    p_noise: float = 0.5


def random_crop(samples: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random `n`-sample crop; shorter audio is zero-padded at the end (never fails)."""
    if len(samples) <= n:
        return np.pad(samples, (0, n - len(samples))).astype(np.float32)
    start = int(rng.integers(0, len(samples) - n + 1))
    return samples[start : start + n].astype(np.float32, copy=True)


def _resample_by(x: np.ndarray, factor: float) -> np.ndarray:
    """Play `x` `factor` times faster (fewer samples for factor > 1)."""
    out_rate = max(1, int(round(SAMPLE_RATE / factor)))
    return soxr.resample(x, SAMPLE_RATE, out_rate, quality="HQ").astype(np.float32, copy=False)


def time_stretch(x: np.ndarray, factor: float) -> np.ndarray:
    return _resample_by(x, factor)


def wsola(x: np.ndarray, out_len: int, frame: int = 2048, hop: int = 512, tol: int = 256) -> np.ndarray:
    """Pitch-preserving time stretch to `out_len` samples (WSOLA): each output grain is read near its
    nominal source position, shifted by up to ±`tol` samples to continue the previous grain's waveform
    (cross-correlation, via FFT), then Hann-overlap-added."""
    from scipy.signal import correlate

    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n == 0 or out_len <= 0:
        return np.zeros(max(out_len, 0), np.float32)
    rate = n / out_len
    xp = np.pad(x, (tol, frame + tol + hop))  # every read below stays in range
    win = np.hanning(frame)
    out = np.zeros(out_len + frame)
    norm = np.zeros(out_len + frame)
    prev = None
    for o in range(0, out_len, hop):
        a = int(round(o * rate)) + tol  # nominal source position (in padded coordinates)
        if prev is None:
            pos = a
        else:
            ref = xp[prev + hop : prev + hop + frame // 2]
            region = xp[a - tol : a + tol + frame // 2]
            c = correlate(region, ref, mode="valid", method="fft")
            pos = a - tol + int(np.argmax(c))
        out[o : o + frame] += xp[pos : pos + frame] * win
        norm[o : o + frame] += win
        prev = pos
    return (out[:out_len] / np.maximum(norm[:out_len], 1e-3)).astype(np.float32)


def pitch_shift(x: np.ndarray, semitones: float) -> np.ndarray:
    """Up by `semitones`, duration kept: play 2^(s/12) faster (pitch and tempo up), then WSOLA-stretch
    back to the old length (tempo restored, pitch kept)."""
    ratio = 2.0 ** (semitones / 12.0)
    if len(x) == 0 or ratio == 1.0:
        return np.asarray(x, dtype=np.float32).copy()
    return wsola(_resample_by(x, ratio), len(x))


def add_noise(x: np.ndarray, level_db: float, rng: np.random.Generator) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) or 1e-3
    return (x + rng.standard_normal(len(x)).astype(np.float32) * (rms * 10 ** (level_db / 20))).astype(np.float32)


def augment(samples: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()) -> np.ndarray:
    """One augmented `cfg.seconds` window from a song's samples (48 kHz mono float32)."""
    n = int(round(cfg.seconds * SAMPLE_RATE))
    factor = 1.0 + rng.uniform(-cfg.stretch, cfg.stretch) if rng.random() < cfg.p_stretch else 1.0
    # crop enough source for the stretched window, so stretching never pads
    x = random_crop(samples, int(np.ceil(n * factor)) + 16, rng)
    if factor != 1.0:
        x = time_stretch(x, factor)
    x = x[:n] if len(x) >= n else np.pad(x, (0, n - len(x)))
    if rng.random() < cfg.p_pitch:
        x = pitch_shift(x, rng.uniform(-cfg.pitch_semitones, cfg.pitch_semitones))
    if rng.random() < cfg.p_noise:
        x = add_noise(x, rng.uniform(*cfg.noise_db), rng)
    x = x * np.float32(10 ** (rng.uniform(*cfg.gain_db) / 20))
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def centre_crop(samples: np.ndarray, seconds: float = 10.0) -> np.ndarray:
    """The deterministic validation window: the middle `seconds`."""
    n = int(round(seconds * SAMPLE_RATE))
    if len(samples) <= n:
        return np.pad(samples, (0, n - len(samples))).astype(np.float32)
    start = (len(samples) - n) // 2
    return samples[start : start + n].astype(np.float32, copy=True)
