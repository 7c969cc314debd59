"""Where a track's sections begin: novelty on the self-similarity of its sound over time.

1. Features every 0.1 s (`section_features`, streamed, so a 3-hour mix is fine): loudness (dBFS) and
   the energy of 16 log-spaced bands (dB), i.e. how loud and what it sounds like. They are pooled to
   `hop_s` and standardised per dimension.
2. Novelty (Foote 2000): slide a checkerboard kernel along the diagonal of the self-similarity
   matrix. With squared distances and a Gaussian taper the checkerboard sum is *exactly* the squared
   distance between the tapered means of the `kernel_s` before and after each instant (the within-
   block spreads cancel), so the matrix is never built: two moving averages per dimension.
3. CLAP embeddings, when given, add a second novelty curve of the same kind (unit vectors, so it is
   cosine distance); each curve is scaled to its own peak before they are averaged.
4. Peaks at least `min_gap_s` apart and higher than `threshold` of the highest (or of a floor, so a
   steady track stays one section) are boundaries; each
   is refined on the 0.1 s features to where the sound changes most within half a second.

Each section gets its loudness and, when it sounds like an earlier one (a returning chorus), that
section's number — hints for whoever edits the schedule skeleton.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
from scipy.signal import find_peaks

if TYPE_CHECKING:
    import torch

    from engine.types import Window

FRAME_S = 0.1
N_BANDS = 16
BAND_LO_HZ, BAND_HI_HZ = 60.0, 16_000.0
CHROMA_LO_HZ, CHROMA_HI_HZ = 60.0, 5_000.0
EDGE_S = 2.0  # no boundary this close to the start or the end of the track
SIMILAR = 0.85
FLOOR_DB = 60.0
# Novelty below these is no section change however flat the rest of the track is (curves are
# scaled to their peak, or to this when the peak is lower): squared z-score distance summed over
# the features, and squared distance between mean unit CLAP embeddings (≈ 2 × cosine distance).
MIN_FEATURE_NOVELTY = 4.0
MIN_EMBEDDING_NOVELTY = 0.05  # cosine of two sections' mean features above which one is "like" the other


@dataclass(frozen=True)
class Section:
    start: float
    end: float
    loudness_db: float
    like: int | None = None  # 1-based number of an earlier section it sounds like
    letter: str = ""  # sections with one letter are the same music (engine/directing/leitmotif.py)


@dataclass(frozen=True)
class SectionFeatures:
    values: np.ndarray  # (n, 1 + N_BANDS): loudness dB, band energies dB, one row per FRAME_S
    power: np.ndarray  # (n,) mean square of each frame (for loudness per section)
    chroma: np.ndarray = field(default_factory=lambda: np.zeros((0, 12)))  # (n, 12) pitch-class energy

    @property
    def duration(self) -> float:
        return len(self.values) * FRAME_S


class EncodesAudio(Protocol):
    """A CLAP encoder (engine.understanding.clap.ClapEncoder): one window → a (1, D) embedding."""

    def encode_audio(self, audio: Window) -> torch.Tensor: ...


def section_features(blocks: Iterable[np.ndarray], sample_rate: int) -> SectionFeatures:
    """Loudness and band energies of every FRAME_S of audio, from blocks of any size."""
    n = int(round(FRAME_S * sample_rate))
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    edges = np.geomspace(BAND_LO_HZ, min(BAND_HI_HZ, sample_rate / 2), N_BANDS + 1)
    band = np.clip(np.searchsorted(edges, freqs) - 1, -1, N_BANDS)
    weights = np.zeros((len(freqs), N_BANDS), np.float32)
    inside = (band >= 0) & (band < N_BANDS)
    weights[np.nonzero(inside)[0], band[inside]] = 1.0
    pitch = np.full(len(freqs), -1)
    tonal = (freqs >= CHROMA_LO_HZ) & (freqs <= CHROMA_HI_HZ)
    pitch[tonal] = np.rint(12 * np.log2(freqs[tonal] / 440.0) + 69).astype(int) % 12
    chroma_w = np.zeros((len(freqs), 12), np.float32)
    chroma_w[np.nonzero(tonal)[0], pitch[tonal]] = 1.0
    window = np.hanning(n).astype(np.float32)
    rows, powers, chromas, pending = [], [], [], np.zeros(0, np.float32)
    for block in blocks:
        pending = np.concatenate([pending, np.asarray(block, np.float32)])
        k = len(pending) // n
        if k:
            frames = pending[: k * n].reshape(k, n)
            pending = pending[k * n :]
            spectrum = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
            power = np.mean(frames**2, axis=1)
            rows.append(np.column_stack([10 * np.log10(power + 1e-10), 10 * np.log10(spectrum @ weights + 1e-10)]))
            powers.append(power)
            chromas.append(spectrum @ chroma_w)
    if not rows:
        return SectionFeatures(np.zeros((0, 1 + N_BANDS)), np.zeros(0), np.zeros((0, 12)))
    values = np.concatenate(rows)
    # Nearly empty bands (a pure tone's far side, digital silence) wobble by tens of dB on rounding
    # noise: nothing more than FLOOR_DB below the track's loudest is told apart.
    values[:, 0] = np.maximum(values[:, 0], values[:, 0].max() - FLOOR_DB)
    values[:, 1:] = np.maximum(values[:, 1:], values[:, 1:].max() - FLOOR_DB)
    return SectionFeatures(values, np.concatenate(powers), np.concatenate(chromas))


def _standardise(x: np.ndarray) -> np.ndarray:
    """Per-dimension z-scores; every feature is in dB, and a spread under 1 dB counts as 1 dB, so a
    steady track's tiny wobbles are not blown up into changes."""
    return (x - x.mean(0)) / np.maximum(x.std(0), 1.0)


