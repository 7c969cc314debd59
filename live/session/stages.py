"""The stage contracts: what the loops call on each stage of the flow, and nothing else.

    Source ──▶ Tracker ──▶ UnderstandingStage ──▶ RenderStage ──▶ Compositor ──▶ Output
    (live/audio/sources.py) (engine/audio/features.py) (engine/understanding/) (engine/render/stage.py)
                                                               (live/screen/compositor.py) (live/screen/display.py)

A stage that owns a part of a preset applies it with `configure(part)` and answers what it applied in
place and what needs a rebuild (`engine.types.Reconfigured`); the part comes from `live.session.show.resolve`,
never from the preset itself. The session talks to stages only through these methods: a fake that
has them is a stage (tests use that), and a type checker sees every call.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pygame

from engine.render.stage import Negative, RenderStage
from engine.types import Conditioning, Features, Reconfigured, Window
from engine.understanding.settings import UnderstandingSettings
from live.audio.ringbuffer import RingBuffer
from live.audio.sources import SourceStats


class Source(Protocol):
    """Audio in: a track or a live input writing into `ring`; `clock()` is the time of what is heard."""

    @property
    def ring(self) -> RingBuffer: ...
    @property
    def stats(self) -> SourceStats: ...
    @property
    def error(self) -> str | None:
        """Set (by its callback) when the device went away."""
    @property
    def finished(self) -> bool: ...
    @property
    def live_input(self) -> bool:
        """True for a live input (its stream stopping means the device went away), False for a track
        (its end is the end of the track, not a lost device)."""
    @property
    def lead_s(self) -> float:
        """How long from `clock()` until the audio is heard (the output latency of a played file)."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def clock(self) -> float: ...


class Tracker(Protocol):
    """Per-block features (engine.audio.features.FeatureTracker)."""

    @property
    def sample_rate(self) -> int: ...

    def process(self, block: np.ndarray, t: float | None = None) -> Features: ...
    def tap(self, t: float) -> None: ...
    def clear_taps(self) -> None: ...


class UnderstandingStage(Protocol):
    """Audio window → conditioning (engine.understanding.pipeline.Understanding); owns [conditioning]."""

    prompt_encoder: Any  # SDXL's text encoders (None without them): schedules and lyrics encode with it

    def step(self, window: Window, features: Features | None = None) -> Conditioning: ...
    def configure(self, settings: UnderstandingSettings) -> Reconfigured: ...
    def negative_conditioning(self) -> Negative: ...


class Output(Protocol):
    """Where composed pictures go (live.screen.display.Display: a window); takes its keys and resizes."""

    def open(self) -> None: ...
    def close(self) -> None: ...
    def events(self) -> list[pygame.event.Event]: ...
    def handle(self, event: pygame.event.Event) -> None: ...
    def present(self, picture: pygame.Surface) -> None: ...
    def toggle_fullscreen(self) -> None: ...


__all__ = ["Output", "RenderStage", "Source", "Tracker", "UnderstandingStage"]
