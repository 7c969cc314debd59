"""The head's training objective (seed thesis §4.3), and how its negatives are chosen.

For each training item the head produces 77 token embeddings and a pooled vector. The thesis compares
the *mean over the 77 tokens*, unit-normalised, with the equally reduced CLIP text embedding of one
positive prompt (the item's own) and N negative prompts by cosine similarity, and trains with InfoNCE
at temperature τ. SDXL also needs the pooled vector, so the same InfoNCE is applied to it.

Cosine similarity is blind to length, but SDXL is not: a conditioning ten times too long is garbage.
A small relative norm term (`norm_weight`) keeps the head's outputs at the scale of real CLIP
embeddings; set it to 0 for the thesis's loss exactly.

Negatives are prompts whose VAG similarity f(I|S) = α·d_VA + β·g_genre to the item is *low*: prompts
that merely share the song's mood and genre are not wrong answers, and pushing them away would fight
the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.errors import BeatcanvasError
from engine.vag import vag_similarity_matrix


@dataclass(frozen=True)
class LossConfig:
    temperature: float = 0.07
    pooled_weight: float = 1.0
    norm_weight: float = 0.1


@dataclass
class LossOut:
    loss: torch.Tensor  # scalar, what is backpropagated
    token_loss: torch.Tensor
    pooled_loss: torch.Tensor
    norm_loss: torch.Tensor
    accuracy: torch.Tensor  # top-1 retrieval of the positive among 1 + N (token-mean similarity)


def info_nce(pred: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """pred (B, D), pos (B, D), neg (B, N, D) → (mean loss, logits (B, 1+N)); the positive is class 0."""
    p = F.normalize(pred, dim=-1)
    cands = F.normalize(torch.cat([pos.unsqueeze(1), neg], dim=1), dim=-1)  # (B, 1+N, D)
    logits = torch.einsum("bd,bkd->bk", p, cands) / temperature
    target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, target), logits


def _rel_norm_err(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    tn = target.norm(dim=-1).clamp_min(1e-6)
    return ((pred.norm(dim=-1) - tn) / tn).square().mean()


def head_loss(
    prompt_embeds: torch.Tensor,
    pooled: torch.Tensor,
    pos_tokens: torch.Tensor,
    neg_tokens: torch.Tensor,
    pos_pooled: torch.Tensor,
    neg_pooled: torch.Tensor,
    cfg: LossConfig = LossConfig(),
) -> LossOut:
    """Head outputs (B, 77, D) and (B, P) against targets already reduced to token means.

    pos_tokens (B, D) / neg_tokens (B, N, D) are the 77-token means of the CLIP prompt embeddings;
    pos_pooled (B, P) / neg_pooled (B, N, P) the pooled vectors.
    """
    if cfg.temperature <= 0:
        raise BeatcanvasError(f"temperature must be > 0 (got {cfg.temperature}); the thesis range is ~0.05–0.2")
    mean_tokens = prompt_embeds.float().mean(dim=1)
    token_loss, logits = info_nce(mean_tokens, pos_tokens.float(), neg_tokens.float(), cfg.temperature)
    pooled_loss, _ = info_nce(pooled.float(), pos_pooled.float(), neg_pooled.float(), cfg.temperature)
    norm_loss = _rel_norm_err(mean_tokens, pos_tokens.float()) + _rel_norm_err(pooled.float(), pos_pooled.float())
    loss = token_loss + cfg.pooled_weight * pooled_loss + cfg.norm_weight * norm_loss
    acc = (logits.argmax(dim=1) == 0).float().mean()
    return LossOut(loss, token_loss.detach(), pooled_loss.detach(), norm_loss.detach(), acc.detach())


def negative_pools(
    item_va: torch.Tensor,
    item_genres: list[str],
    item_prompt: torch.Tensor,
    prompt_va: torch.Tensor,
    prompt_genres: list[str],
    quantile: float = 0.5,
    alpha: float = 0.5,
    beta: float = 0.5,
) -> torch.Tensor:
    """A boolean (items, prompts) mask of allowed negatives: VAG similarity in the lowest `quantile`.

    An item's own prompt is never a negative, nor is any prompt with the *same text* (index equality is
    enough: the prompt bank is deduplicated). Every item keeps at least one allowed negative.
    """
    if len(prompt_genres) < 2:
        raise BeatcanvasError("training needs at least 2 distinct prompts to draw negatives from — add more data")
    sim = vag_similarity_matrix(item_va.float(), item_genres, prompt_va.float(), prompt_genres, alpha, beta)
    own = torch.zeros_like(sim, dtype=torch.bool)
    own[torch.arange(len(item_genres)), item_prompt] = True
    sim = sim.masked_fill(own, float("inf"))
    k = max(1, int(round(quantile * (sim.shape[1] - 1))))
    thresh = sim.kthvalue(k, dim=1, keepdim=True).values
    return (sim <= thresh) & ~own


def sample_negatives(allowed: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """(B, P) mask → (B, n) prompt indices drawn uniformly from each row's allowed set (with
    replacement when a row has fewer than n)."""
    weights = allowed.float()
    return torch.multinomial(weights, n, replacement=bool((allowed.sum(1) < n).any()), generator=generator)
