"""Conditioning: what SDXL needs, and the one function that mixes two of them.

- `blend(a, b, w)`: lerp (or per-token slerp) of two conditionings.
- `cosine_distance(a, b)`: how far apart two embeddings point (scene changes, similarity).
- `is_finite(c)`: whether a conditioning holds only finite numbers (a NaN must never reach a frame).

Smoothing over time and scene changes are the next stage: engine/understanding/smoother.py.
"""

from __future__ import annotations

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


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(1.0 - torch.nn.functional.cosine_similarity(a.float().reshape(1, -1), b.float().reshape(1, -1)).item())


def is_finite(c: Conditioning) -> bool:
    """True when every number SDXL would read is finite."""
    return bool(torch.isfinite(c.prompt_embeds).all()) and bool(torch.isfinite(c.pooled_prompt_embeds).all())
