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

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.errors import BeatcanvasError
from engine.understanding.vag import genre_table, va_unit, vag_pairs


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


class NegativeSampler:
    """Draws each item's negatives from the prompts in the lowest `quantile` of VAG similarity to it.

    An item's own prompt is never a negative (the prompt bank is deduplicated, so its index is the
    only copy). Built for 10^4–10^5 items × prompts: per-item thresholds are found in row chunks and
    the allowed set is recomputed per batch, so no items × prompts matrix is ever kept. The similarity
    is `engine.understanding.vag.vag_pairs` on inputs prepared once (tests hold it equal to `vag_similarity`).
    """

    def __init__(self, item_va: torch.Tensor, item_genres: list[str], item_prompt: torch.Tensor,
                 prompt_va: torch.Tensor, prompt_genres: list[str], quantile: float = 0.5,
                 alpha: float = 0.5, beta: float = 0.5, chunk: int = 1024):
        if len(prompt_genres) < 2:
            raise BeatcanvasError("training needs at least 2 distinct prompts to draw negatives from — add more data")
        self.genre_table, self.item_g, self.prompt_g = genre_table(item_genres, prompt_genres)
        self.item_va = va_unit(item_va.float())
        self.prompt_va = va_unit(prompt_va.float())
        self.item_prompt = item_prompt.long()
        self.alpha, self.beta = alpha, beta
        k = max(1, int(round(quantile * (len(prompt_genres) - 1))))
        n = len(item_genres)
        self.threshold = torch.cat([
            self.similarity(torch.arange(a, min(a + chunk, n))).kthvalue(k, dim=1).values for a in range(0, n, chunk)
        ]) if n else torch.zeros(0)

    def similarity(self, idx: torch.Tensor) -> torch.Tensor:
        """f(I|S) of every prompt I to items `idx` (rows), own prompt set to +inf."""
        sim = vag_pairs(self.item_va[idx], self.item_g[idx], self.prompt_va, self.prompt_g, self.genre_table,
                        self.alpha, self.beta)
        return sim.scatter(1, self.item_prompt[idx].unsqueeze(1), float("inf"))

    def mask(self, idx: torch.Tensor | Sequence[int]) -> torch.Tensor:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return self.similarity(idx) <= self.threshold[idx].unsqueeze(1)

    def sample(self, idx: torch.Tensor | Sequence[int], n: int, generator: torch.Generator) -> torch.Tensor:
        return sample_negatives(self.mask(idx), n, generator)


def sample_negatives(allowed: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """(B, P) mask → (B, n) prompt indices drawn uniformly from each row's allowed set (with
    replacement when a row has fewer than n)."""
    weights = allowed.float()
    return torch.multinomial(weights, n, replacement=bool((allowed.sum(1) < n).any()), generator=generator)
