"""Core types that flow between the stages (see DESIGN.md, "Core types")."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
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
class Features:
    """Per-block scalars that move the picture between renders.

    Band energies use MilkDrop's convention: 1.0 means "typical for this track so far".
    `beat` is True for the block in which a beat landed; `beat_phase` runs 0→1 between beats.
    """

    t: float = 0.0
    rms: float = 0.0
    onset: float = 0.0
    low: float = 1.0
    mid: float = 1.0
    high: float = 1.0
    beat: bool = False
    beat_phase: float = 0.0
    tempo_bpm: float = 120.0
    valence: float = 0.0  # -1 (negative) .. 1 (positive)
    arousal: float = 0.0  # -1 (calm) .. 1 (energetic)


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
