"""Conditioning: what SDXL needs, and the one function that mixes two of them.

- `blend(a, b, w)`: lerp (or per-token slerp) of two conditionings.
- `blend_weighted([(c, w), ...])`: many conditionings by weight, as a fold of `blend`; `mix_prompts`
  encodes prompts (cached) and blends them with it. The zero-shot head mixes its top prompts with
  `mix_prompts`, and schedules and lyrics (engine/directing) mix theirs with the same two functions.
- `cosine_distance(a, b)`: how far apart two embeddings point (scene changes, similarity).
- `is_finite(c)`: whether a conditioning holds only finite numbers (a NaN must never reach a frame).

Smoothing over time and scene changes are the next stage: engine/understanding/smoother.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import torch

from engine.types import Conditioning

if TYPE_CHECKING:
    from engine.understanding.prompt_encoding import PromptEncoder


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


def mix_prompts(encoder: PromptEncoder, prompts: Sequence[tuple[str, float]], slerp: bool = False, t: float = 0.0) -> Conditioning:
    """Encode `prompts` ((text, weight) pairs) with a `PromptEncoder` (LRU-cached) and blend them by
    weight with `blend_weighted`. `prompt` is the heaviest text."""
    texts = [p for p, _ in prompts]
    pe, pooled = encoder.encode(texts)
    parts = [(Conditioning(pe[i : i + 1], pooled[i : i + 1], t=t, prompt=text), float(w))
             for i, (text, w) in enumerate(prompts)]
    return blend_weighted(parts, slerp)


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(1.0 - torch.nn.functional.cosine_similarity(a.float().reshape(1, -1), b.float().reshape(1, -1)).item())


def is_finite(c: Conditioning) -> bool:
    """True when every number SDXL would read is finite."""
    pooled = c.pooled_prompt_embeds.to(c.prompt_embeds.device)
    return bool(torch.isfinite(c.prompt_embeds).all() & torch.isfinite(pooled).all())  # one host sync
