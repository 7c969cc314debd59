"""SDXL prompt encoding, exactly as diffusers' `StableDiffusionXLPipeline.encode_prompt` does it.

For each of the two CLIP text encoders: tokenize to `model_max_length` (77) with max-length padding and
truncation, run with hidden states, keep the penultimate hidden state; concatenate both along the
feature axis (768 + 1280 = 2048 on the real models). The pooled vector is `text_embeds` of the second
encoder (`CLIPTextModelWithProjection`). Negative prompts follow the pipeline too: with
`force_zeros_for_empty_prompt` (SDXL's default) an empty negative is all zeros.

Prompts repeat from hop to hop (the zero-shot head's vocabulary is finite), so encodings are kept in
a small LRU cache; a hit costs a dict lookup instead of two transformer passes. A lock makes
`encode` safe to call from two threads (the conditioning worker and a schedule's hot reload).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from engine.models.profiles import TextEncoders

log = logging.getLogger(__name__)


class PromptEncoder:
    """Two CLIP text encoders → (prompt_embeds (B, 77, prompt_dim), pooled (B, pooled_dim))."""

    def __init__(self, text: TextEncoders, device: str | torch.device | None = None, dtype: torch.dtype | None = None,
                 cache_size: int = 256):
        self.text = text
        self.tokenizers = [text.tokenizer, text.tokenizer_2]
        self.encoders = [text.text_encoder, text.text_encoder_2]
        if device is not None or dtype is not None:
            for enc in self.encoders:
                enc.to(device=device, dtype=dtype)
        self.device = next(text.text_encoder_2.parameters()).device
        self.dtype = next(text.text_encoder_2.parameters()).dtype
        self.cache_size = cache_size
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self._lock = threading.RLock()

    @property
    def prompt_dim(self) -> int:
        return int(self.text.prompt_dim)

    @property
    def pooled_dim(self) -> int:
        return int(self.text.pooled_dim)

    @torch.inference_mode()
    def _encode_uncached(self, prompts: list[str], max_length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        embeds, pooled = [], None
        for tokenizer, encoder in zip(self.tokenizers, self.encoders):
            ids = tokenizer(
                prompts,
                padding="max_length",
                max_length=max_length or tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            ).input_ids
            out = encoder(ids.to(next(encoder.parameters()).device), output_hidden_states=True)
            if pooled is None and out[0].ndim == 2:  # CLIPTextModelWithProjection.text_embeds
                pooled = out[0]
            embeds.append(out.hidden_states[-2])
        prompt_embeds = torch.cat(embeds, dim=-1).to(dtype=self.dtype, device=self.device)
        return prompt_embeds, pooled

    def encode(self, prompts: str | list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts → (prompt_embeds (B, 77, D), pooled (B, P)), served from the LRU cache where possible."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        with self._lock:
            return self._encode_locked(prompts)

    def _encode_locked(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        missing = [p for p in dict.fromkeys(prompts) if p not in self._cache]
        self.hits += len(prompts) - len(missing)
        self.misses += len(missing)
        if missing:
            pe, pp = self._encode_uncached(missing)
            for i, p in enumerate(missing):
                self._cache[p] = (pe[i : i + 1].clone(), pp[i : i + 1].clone())
        for p in prompts:
            self._cache.move_to_end(p)
        out_e = torch.cat([self._cache[p][0] for p in prompts])
        out_p = torch.cat([self._cache[p][1] for p in prompts])
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out_e, out_p

    def encode_negative(self, negative: str | None, batch_size: int = 1,
                        force_zeros_for_empty_prompt: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """The unconditional branch for classifier-free guidance, as the SDXL pipeline builds it."""
        if not negative and force_zeros_for_empty_prompt:
            pe, pp = self.encode("")
            return torch.zeros_like(pe).expand(batch_size, -1, -1), torch.zeros_like(pp).expand(batch_size, -1)
        pe, pp = self.encode(negative or "")
        return pe.expand(batch_size, -1, -1), pp.expand(batch_size, -1)

    def clear(self) -> None:
        self._cache.clear()
