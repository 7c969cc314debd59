"""The understanding stage's settings, as plain data: a preset's `[conditioning]` section as the engine
sees it. Kept apart from the pipeline so that reading a preset never imports torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from engine.audio.stems import StemRouting

HEADS = ("zeroshot", "transformer")


@dataclass(frozen=True)
class UnderstandingSettings:
    """A preset's `[conditioning]` section as the engine sees it (see live/presets/schema.py)."""

    head: Literal["zeroshot", "transformer"] = "zeroshot"
    head_path: str | None = None
    style: str = ""
    negative: str = ""
    audio_weight: float = 1.0
    smoothing_s: float = 2.0
    on_scene_change: Literal["glide", "cut"] = "glide"
    scene_threshold: float = 0.35
    top_k: int = 3
    temperature: float = 0.1
    descriptors: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (category, phrases) overrides
    stems: StemRouting = StemRouting()  # the `subject` stem (a preset's [stems]) raises audio_weight while it sounds

    def changed(self, other: UnderstandingSettings) -> tuple[str, ...]:
        mine, theirs = asdict(self), asdict(other)
        return tuple(k for k in mine if mine[k] != theirs[k])


REBUILD_KEYS = ("head", "head_path")  # another head is other weights
