"""The demo track: ~60 s of music synthesized by the project, so the README's main command works
on any machine without downloading anything.

It has the arc the visuals should visibly follow:
1. intro  — a slow, soft A-minor pad (i–iv–i–v, minor chords only), dark filter, no drums;
2. build  — the pad's filter opens, a snare roll accelerates (quarters → eighths → sixteenths), a noise
   riser and a rising sweep climb, the harmony turns to E major (the dominant) to lead into…
3. drop   — an energetic A-major section (I–IV–V–IV) at 124 BPM: kick on every beat, snare on 2 and 4, hats, an
   eighth-note bass, the pad pumping under the kick; a crash on the downbeat.

Everything is numpy (additive synthesis: the "filter" is a per-partial gain, so sweeps need no IIR
loop) and a seeded generator for the noise, so one seed always gives the same samples.
`ensure_demo_track()` caches the WAV under the user cache dir, so `beatcanvas demo` synthesizes once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.files import atomic_write
from engine.models.cache import cache_dir
from engine.types import SAMPLE_RATE

log = logging.getLogger(__name__)

DEMO_VERSION = 2  # bump when the synthesis changes, so cached copies are regenerated
BPM = 124.0
BEAT_S = 60.0 / BPM
BAR_S = 4 * BEAT_S

# Minor chords only in the intro and major chords only in the drop: a listener hears the key, but a
# feature tracker estimates the mode chord by chord, so every chord must carry the section's mood.
A_MINOR_CHORDS = [("Am", (57, 60, 64)), ("Dm", (50, 57, 62, 65)), ("Am", (52, 57, 60, 64)), ("Em", (52, 55, 59, 64))]
BUILD_CHORDS = [("Dm", (50, 57, 62, 65)), ("F", (53, 57, 60)), ("E", (52, 56, 59, 64))]
A_MAJOR_CHORDS = [("A", (57, 61, 64)), ("D", (50, 54, 57, 62)), ("E", (52, 56, 59, 64)), ("D", (50, 54, 57, 62))]


@dataclass(frozen=True)
class Section:
    """One part of the arc, in seconds."""

    name: str  # "intro" | "build" | "drop"
    start: float
    end: float


def midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


def demo_sections(seconds: float = 60.0) -> list[Section]:
    """Intro ~42 %, build ~20 %, drop the rest; boundaries land on bar lines of the 124 BPM grid."""
    bars = seconds / BAR_S
    build_bar = max(1, round(bars * 0.42))
    drop_bar = max(build_bar + 1, round(bars * 0.62))
    t_build, t_drop = build_bar * BAR_S, min(drop_bar * BAR_S, seconds)
    return [Section("intro", 0.0, t_build), Section("build", t_build, t_drop), Section("drop", t_drop, seconds)]


# --- instruments ---------------------------------------------------------------------------------


def _lowpass_gain(freq: float, cutoff: np.ndarray | float) -> np.ndarray | float:
    """A smooth 12 dB/oct-like roll-off as a gain per partial (additive synthesis's filter)."""
    return 1.0 / (1.0 + (freq / cutoff) ** 2)


def _pad(out: np.ndarray, sr: int, start: float, end: float, notes: Sequence[int],
         cutoff: float | Callable[[np.ndarray], np.ndarray], gain: float, partials: int = 6) -> None:
    """Add a soft chord (detuned additive saw-ish tones) from `start` to `end` with overlapping fades.
    `cutoff` is a scalar or a function of absolute time (array → array)."""
    fade = 0.45
    i0 = max(0, int((start - fade) * sr))
    i1 = min(len(out), int((end + fade) * sr))
    if i1 <= i0:
        return
    t = np.arange(i0, i1) / sr
    tl = t - t[0]
    env = np.clip((t - (start - fade)) / (2 * fade), 0, 1) * np.clip(((end + fade) - t) / (2 * fade), 0, 1)
    env = env * env * (3 - 2 * env)  # smoothstep: chords melt into each other
    cut = cutoff(t) if callable(cutoff) else cutoff
    acc = np.zeros_like(t)
    for n in notes:
        f0 = midi_hz(n)
        for detune in (0.997, 1.003):
            for k in range(1, partials + 1):
                f = f0 * detune * k
                acc += (_lowpass_gain(f, cut) / k) * np.sin(2 * np.pi * f * tl + 0.7 * k + detune)
    out[i0:i1] += gain * env * acc / (len(notes) * 2)


def _kick(sr: int) -> np.ndarray:
    t = np.arange(int(0.4 * sr)) / sr
    freq = 48.0 + 110.0 * np.exp(-t / 0.035)
    phase = 2 * np.pi * np.cumsum(freq) / sr
    click = np.exp(-t / 0.002) * 0.3
    return (np.sin(phase) * np.exp(-t / 0.22) + click).astype(np.float64)


def _snare(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.25 * sr)) / sr
    noise = rng.standard_normal(len(t))
    noise = np.diff(noise, prepend=0.0) * 0.5  # tilt towards the highs
    body = np.sin(2 * np.pi * 185.0 * t) * np.exp(-t / 0.06)
    return 0.55 * noise * np.exp(-t / 0.09) + 0.6 * body


