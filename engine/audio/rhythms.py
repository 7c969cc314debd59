"""Synthesised rhythm tracks whose beats and downbeats are known exactly.

The beat benchmark (scripts/bench_beats.py) and the tests score the trackers against these; they are
in the engine (not only under tests/) so the benchmark runs from an installed copy too. Every track
is deterministic for its arguments: noise comes from a seeded generator.

A `Rhythm` is the audio plus the truth: beat times, downbeat times and where the music starts.
Patterns are written on a 16-step bar grid (four beats of four sixteenths), the way drum machines
are programmed; swing delays every second eighth to two thirds of the beat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SR = 48_000

# pattern name → {instrument: steps (0..15) in the bar}
PATTERNS: dict[str, dict[str, tuple[int, ...]]] = {
    "four": {"kick": (0, 4, 8, 12), "snare": (4, 12), "hat": (2, 6, 10, 14)},
    "halftime": {"kick": (0,), "snare": (8,), "hat": (0, 4, 8, 12)},
    "bare-halftime": {"kick": (0,), "snare": (8,)},  # nothing on beats 2 and 4: alone, it is 62 BPM
    "syncopated": {"kick": (0, 6, 10), "snare": (4, 12), "hat": tuple(range(0, 16, 2))},
    "swing": {"kick": (0, 8), "snare": (4, 12), "hat": tuple(range(0, 16, 2))},
}


@dataclass(frozen=True)
class Rhythm:
    name: str
    samples: np.ndarray  # float32 mono at SR
    beats: np.ndarray  # seconds
    downbeats: np.ndarray  # seconds (a subset of beats)
    music_start: float = 0.0
    sample_rate: int = SR

    @property
    def tempo_bpm(self) -> float:
        return float(60.0 / np.median(np.diff(self.beats)))


def _env(n: int, tau_s: float) -> np.ndarray:
    return np.exp(-np.arange(n) / (tau_s * SR))


def _sounds(rng: np.random.Generator) -> dict[str, np.ndarray]:
    t = np.arange(int(0.3 * SR)) / SR
    kick = np.sin(2 * np.pi * np.cumsum(50.0 + 120.0 * np.exp(-t / 0.03)) / SR) * np.exp(-t / 0.15)
    n_snare = int(0.2 * SR)
    snare = 0.6 * rng.standard_normal(n_snare) * _env(n_snare, 0.06)
    snare += 0.5 * np.sin(2 * np.pi * 190.0 * np.arange(n_snare) / SR) * _env(n_snare, 0.05)
    n_hat = int(0.06 * SR)
    hat = np.diff(rng.standard_normal(n_hat + 1)) * 0.25 * _env(n_hat, 0.012)
    n_click = 480
    click = np.sin(2 * np.pi * 1000.0 * np.arange(n_click) / SR) * _env(n_click, 100 / SR)
    return {"kick": 0.9 * kick, "snare": snare, "hat": hat, "click": click}


def _add(out: np.ndarray, sound: np.ndarray, at: float, gain: float) -> None:
    i = int(round(at * SR))
    if 0 <= i < len(out):
        n = min(len(sound), len(out) - i)
        out[i : i + n] += gain * sound[:n]


def beat_times(bpm_start: float, bpm_end: float, seconds: float, start: float = 0.0) -> np.ndarray:
    """Beats from `start` to `seconds` with the tempo moving linearly from bpm_start to bpm_end."""
    span = seconds - start
    rate = (bpm_end - bpm_start) / span  # BPM per second
    # beats elapsed b(t) = (bpm_start·t + rate·t²/2) / 60; invert for t at each whole beat
    n_beats = int((bpm_start * span + rate * span * span / 2) / 60.0 + 1e-9)
    k = np.arange(n_beats + 1, dtype=np.float64)
    if abs(rate) < 1e-9:
        t = 60.0 * k / bpm_start
    else:
        t = (-bpm_start + np.sqrt(bpm_start**2 + 2 * rate * 60.0 * k)) / rate
    t = start + t
    return t[t < seconds - 1e-6]


def _chords(beats: np.ndarray, seconds: float, per_bar: int = 4) -> np.ndarray:
    """A soft pad whose root changes on every downbeat (harmony marks the bar, as in real music)."""
    out = np.zeros(int(seconds * SR))
    roots = (110.0, 146.8, 123.5, 164.8)
    bars = list(beats[::per_bar]) + [seconds]
    for j, (a, b) in enumerate(zip(bars[:-1], bars[1:])):
        i0, i1 = int(a * SR), min(len(out), int(b * SR))
        t = np.arange(i1 - i0) / SR
        f = roots[j % len(roots)]
        fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.01) if len(t) else t
        out[i0:i1] += 0.08 * fade * sum(np.sin(2 * np.pi * f * m * t) / m for m in (1, 1.25, 1.5, 2))
    return out


def drums(
    pattern: str = "four",
    bpm: float = 124.0,
    seconds: float = 20.0,
    *,
    bpm_end: float | None = None,
    start: float = 0.0,
    chords: bool = True,
    sections: list[tuple[float, str]] | None = None,
    seed: int = 0,
) -> Rhythm:
    """A drum machine playing `pattern` (see PATTERNS) from `start` to `seconds`; the tempo ramps to
    `bpm_end` when given. `sections` [(from_s, pattern), ...] switches patterns mid-track."""
    rng = np.random.default_rng(seed)
    sounds = _sounds(rng)
    beats = beat_times(bpm, bpm_end or bpm, seconds, start)
    out = np.zeros(int(seconds * SR))
    plan = sorted(sections or [(start, pattern)])
    gains = {"kick": 1.0, "snare": 0.7, "hat": 0.35}
    for k, b in enumerate(beats):
        period = (beats[k + 1] - b) if k + 1 < len(beats) else (b - beats[k - 1])
        playing = [p for at, p in plan if at <= b + 1e-6]
        now = playing[-1] if playing else pattern
        swing = now == "swing"
        for name, hits in PATTERNS[now].items():
            for s in hits:
                if s // 4 != k % 4:
                    continue
                sub = s % 4
                frac = (2 / 3 if sub == 2 else sub / 4) if swing else sub / 4
                accent = 1.0 if sub == 0 else 0.7
                _add(out, sounds[name], b + frac * period, gains[name] * accent)
    if chords:
        out += _chords(beats, seconds)
    peak = float(np.abs(out).max()) or 1.0
    name = pattern if not sections else "+".join(p for _, p in plan)
    return Rhythm(name, (0.8 * out / peak).astype(np.float32), beats, beats[::4], start)


def clicks(bpm: float = 120.0, seconds: float = 20.0, *, accent: float = 1.0, start: float = 0.0,
           bpm_end: float | None = None) -> Rhythm:
    """A metronome: a 1 kHz click per beat; the first beat of each 4/4 bar is `accent` times louder
    (1.0: all beats equal)."""
    beats = beat_times(bpm, bpm_end or bpm, seconds, start)
    out = np.zeros(int(seconds * SR))
    click = _sounds(np.random.default_rng(0))["click"]
    for k, b in enumerate(beats):
        _add(out, click, b, 1.0 if k % 4 == 0 else 1.0 / accent)
    peak = float(np.abs(out).max()) or 1.0
    name = f"clicks-{bpm:g}" + ("-accented" if accent != 1.0 else "")
    return Rhythm(name, (0.8 * out / peak).astype(np.float32), beats, beats[::4], start)
