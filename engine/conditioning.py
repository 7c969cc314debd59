"""Conditioning over time: blending, hop-independent smoothing, and scene changes.

- `blend(a, b, w)`: lerp (or per-token slerp) of two conditionings, the one function that mixes them.
- `blend_weighted([(c, w), ...])`: many conditionings by weight, as a fold of `blend`; `mix_prompts`
  encodes prompts (cached) and blends them with it. The zero-shot head mixes its top prompts with
  `mix_prompts`, and schedules and lyrics (engine/directing) mix theirs with the same two functions.
- `Smoother(time_constant_s)`: exponential smoothing whose *time* constant is in seconds. Each update
  uses alpha = 1 − exp(−dt/τ), so after τ seconds of a constant target the output has moved 63% of
  the way whatever the hop (0.1 s or 0.5 s): changing the hop does not change how the picture moves.
- `SceneDetector`: a jump in cosine distance between the new audio embedding and a slow reference of
  the recent ones means a new scene; the preset chooses to glide (keep smoothing) or cut (snap).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from engine.types import Conditioning


def _slerp(a: torch.Tensor, b: torch.Tensor, w: float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation along the last axis (per token), magnitudes interpolated linearly."""
    af, bf = a.float(), b.float()
    na, nb = af.norm(dim=-1, keepdim=True), bf.norm(dim=-1, keepdim=True)
    ua, ub = af / na.clamp_min(eps), bf / nb.clamp_min(eps)
    dot = (ua * ub).sum(-1, keepdim=True).clamp(-1 + eps, 1 - eps)
    theta = torch.acos(dot)
    s = torch.sin(theta)
    direction = (torch.sin((1 - w) * theta) * ua + torch.sin(w * theta) * ub) / s
    # Nearly parallel tokens: slerp → lerp (sin θ ≈ 0 would divide by ~0).
    direction = torch.where(theta < 1e-4, (1 - w) * ua + w * ub, direction)
    return (direction * ((1 - w) * na + w * nb)).to(a.dtype)


def _mix(a: torch.Tensor, b: torch.Tensor, w: float, slerp: bool) -> torch.Tensor:
    b = b.to(device=a.device, dtype=a.dtype)
    return _slerp(a, b, w) if slerp else torch.lerp(a, b, w)


def blend(a: Conditioning, b: Conditioning, w: float, slerp: bool = False) -> Conditioning:
    """(1 − w)·a + w·b. Labels, prompt and time follow the side with more weight."""
    w = float(min(1.0, max(0.0, w)))
    main = b if w >= 0.5 else a
    emb = main.audio_embedding
    return Conditioning(
        prompt_embeds=_mix(a.prompt_embeds, b.prompt_embeds, w, slerp),
        pooled_prompt_embeds=_mix(a.pooled_prompt_embeds, b.pooled_prompt_embeds, w, slerp),
        t=b.t,
        labels=main.labels,
        prompt=main.prompt,
        audio_embedding=emb,
    )


def blend_weighted(parts: Sequence[tuple[Conditioning, float]], slerp: bool = False) -> Conditioning:
    """Σ wᵢ·cᵢ / Σ wᵢ, folded pairwise with `blend`: after item k the running mix holds the first k
    with their relative weights, so with lerp this is exactly the weighted mean, and with slerp two
    parts are an exact slerp (more are a chain of slerps, in the order given). Zero weights are
    skipped; labels, prompt and time follow the heaviest part."""
    parts = [(c, float(w)) for c, w in parts if w > 0]
    if not parts:
        raise ValueError("blend_weighted needs at least one part with a positive weight")
    out, total = parts[0]
    for cond, w in parts[1:]:
        total += w
        out = blend(out, cond, w / total, slerp)
    heaviest = max(parts, key=lambda p: p[1])[0]
    return replace(out, t=heaviest.t, labels=heaviest.labels, prompt=heaviest.prompt,
                   audio_embedding=heaviest.audio_embedding)


def mix_prompts(encoder, prompts: Sequence[tuple[str, float]], slerp: bool = False, t: float = 0.0) -> Conditioning:
    """Encode `prompts` ((text, weight) pairs) with a `PromptEncoder` (LRU-cached) and blend them by
    weight with `blend_weighted`. `prompt` is the heaviest text."""
    texts = [p for p, _ in prompts]
    pe, pooled = encoder.encode(texts)
    parts = [(Conditioning(pe[i : i + 1], pooled[i : i + 1], t=t, prompt=text), float(w))
             for i, (text, w) in enumerate(prompts)]
    return blend_weighted(parts, slerp)


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


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(1.0 - torch.nn.functional.cosine_similarity(a.float().reshape(1, -1), b.float().reshape(1, -1)).item())


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