def _pool(x: np.ndarray, k: int) -> np.ndarray:
    n = len(x) // k * k
    pooled = x[:n].reshape(-1, k, x.shape[1]).mean(1)
    return np.concatenate([pooled, x[n:].mean(0, keepdims=True)]) if n < len(x) else pooled


def novelty(x: np.ndarray, half_width: int) -> np.ndarray:
    """Checkerboard novelty at each row boundary i (between rows i−1 and i): the squared distance
    between the Gaussian-tapered means of the `half_width` rows before and after it. Boundaries
    where either side has less than two thirds of its weight (near the track's ends) score 0."""
    n, d = x.shape
    h = half_width
    taper = np.exp(-0.5 * ((np.arange(h) + 0.5) / (0.5 * h)) ** 2)
    xp = np.zeros((n + 2 * h, d))
    xp[h : h + n] = x
    present = np.zeros(n + 2 * h)
    present[h : h + n] = 1.0
    sums = np.zeros((2, n + 1, d))
    weights = np.zeros((2, n + 1))
    for k in range(h):  # row i−1−k before boundary i, row i+k after it
        for side, first in ((0, h - 1 - k), (1, h + k)):
            sums[side] += taper[k] * xp[first : first + n + 1]
            weights[side] += taper[k] * present[first : first + n + 1]
    ok = weights.min(0) >= 2 * taper.sum() / 3
    out = np.zeros(n + 1)
    means = sums[:, ok] / weights[:, ok, None]
    out[ok] = np.sum((means[0] - means[1]) ** 2, axis=1)
    return out


def _peaks(curve: np.ndarray, hop_s: float, min_gap_s: float, threshold: float, duration: float) -> list[float]:
    """Boundaries: peaks of the (peak-scaled) curve above `threshold`, at least `min_gap_s` apart."""
    idx, _ = find_peaks(curve, height=threshold, distance=max(1, int(min_gap_s / hop_s)))
    times = [i * hop_s for i in idx]
    return [t for t in times if EDGE_S <= t <= duration - EDGE_S]


def _refine(values: np.ndarray, t: float, reach_s: float = 0.6, half_s: float = 1.0) -> float:
    """The 0.1 s boundary within `reach_s` of `t` where the features change most."""
    h = max(1, int(half_s / FRAME_S))
    centre = int(round(t / FRAME_S))
    lo, hi = max(h, centre - int(reach_s / FRAME_S)), min(len(values) - h, centre + int(reach_s / FRAME_S))
    if hi <= lo:
        return t
    scores = [np.sum((values[i - h : i].mean(0) - values[i : i + h].mean(0)) ** 2) for i in range(lo, hi + 1)]
    return (lo + int(np.argmax(scores))) * FRAME_S


