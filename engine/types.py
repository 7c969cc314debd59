"""Core types that flow between the stages (see DESIGN.md, "Core types")."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported by the stages that make tensors, not by every user of these types
    import torch

SAMPLE_RATE = 48_000  # CLAP's rate; every window and feature block is at 48 kHz mono
WINDOW_SECONDS = 10.0
TEXT_TOKENS = 77
PROMPT_DIM = 2048  # 768 (CLIP ViT-L) + 1280 (OpenCLIP bigG) penultimate hidden states
POOLED_DIM = 1280


@dataclass(frozen=True)
class Window:
    """float32 mono samples at 48 kHz; `t_end` is the time (s) of the last sample."""

    samples: np.ndarray
    t_end: float
    sample_rate: int = SAMPLE_RATE

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class BeatGrid:
    """A phase-locked beat grid: beats at `anchor + k·period`, bars of `beats_per_bar` beats.

    Features carry the grid they were computed with, so a consumer can ask about any moment (the
    compositor asks about the moment its frame will be seen, not the moment the audio was read).
    `anchor_in_bar` is the anchor beat's position in its bar (0 = downbeat); it means something
    only when `downbeat_confidence` > 0. An offline grid is local: its `period` is the exact gap
    between the beats around `anchor`.
    """

    anchor: float | None = None  # time (s) of one beat on the grid; None: not locked yet
    period: float = 0.5
    beats_per_bar: int = 4
    anchor_in_bar: int = 0
    confidence: float = 0.0  # 0..1: how sure the tracker is of tempo and phase
    downbeat_confidence: float = 0.0  # 0..1: how sure it is which beat starts the bar

    @property
    def locked(self) -> bool:
        return self.anchor is not None

    @property
    def bpm(self) -> float:
        return 60.0 / self.period

    def beat_index(self, t: float) -> int:
        """Index (from the anchor) of the last beat at or before t."""
        assert self.anchor is not None, "an unlocked grid has no beats"
        return math.floor((t - self.anchor) / self.period + 1e-9)

    def last_beat(self, t: float) -> float | None:
        return None if self.anchor is None else self.anchor + self.beat_index(t) * self.period

    def next_beat(self, t: float) -> float | None:
        """The first beat strictly after t: when to schedule the next pulse."""
        return None if self.anchor is None else self.anchor + (self.beat_index(t) + 1) * self.period

    def phase_at(self, t: float) -> float:
        """0 on a beat, rising to just below 1 before the next one (0 when unlocked)."""
        if self.anchor is None:
            return 0.0
        x = (t - self.anchor) / self.period + 1e-9
        return min(max(x - math.floor(x), 0.0), 0.999999)

    def position_at(self, t: float) -> int:
        """Bar position (0 = downbeat) of the last beat at or before t; -1 if unknown."""
        if self.anchor is None or self.downbeat_confidence <= 0:
            return -1
        return (self.anchor_in_bar + self.beat_index(t)) % self.beats_per_bar


STEM_NAMES = ("percussive", "bass", "harmonic", "voice")


@dataclass(frozen=True)
class Stems:
    """What each stem of the mix is doing, per hop (engine/audio/stems.py): not audio, envelopes.

    `level`: per stem (STEM_NAMES order) an amplitude envelope where 1.0 is the whole mix's typical
    level for this track so far (a stem alone at full loudness ≈ 1; silence = 0; capped at 4).
    `onset`: per stem, the block's strongest rise (0..1); `hit`: a stem onset landed in the block.
    `bass_hz`/`voice_hz`: the bass and the lead's pitch (0 when none); `voice_salience`: 0..1, how
    clearly one pitched lead stands out; `harmonic_hue`: 0..1, the harmony's mean pitch class / 12
    (a chord's colour); `look_ahead_s`: how far behind the audio these values are.
    """

    level: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    onset: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    hit: tuple[bool, bool, bool, bool] = (False, False, False, False)
    bass_hz: float = 0.0
    voice_hz: float = 0.0
    voice_salience: float = 0.0
    harmonic_hue: float = 0.0
    look_ahead_s: float = 0.0

    def of(self, stem: str) -> float:
        """The level of the stem named `stem` (one of STEM_NAMES)."""
        return self.level[STEM_NAMES.index(stem)]


@dataclass(frozen=True)
class Features:
    """Per-block scalars that move the picture between renders.

    Band energies use MilkDrop's convention: 1.0 means "typical for this track so far".
    `spectrum` and `wave` are per-block snapshots (tuples, so Features stays immutable).
    `beat` is True for the block in which a beat landed; `beat_phase` runs 0→1 between beats.
    `downbeat` marks a beat that starts a bar; `beat_confidence` (0..1) says how sure the tracker is
    of the beat. `event` is a scene-level moment on a beat: "build" (a slow rise: a drop may
    follow), "drop" (a sudden rise in energy) or "break" (a sudden fall), else "". `grid` lets a consumer place beats at any other time.
    """

    t: float = 0.0
    rms: float = 0.0
    onset: float = 0.0
    low: float = 1.0
    mid: float = 1.0
    high: float = 1.0
    low_peak: float = 0.0  # the loudest hop's `low` in the block (a kick inside a long block); 0: only `low` known
    beat: bool = False
    beat_phase: float = 0.0
    tempo_bpm: float = 120.0
    valence: float = 0.0  # -1 (negative) .. 1 (positive)
    arousal: float = 0.0  # -1 (calm) .. 1 (energetic)
    # For renderers that draw the audio itself (the shader renderer's ribbons); empty when unknown.
    spectrum: tuple[float, ...] = ()  # log-spaced bands, 1.0 = typical for this track so far
    wave: tuple[float, ...] = ()  # the newest ~21 ms of samples, decimated to 64 points
    downbeat: bool = False
    beat_confidence: float = 0.0
    event: str = ""
    grid: BeatGrid = field(default_factory=BeatGrid)
    stems: Stems = field(default_factory=Stems)  # per-stem envelopes (engine/audio/stems.py)


UNHEARD = Features(low=0.0, mid=0.0, high=0.0)  # a feed's features before its first block is heard


@dataclass(frozen=True)
class Conditioning:
    """What SDXL needs, plus what the head heard (for the HUD and `analyze`).

    prompt_embeds: (B, 77, 2048); pooled_prompt_embeds: (B, 1280).
    `labels` maps descriptor → weight; `prompt` is the text actually encoded (zero-shot head).
    `audio_embedding` is the CLAP embedding it came from (for scene-change detection).
    """

    prompt_embeds: torch.Tensor
    pooled_prompt_embeds: torch.Tensor
    t: float = 0.0
    labels: dict[str, float] = field(default_factory=dict)
    prompt: str = ""
    audio_embedding: torch.Tensor | None = None


@dataclass(frozen=True)
class Frame:
    """An RGB image, HxWx3 uint8, with the time of the conditioning it came from."""

    image: np.ndarray
    t: float = 0.0
    seed: int = 0
    renderer: str = ""
    reused: bool = False  # the renderer skipped this render (similarity filter) and repeated its last frame

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)"""
        return self.image.shape[1], self.image.shape[0]


@dataclass(frozen=True)
class Reconfigured:
    """What a stage did with new settings: knobs it applied in place, and knobs that need the stage
    built anew (new weights, new static shapes). Empty when nothing it owns changed."""

    applied: tuple[str, ...] = ()
    rebuild: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.applied or self.rebuild)
