"""Stream batch (StreamDiffusion's idea): K frames in flight at K denoising stages, one UNet call.

A K-step model normally costs K sequential UNet calls per image. Here a batch of K latents moves
through the schedule like a conveyor: slot k holds the frame that entered k ticks ago and is about to
run step k. Each tick runs one UNet call on all K slots (each with its own timestep and its own
conditioning, the one it entered with), the frame in the last slot is finished and decoded, every slot
moves one along, and a new frame enters slot 0. A displayed image then costs one batched UNet call
(batch K is much cheaper than K calls of batch 1 on a GPU), at the price of K − 1 frames of latency.

The frame that entered at tick i with conditioning c and seed s comes out at tick i + K − 1 equal to a
sequential text-to-image render of (c, s) (tests/test_stream_batch.py). With latent feedback, the
entering frame re-noises the newest finished frame, which is K − 1 frames older than in sequential
rendering: the picture still flows, one step behind.

Supported: guidance off (the distilled models' default), and ancestral Euler only with a fixed seed (its
per-step noise is then the same for every frame). Otherwise the renderer renders sequentially and says
why (`unsupported_reason`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from engine.render.denoise import MAX_FEEDBACK, Schedule, euler_update, feedback_steps
from engine.render.graphs import FrameProgram
from engine.types import Conditioning

if TYPE_CHECKING:  # the renderer owns the stream batch and hands itself in
    from engine.render.sdxl import SDXLRenderer


def unsupported_reason(renderer: SDXLRenderer) -> str:
    """Why this renderer cannot stream-batch ("" when it can). Reads only settings known before the
    back-end is prepared (a static-shape back-end needs the batch size first)."""
    if renderer.guidance_scale > 1:
        return "guidance_scale > 1 doubles the batch; stream batch supports guidance off"
    if renderer._t2i.ancestral and (renderer.seed_policy != "fixed" or not renderer.reuse_noise):
        return "ancestral Euler with changing noise; use seed_policy fixed and reuse_noise"
    return ""


class StreamBatch:
    def __init__(self, renderer: SDXLRenderer):
        r = self.r = renderer
        self.k = r.steps
        lat = (self.k, *r.latent_shape)
        new = lambda *shape: torch.zeros(shape, device=r.device, dtype=r.dtype)  # noqa: E731
        self.x = new(*lat)  # slot k: the frame that entered k ticks ago, about to run step k
        self.embeds = new(self.k, *r.inputs(1).embeds.shape[1:])
        self.pooled = new(self.k, *r.inputs(1).pooled.shape[1:])
        self.time_ids = r.add_time_ids.expand(self.k, -1).clone()
        self.step_noise = new(*lat)  # slot k's step-k ancestral noise (fixed seed: the same every frame)
        self.incoming = r.inputs(1)  # the entering frame's conditioning and noise (the renderer writes them)
        self.finished = new(1, *r.latent_shape)  # the newest finished latents (feedback)
        self._programs: dict[int, FrameProgram] = {}
        self.reset()

    def reset(self) -> None:
        self.ticks = 0

    def _slot_constants(self, schedule: Schedule) -> tuple[torch.Tensor, ...]:
        """Per-slot (timestep, 1/scale_in, c_eps, c_noise), slot k taking step k."""
        steps = schedule.steps[-self.k:]
        col = lambda vals: torch.tensor(vals, device=self.r.device, dtype=torch.float32).view(-1, 1, 1, 1)  # noqa: E731
        t = torch.stack([s.t for s in steps]).to(self.r.device)
        return t, col([s.scale_in for s in steps]), col([s.c_eps for s in steps]), col([s.c_noise for s in steps])

    def program(self, feedback: bool) -> FrameProgram:
        r = self.r
        n = feedback_steps(r.steps, min(r.feedback, MAX_FEEDBACK)) if feedback else 0
        if n not in self._programs:
            schedule = r.feedback_schedule(r.feedback) if feedback else r._t2i
            t, scale_in, c_eps, c_noise = self._slot_constants(schedule)
            ancestral = schedule.ancestral and any(s.c_noise > 0 for s in schedule.steps[-self.k:])
            inc = self.incoming

            def tick() -> torch.Tensor:
                self.embeds[1:] = self.embeds[:-1].clone()  # every frame keeps the conditioning it entered with
                self.pooled[1:] = self.pooled[:-1].clone()
                self.embeds[0], self.pooled[0] = inc.embeds[0], inc.pooled[0]
                if feedback:
                    self.x[0] = (self.finished + inc.noise * schedule.steps[0].sigma)[0]
                else:
                    self.x[0] = (inc.noise * schedule.init_sigma)[0]
                x_in = (self.x.float() / scale_in).to(self.x.dtype)
                eps = r.unet(x_in, t, encoder_hidden_states=self.embeds,
                             added_cond_kwargs={"text_embeds": self.pooled, "time_ids": self.time_ids}, return_dict=False)[0]
                x_next = euler_update(self.x, eps, c_eps, self.step_noise if ancestral else None, c_noise)
                self.finished.copy_(x_next[-1:])
                self.x[1:] = x_next[:-1]
                return r.decode(self.finished)

            self._programs[n] = FrameProgram(tick, r.device, use_graph=r.use_graphs, pool=r._pool,
                                             state=(self.x, self.embeds, self.pooled, self.finished),
                                             name=f"{r.name} stream batch {self.k}")
        return self._programs[n]

    @torch.inference_mode()
    def tick(self, conditioning: Conditioning | None, seed: int) -> torch.Tensor:
        """Enter a frame, advance every slot one step, return the finished frame's pixels. The first
        call fills the pipeline (K − 1 extra ticks with the same input), so every call returns a frame."""
        r = self.r
        r.buffers.write_conditioning(self.incoming, [conditioning])
        r.buffers.write_noise(self.incoming, [seed])
        if self.ticks == 0:
            _, draws = r.buffers.noise_for(seed)
            for k, draw in enumerate(draws[: self.k]):
                self.step_noise[k].copy_(draw[0])
        feedback = r.feedback > 0 and self.ticks >= self.k
        for _ in range(self.k - 1 if self.ticks == 0 else 0):
            self.program(False)()
            self.ticks += 1
        images = self.program(feedback)()
        self.ticks += 1
        r.frame_index += 1
        return images
