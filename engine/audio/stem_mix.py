"""Mixes built from separately synthesized parts, for measuring the stem separator against the truth.

`stem_mix(seconds, seed)` returns each part on its own (drums, bass, chords, lead) and their sum, plus
the drum hit times. The parts come and go by section (chords alone, + bass, + drums, + a sung-like
lead, a drums-only break, everything), so the true stem envelopes differ from each other and from
the mix (seed 0 in the listed order; other seeds shuffle the sections and transpose by up to a
major third). Drums, bass and pads are the demo track's instruments (engine/audio/demo.py); the lead is
a voice-like tone: a glottal-ish harmonic series shaped by vowel formants, with vibrato, sung in
phrases. Deterministic for (seconds, sample_rate, seed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.audio.demo import _bass_note, _hat, _kick, _pad, _place, _snare, midi_hz
from engine.types import SAMPLE_RATE

BPM = 120.0
BEAT_S = 60.0 / BPM
BAR_S = 4 * BEAT_S
CHORDS = ((57, 60, 64), (53, 57, 60), (48, 52, 55), (55, 59, 62))  # Am F C G, around middle C
# Which parts play in each bar (cycled): chords, bass, drums, lead
SECTIONS = (
    (1, 0, 0, 0), (1, 1, 0, 0), (1, 1, 1, 0), (1, 1, 1, 0),
    (1, 1, 1, 1), (1, 0, 1, 1), (0, 0, 1, 0), (0, 1, 1, 0),
    (1, 0, 0, 1), (1, 1, 0, 1), (0, 1, 1, 1), (1, 1, 1, 1),
)
VOWELS = ((700.0, 1220.0, 2600.0), (400.0, 2000.0, 2550.0), (300.0, 870.0, 2250.0), (500.0, 1700.0, 2500.0))
PART_NAMES = ("drums", "bass", "chords", "lead")  # the true stem of: percussive, bass, harmonic, voice


@dataclass(frozen=True)
class StemMix:
    """float32 mono parts (same length) and their sum; `hits`: drum onset times (s)."""

    parts: dict[str, np.ndarray]
    mix: np.ndarray
    hits: np.ndarray
    sample_rate: int


def _lead(out: np.ndarray, sr: int, start: float, notes: Sequence[tuple[float, float]], vowel: tuple[float, ...],
          gain: float) -> None:
    """A sung phrase: `notes` (midi, seconds) legato, vibrato 5.5 Hz ±30 cents after each onset,
    harmonics under three formants, soft attack and release."""
    total = sum(d for _, d in notes)
    i0 = int(start * sr)
    n = min(int(total * sr), len(out) - i0)
    if n <= 0:
        return
    t = np.arange(n) / sr
    pitch = np.concatenate([np.full(int(d * sr), float(m)) for m, d in notes])[:n]
    pitch = np.pad(pitch, (0, n - len(pitch)), mode="edge")
    glide = int(0.03 * sr)  # portamento between notes
    pitch = np.convolve(np.pad(pitch, (glide, glide), mode="edge"), np.ones(glide) / glide, mode="same")[glide:-glide]
    vib = 0.3 * np.sin(2 * np.pi * 5.5 * t) * np.clip(t / 0.3, 0, 1)
    f0 = 440.0 * 2 ** ((pitch + vib - 69) / 12)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    acc = np.zeros(n)
    for h in range(1, 25):
        fh = f0 * h
        shape = sum(np.exp(-0.5 * ((fh - fm) / (80.0 + 0.06 * fm)) ** 2) * w for fm, w in zip(vowel, (1.0, 0.6, 0.3)))
        acc += (0.15 + shape) / h**0.7 * np.sin(h * phase) * (fh < sr / 2)
    env = np.clip(t / 0.06, 0, 1) * np.clip((total - t) / 0.12, 0, 1)
    out[i0 : i0 + n] += gain * env * acc / 4.0


def stem_mix(seconds: float = 48.0, sample_rate: int = SAMPLE_RATE, seed: int = 0) -> StemMix:
    """The parts and their mix; see the module docstring."""
    sr = int(sample_rate)
    n = int(round(seconds * sr))
    rng = np.random.default_rng(seed)
    drums, bass, chords, lead = (np.zeros(n) for _ in range(4))
    # seed 0: the sections and chords as listed; another seed shuffles the sections and transposes
    order = list(range(len(SECTIONS))) if seed == 0 else [int(i) for i in rng.permutation(len(SECTIONS))]
    shift = 0 if seed == 0 else int(rng.integers(-4, 5))
    kick, snare, closed = _kick(sr), _snare(sr, rng), _hat(sr, rng, 0.018)
    hits: list[float] = []
    bar = 0
    while (t0 := bar * BAR_S) < seconds - 1e-6:
        on_chords, on_bass, on_drums, on_lead = SECTIONS[order[bar % len(SECTIONS)]]
        notes = tuple(n + shift for n in CHORDS[bar % len(CHORDS)])
        if on_chords:
            _pad(chords, sr, t0 + 0.1, t0 + BAR_S - 0.3, notes, 1800.0, gain=0.5, partials=6)
        if on_bass:
            root = midi_hz(notes[0] - 24)
            for e, length in enumerate((0.9, 0.4, 0.4, 0.9, 0.4, 0.4)):
                at = t0 + (0, 1, 1.5, 2, 3, 3.5)[e] * BEAT_S
                _place(bass, _bass_note(sr, root * (1.5 if e == 4 else 1.0), length * BEAT_S), at, sr, 0.6)
        if on_drums:
            for beat in range(4):
                at = t0 + beat * BEAT_S
                _place(drums, kick, at, sr, 0.8)
                hits.append(at)
                if beat % 2 == 1:
                    _place(drums, snare, at, sr, 0.5)
                _place(drums, closed, at + BEAT_S / 2, sr, 0.35)
                hits.append(at + BEAT_S / 2)
        if on_lead:
            melody = [(notes[2] + 12 + d, BEAT_S * s) for d, s in ((0, 1), (2, 0.5), (4, 0.5), (2, 1))]
            _lead(lead, sr, t0 + 0.05, melody, VOWELS[bar % len(VOWELS)], gain=0.45)
            _lead(lead, sr, t0 + 3.2 * BEAT_S, [(notes[1] + 12, BEAT_S * 0.7)], VOWELS[(bar + 1) % len(VOWELS)], gain=0.4)
        bar += 1
    parts = {"drums": drums, "bass": bass, "chords": chords, "lead": lead}
    mix = drums + bass + chords + lead
    peak = float(np.max(np.abs(mix))) or 1.0
    scale = 0.89 / peak
    return StemMix({k: (v * scale).astype(np.float32) for k, v in parts.items()}, (mix * scale).astype(np.float32),
                   np.array(sorted(h for h in hits if h < seconds)), sr)
