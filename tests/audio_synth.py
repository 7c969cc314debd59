"""Synthesized test audio of known content (shared by the tests/test_audio_*.py files)."""

from __future__ import annotations

import numpy as np

SR = 48_000


def click_track(bpm: float = 120.0, seconds: float = 20.0, sr: int = SR) -> tuple[np.ndarray, np.ndarray]:
    """Short decaying 1 kHz clicks on every beat; returns (samples, click times)."""
    x = np.zeros(int(seconds * sr), dtype=np.float32)
    times = np.arange(0.0, seconds, 60.0 / bpm)
    n = 480
    click = (np.sin(2 * np.pi * 1000 * np.arange(n) / sr) * np.exp(-np.arange(n) / 100)).astype(np.float32)
    for c in times:
        i = int(round(c * sr))
        x[i : i + n] += click[: len(x) - i]
    return 0.8 * x, times


def tone(freqs: list[float], seconds: float, amp: float = 0.2, sr: int = SR) -> np.ndarray:
    """A chord of harmonic tones (3 partials), with short fades so chord changes do not click."""
    t = np.arange(int(seconds * sr)) / sr
    y = np.zeros_like(t)
    for f in freqs:
        for h, a in ((1, 1.0), (2, 0.4), (3, 0.2)):
            y += a * np.sin(2 * np.pi * f * h * t)
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)
    return (amp * y * fade / max(len(freqs), 1)).astype(np.float32)


def midi(n: float) -> float:
    return 440.0 * 2 ** ((n - 69) / 12)


def progression(minor: bool, bars: int = 4, chord_s: float = 2.0) -> np.ndarray:
    """I–IV–V–I in C major, or its twin i–iv–v–i in C minor (same roots, thirds flattened)."""
    third = 3 if minor else 4
    chords = [(48, 60), (53, 65), (55, 67), (48, 60)]  # (bass root, chord root)
    out = []
    for _ in range(bars):
        for bass, root in chords:
            notes = [bass, root, root + third, root + 7]
            if minor and root == 67:  # natural-minor v: the same flattened third
                notes = [bass, root, root + 3, root + 7]
            out.append(tone([midi(n) for n in notes], chord_s))
    return np.concatenate(out)


def noise_bursts(seconds: float = 12.0, rate_hz: float = 8.0, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Loud, fast broadband noise bursts (high energy, many onsets)."""
    rng = np.random.default_rng(seed)
    x = np.zeros(int(seconds * sr), dtype=np.float32)
    n = int(0.06 * sr)
    env = np.exp(-np.arange(n) / (0.015 * sr)).astype(np.float32)
    for c in np.arange(0, seconds, 1.0 / rate_hz):
        i = int(c * sr)
        seg = rng.standard_normal(n).astype(np.float32) * env * 0.7
        x[i : i + n] += seg[: len(x) - i]
    return np.clip(x, -1, 1)


def soft_pad(seconds: float = 12.0, sr: int = SR) -> np.ndarray:
    """A quiet, slowly swelling low chord (few onsets, dark)."""
    t = np.arange(int(seconds * sr)) / sr
    y = tone([midi(48), midi(55), midi(60)], seconds, amp=0.03, sr=sr)
    return (y * (0.7 + 0.3 * np.sin(2 * np.pi * 0.1 * t))).astype(np.float32)


def run_tracker(x: np.ndarray, block: int = 480, sr: int = SR):
    from engine.audio.features import FeatureTracker

    tr = FeatureTracker(sample_rate=sr, block_size=block)
    feats, beats = [], []
    for k in range(len(x) // block):
        f = tr.process(x[k * block : (k + 1) * block], (k + 1) * block / sr)
        feats.append(f)
        if f.beat:
            beats.append(tr.last_beat_time)
    return tr, feats, np.array(beats)