def _hat(sr: int, rng: np.random.Generator, decay: float) -> np.ndarray:
    t = np.arange(int(max(0.05, decay * 5) * sr)) / sr
    noise = rng.standard_normal(len(t))
    noise = np.diff(np.diff(noise, prepend=0.0), prepend=0.0) * 0.25  # second difference: a highpass
    return noise * np.exp(-t / decay)


def _place(out: np.ndarray, sample: np.ndarray, at: float, sr: int, gain: float) -> None:
    i = int(round(at * sr))
    if i >= len(out) or i < 0:
        return
    n = min(len(sample), len(out) - i)
    out[i : i + n] += gain * sample[:n]


def _bass_note(sr: int, freq: float, length: float) -> np.ndarray:
    t = np.arange(int(length * sr)) / sr
    acc = sum(np.sin(2 * np.pi * freq * k * t) / k * _lowpass_gain(freq * k, 420.0) for k in range(1, 7))
    env = np.minimum(1.0, t / 0.004) * np.exp(-t / (length * 0.6))
    return acc * env


def _upsample(x: np.ndarray, sr_in: int, sr_out: int, n: int) -> np.ndarray:
    if sr_in == sr_out:
        return x[:n]
    import soxr

    y = soxr.resample(x, sr_in, sr_out, quality="HQ")
    return np.pad(y, (0, max(0, n - len(y))))[:n]


# --- the track -----------------------------------------------------------------------------------