def _resample(times: np.ndarray, emb: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Unit embeddings at the grid's times (the nearest embedding's)."""
    idx = np.rint(np.interp(grid, times, np.arange(len(times)))).astype(int)
    unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-9)
    return unit[idx]


def find_sections(features: SectionFeatures, embeddings: tuple[np.ndarray, np.ndarray] | None = None,
                  hop_s: float = 0.5, kernel_s: float = 8.0, min_gap_s: float = 8.0,
                  threshold: float = 0.25) -> list[Section]:
    """Sections of a track from its features (and optionally (times, CLAP embeddings))."""
    duration = features.duration
    if len(features.values) < 2:
        return [Section(0.0, duration, _loudness(features.power))] if len(features.values) else []
    z = _standardise(features.values)
    pooled = _pool(z, max(1, int(round(hop_s / FRAME_S))))
    half = max(2, min(int(kernel_s / hop_s), len(pooled) // 4))
    feature_curve = novelty(pooled, half)
    curve = feature_curve = feature_curve / max(feature_curve.max(), MIN_FEATURE_NOVELTY)
    if embeddings is not None and len(embeddings[0]):
        grid = (np.arange(len(pooled)) + 0.5) * hop_s
        e = novelty(_resample(np.asarray(embeddings[0]), np.asarray(embeddings[1], np.float64), grid), half)
        curve = 0.5 * (curve + e / max(e.max(), MIN_EMBEDDING_NOVELTY))
    peaks = _peaks(curve, hop_s, min_gap_s, threshold, duration)
    # Refine on the 0.1 s features only where they see the change (not one only CLAP heard).
    bounds = sorted({round(float(_refine(z, t) if feature_curve[int(round(t / hop_s))] >= threshold else t), 3)
                     for t in peaks})
    starts = [0.0] + bounds
    ends = bounds + [duration]
    return _letter(_describe(features, z, starts, ends), features, embeddings)


def _loudness(power: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(power) + 1e-10)) if len(power) else -100.0


def _describe(features: SectionFeatures, z: np.ndarray, starts: list[float], ends: list[float]) -> list[Section]:
    out: list[Section] = []
    means: list[np.ndarray] = []
    for s, e in zip(starts, ends):
        a, b = int(round(s / FRAME_S)), max(int(round(e / FRAME_S)), int(round(s / FRAME_S)) + 1)
        mean = z[a:b].mean(0)
        like = None
        for j, m in enumerate(means):
            cos = float(mean @ m / max(np.linalg.norm(mean) * np.linalg.norm(m), 1e-9))
            if cos > SIMILAR:
                like = j + 1
                break
        means.append(mean)
        out.append(Section(round(float(s), 3), round(float(e), 3), round(_loudness(features.power[a:b]), 1), like))
    return out


def _letter(sections: list[Section], features: SectionFeatures,
            embeddings: tuple[np.ndarray, np.ndarray] | None) -> list[Section]:
    """Each section's letter: its fingerprint clustered with the sections before it (leitmotif.py)."""
    from dataclasses import replace

    from engine.directing.leitmotif import fingerprint, letters

    prints = []
    for s in sections:
        a, b = int(round(s.start / FRAME_S)), max(int(round(s.end / FRAME_S)), int(round(s.start / FRAME_S)) + 1)
        clap = None
        if embeddings is not None and len(embeddings[0]):
            inside = (embeddings[0] >= s.start) & (embeddings[0] < s.end)
            clap = np.asarray(embeddings[1])[inside] if inside.any() else None
        prints.append(fingerprint(features.values[a:b], features.chroma[a:b], clap))
    return [replace(s, letter=x) for s, x in zip(sections, letters(prints))]


def clap_embeddings(encoder: EncodesAudio, blocks: Iterable[np.ndarray], sample_rate: int, hop_s: float = 1.0,
                    window_s: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """(times, embeddings) of CLAP windows *centred* every `hop_s` (a window ending at t would put
    every boundary half a window late); `encoder` has encode_audio(Window) -> (1, D)."""
    from engine.types import Window

    n_win, hop = int(window_s * sample_rate), max(1, int(hop_s * sample_rate))
    half = n_win // 2
    buf, buf_start, total, centre = np.zeros(half, np.float32), -half, 0, 0  # silence before the start
    times, embs = [], []

    def emit(c: int) -> None:
        a = c - half - buf_start
        w = buf[a : a + n_win]
        w = np.pad(w, (0, n_win - len(w)))  # silence after the end
        emb = encoder.encode_audio(Window(w, t_end=(c + half) / sample_rate, sample_rate=sample_rate))
        times.append(c / sample_rate)
        embs.append(np.asarray(emb.detach().float().cpu()).reshape(-1))

    for block in blocks:
        buf = np.concatenate([buf, np.asarray(block, np.float32)])
        total += len(block)
        while centre + half <= total:
            emit(centre)
            centre += hop
        drop = centre - half - buf_start
        if drop > 0:
            buf, buf_start = buf[drop:], buf_start + drop
    while centre <= total:
        emit(centre)
        centre += hop
    return np.asarray(times), np.asarray(embs)
