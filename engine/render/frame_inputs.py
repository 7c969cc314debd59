"""The static buffers a frame program reads, and the per-seed noise that fills them.

A captured CUDA graph reads fixed addresses, so a frame's inputs live in buffers allocated once per
batch size and changed only by copying into them: the conditioning when a new one arrives (by
identity: at hop rate, not per frame), the noise when the seed changes. Everything else a frame needs
is a constant of its program.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from diffusers.utils.torch_utils import randn_tensor

from engine.render.shapes import TEXT_TOKENS
from engine.types import Conditioning

NOISE_CACHE = 8  # seeds whose noise is kept (drift seeds move on; fixed seeds hit every frame)
Negative = Conditioning | tuple[torch.Tensor, torch.Tensor] | None


@dataclass
class FrameInputs:
    """One batch size's buffers (guidance doubles the conditioning rows, negatives first)."""

    embeds: torch.Tensor
    pooled: torch.Tensor
    time_ids: torch.Tensor
    noise: torch.Tensor
    step_noise: list[torch.Tensor]  # ancestral Euler's per-step noise, one buffer per step
    prev: torch.Tensor  # the last frame's latents (feedback)
    has_prev: bool = False
    conds: tuple = ()  # the conditionings in the buffers (held, compared by identity)
    seeds: tuple = ()
    negative: object = None


class StaticInputs:
    def __init__(self, device: torch.device, dtype: torch.dtype, latent_shape: tuple[int, int, int],
                 text_dim: int, pooled_dim: int, time_ids: torch.Tensor, *, cfg: bool, ancestral_draws: int):
        self.device, self.dtype, self.latent_shape = device, dtype, latent_shape
        self.text_dim, self.pooled_dim, self.time_ids = text_dim, pooled_dim, time_ids
        self.cfg, self.ancestral_draws = cfg, ancestral_draws
        self._batches: dict[int, FrameInputs] = {}
        self._noise: OrderedDict[int, tuple[torch.Tensor, list[torch.Tensor]]] = OrderedDict()

    def reset(self) -> None:
        for inputs in self._batches.values():
            inputs.has_prev, inputs.seeds = False, ()
        self._noise.clear()

    def zero_conditioning(self) -> Conditioning:
        return Conditioning(torch.zeros(1, TEXT_TOKENS, self.text_dim), torch.zeros(1, self.pooled_dim))

    def batch(self, size: int) -> FrameInputs:
        if size not in self._batches:
            rows = 2 * size if self.cfg else size
            lat = (size, *self.latent_shape)
            new = lambda *shape: torch.zeros(shape, device=self.device, dtype=self.dtype)  # noqa: E731
            self._batches[size] = FrameInputs(
                embeds=new(rows, TEXT_TOKENS, self.text_dim), pooled=new(rows, self.pooled_dim),
                time_ids=self.time_ids.expand(rows, -1).clone(), noise=new(*lat),
                step_noise=[new(*lat) for _ in range(self.ancestral_draws)], prev=new(*lat),
            )
        return self._batches[size]

    def noise_for(self, seed: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(starting noise, ancestral step noises) of one frame for `seed`, drawn from one generator in
        the pipelines' order (the starting noise first, then one draw per step)."""
        if seed not in self._noise:
            gen = torch.Generator(device=self.device).manual_seed(seed)
            shape = (1, *self.latent_shape)
            draw = lambda: randn_tensor(shape, generator=gen, device=self.device, dtype=self.dtype)  # noqa: E731
            noise = draw()
            self._noise[seed] = (noise, [draw() for _ in range(self.ancestral_draws)])
            while len(self._noise) > NOISE_CACHE:
                self._noise.popitem(last=False)
        self._noise.move_to_end(seed)
        return self._noise[seed]

    def write_conditioning(self, inputs: FrameInputs, conds: list[Conditioning | None], negative: Negative = None) -> None:
        """Upload the conditionings that changed into the buffers (asynchronous copies). A source on
        the GPU was made on another stream: it is marked used here so that its memory is not handed
        out again before the copy has read it."""
        off = len(conds) if self.cfg else 0
        if len(conds) != len(inputs.conds) or any(a is not b for a, b in zip(conds, inputs.conds)):
            for j, cond in enumerate(conds):
                cond = cond if cond is not None else self.zero_conditioning()
                for dst, src in ((inputs.embeds[off + j], cond.prompt_embeds[0]), (inputs.pooled[off + j], cond.pooled_prompt_embeds[0])):
                    dst.copy_(src, non_blocking=True)
                    if src.is_cuda:
                        src.record_stream(torch.cuda.current_stream(src.device))
            inputs.conds = tuple(conds)
        if self.cfg and inputs.negative is not negative:
            if negative is None:  # zeros: SDXL's force_zeros_for_empty_prompt
                inputs.embeds[:off].zero_()
                inputs.pooled[:off].zero_()
            else:  # a Conditioning, or the (prompt_embeds, pooled) pair Understanding.negative_conditioning gives
                e, p = (negative.prompt_embeds, negative.pooled_prompt_embeds) if isinstance(negative, Conditioning) else negative
                inputs.embeds[:off].copy_(e[:1].expand(off, -1, -1), non_blocking=True)
                inputs.pooled[:off].copy_(p[:1].expand(off, -1), non_blocking=True)
            inputs.negative = negative

    def write_noise(self, inputs: FrameInputs, seeds: list[int]) -> None:
        if tuple(seeds) == inputs.seeds:
            return
        for j, seed in enumerate(seeds):
            noise, draws = self.noise_for(seed)
            inputs.noise[j].copy_(noise[0])
            for buf, d in zip(inputs.step_noise, draws):
                buf[j].copy_(d[0])
        inputs.seeds = tuple(seeds)