def demo_track(seconds: float = 60.0, sample_rate: int = SAMPLE_RATE, seed: int = 0) -> np.ndarray:
    """The demo track as float32 mono in -1..1, deterministic for (seconds, sample_rate, seed)."""
    sr = int(sample_rate)
    n = int(round(seconds * sr))
    rng = np.random.default_rng(seed)
    # The pads hold nothing above ~3 kHz, so they are synthesized at a quarter of the rate (4x fewer
    # sines) and resampled up once; drums and bass need the full rate.
    sr_pad = sr // 4 if sr % 4 == 0 and sr >= 32000 else sr
    n_pad = int(round(seconds * sr_pad))
    pad = np.zeros(n_pad)
    drums = np.zeros(n)
    bass = np.zeros(n)
    intro, build, drop = demo_sections(seconds)

    # 1. intro: a chord every two bars, dark filter that breathes slowly.
    chord_s = 2 * BAR_S
    t = intro.start
    i = 0
    while t < intro.end - 1e-6:
        _, notes = A_MINOR_CHORDS[i % len(A_MINOR_CHORDS)]
        end = min(t + chord_s, intro.end)
        _pad(pad, sr_pad, t, end, notes, lambda tt: 650.0 + 250.0 * np.sin(2 * np.pi * tt / 9.0), gain=0.32)
        t, i = end, i + 1

    # 2. build: filter opens exponentially, snare roll accelerates, riser + sweep climb.
    span = max(build.end - build.start, 1e-3)

    def opening(tt: np.ndarray) -> np.ndarray:
        x = np.clip((tt - build.start) / span, 0, 1)
        return 700.0 * (9.0**x)

    seg = span / len(BUILD_CHORDS)
    for j, (_, notes) in enumerate(BUILD_CHORDS):
        _pad(pad, sr_pad, build.start + j * seg, build.start + (j + 1) * seg, notes, opening, gain=0.26)
    snare = _snare(sr, rng)
    third = span / 3
    for step, div in ((0, 1), (1, 2), (2, 4)):  # quarters, eighths, sixteenths
        s0 = build.start + step * third
        k = 0
        while (at := s0 + k * BEAT_S / div) < min(s0 + third, build.end - 1e-6):
            into = (at - build.start) / span
            _place(drums, snare, at, sr, 0.12 + 0.5 * into * into)
            k += 1
    i0, i1 = int(build.start * sr), int(build.end * sr)
    tb = np.arange(i1 - i0) / sr
    x = tb / span
    riser = np.diff(rng.standard_normal(len(tb)), prepend=0.0) * 0.5
    drums[i0:i1] += riser * 0.14 * x**2
    sweep_f = 180.0 * (12.0**x)
    drums[i0:i1] += 0.08 * x**1.5 * np.sin(2 * np.pi * np.cumsum(sweep_f) / sr)

    # 3. drop: A major at 124 BPM, a chord per bar, kick/snare/hats/bass, the pad ducks under the kick.
    drop_pad = np.zeros(n_pad)
    t, i = drop.start, 0
    while t < drop.end - 1e-6:
        _, notes = A_MAJOR_CHORDS[i % len(A_MAJOR_CHORDS)]
        end = min(t + BAR_S, drop.end)
        _pad(drop_pad, sr_pad, t, end, notes, 2600.0, gain=0.30, partials=7)
        root = midi_hz(notes[0] - 24)
        note = _bass_note(sr, root, BEAT_S / 2 * 0.9)
        for e in range(8):
            _place(bass, note, t + e * BEAT_S / 2, sr, 0.42 if e % 2 == 0 else 0.30)
        t, i = end, i + 1
    kick, closed, opened = _kick(sr), _hat(sr, rng, 0.018), _hat(sr, rng, 0.09)
    beat = 0
    while (at := drop.start + beat * BEAT_S) < drop.end - 1e-6:
        _place(drums, kick, at, sr, 0.9)
        if beat % 4 in (1, 3):
            _place(drums, snare, at, sr, 0.55)
        _place(drums, opened, at + BEAT_S / 2, sr, 0.35)
        for q in (0.25, 0.75):
            _place(drums, closed, at + q * BEAT_S, sr, 0.22)
        beat += 1
    crash_t = np.arange(int(1.6 * sr)) / sr
    crash = np.diff(rng.standard_normal(len(crash_t)), prepend=0.0) * np.exp(-crash_t / 0.5) * 0.35
    _place(drums, crash, drop.start, sr, 1.0)
    # Sidechain: the drop's pad dips after every kick (the "pumping" of dance music).
    td = (np.arange(n) / sr - drop.start) % BEAT_S
    duck = 1.0 - 0.6 * np.exp(-td / 0.09)
    pad = _upsample(pad, sr_pad, sr, n) + _upsample(drop_pad, sr_pad, sr, n) * duck

    mix = pad + drums + bass
    tt = np.arange(n) / sr
    mix *= np.clip(tt / 1.0, 0, 1) * np.clip((seconds - tt) / 2.0, 0, 1)  # fade in 1 s, out 2 s
    peak = float(np.max(np.abs(mix))) or 1.0
    return (mix * (0.89 / peak)).astype(np.float32)


# --- files and cache -----------------------------------------------------------------------------


def write_demo_track(path: str | Path, seconds: float = 60.0, sample_rate: int = SAMPLE_RATE, seed: int = 0) -> Path:
    """Synthesize the demo and write it as a 16-bit WAV (written to a temp name, then renamed, so a
    crash never leaves a truncated file that the cache would trust)."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = demo_track(seconds, sample_rate, seed)
    with atomic_write(path) as tmp:
        sf.write(str(tmp), audio, int(sample_rate), subtype="PCM_16", format="WAV")
    log.info("wrote demo track %s (%.1f s)", path, seconds)
    return path


def demo_track_path(seconds: float = 60.0, sample_rate: int = SAMPLE_RATE, seed: int = 0) -> Path:
    """The cached demo WAV's path; the name carries everything that changes the samples."""
    return cache_dir() / f"demo-v{DEMO_VERSION}-{seconds:g}s-{int(sample_rate)}hz-seed{seed}.wav"


def ensure_demo_track(seconds: float = 60.0, sample_rate: int = SAMPLE_RATE, seed: int = 0) -> Path:
    """The cached demo WAV, synthesized on first use (about a second)."""
    path = demo_track_path(seconds, sample_rate, seed)
    if path.is_file() and path.stat().st_size > 44:
        return path
    return write_demo_track(path, seconds, sample_rate, seed)
