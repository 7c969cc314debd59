"""The smoother: conditioning over time, hop-independent, and the scene changes that interrupt it.

- `Smoother(time_constant_s)`: exponential smoothing whose *time* constant is in seconds. Each update
  uses alpha = 1 − exp(−dt/τ), so after τ seconds of a constant target the output has moved 63% of
  the way whatever the hop (0.1 s or 0.5 s): changing the hop does not change how the picture moves.
- `SceneDetector`: a jump in cosine distance between the new audio embedding and a slow reference of
  the recent ones means a new scene; the preset chooses to glide (keep smoothing) or cut (snap).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from engine.types import Conditioning
from engine.understanding.conditioning import blend, cosine_distance


class Smoother:
    """Exponential smoothing of conditionings with a time constant in seconds (hop-independent)."""

    def __init__(self, time_constant_s: float = 2.0, slerp: bool = False):
        self.tau = float(time_constant_s)
        self.slerp = slerp
        self.state: Conditioning | None = None

    def alpha(self, dt: float) -> float:
        if self.tau <= 0:  # no smoothing: jump to every target
            return 1.0
        return 1.0 - math.exp(-max(0.0, dt) / self.tau)

    def update(self, target: Conditioning) -> Conditioning:
        """Move toward `target` by 1 − exp(−dt/τ), dt = target.t − previous t. Labels follow the target."""
        if self.state is None:
            self.state = target
            return target
        out = blend(self.state, target, self.alpha(target.t - self.state.t), self.slerp)
        self.state = replace(out, labels=target.labels, prompt=target.prompt, audio_embedding=target.audio_embedding)
        return self.state

    def reset(self, to: Conditioning | None = None) -> None:
        self.state = to


@dataclass
class SceneDetector:
    """A new scene when the audio embedding is `threshold` (cosine distance) away from the recent past.

    The reference is itself an exponential average (time constant `memory_s`) so slow drift within a
    track never triggers; `min_interval_s` keeps one transition from firing on every following hop.
    """

    threshold: float = 0.35
    memory_s: float = 4.0
    min_interval_s: float = 2.0
    reference: torch.Tensor | None = None
    last_t: float | None = None
    last_change_t: float = -math.inf

    def update(self, emb: torch.Tensor, t: float) -> bool:
        emb = emb.detach().float().reshape(-1)
        if self.reference is None:
            self.reference, self.last_t = emb.clone(), t
            return False
        changed = cosine_distance(emb, self.reference) > self.threshold and t - self.last_change_t >= self.min_interval_s
        if changed:
            self.reference, self.last_change_t = emb.clone(), t
        else:
            a = 1.0 - math.exp(-max(0.0, t - (self.last_t or t)) / self.memory_s)
            self.reference = torch.lerp(self.reference, emb.to(self.reference.device), a)
        self.last_t = t
        return changed

    def reset(self) -> None:
        self.reference, self.last_t, self.last_change_t = None, None, -math.inf
