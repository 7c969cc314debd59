"""Stream batch (StreamDiffusion's idea): K frames in flight at K denoising stages, one UNet call.

A K-step model normally costs K sequential UNet calls per image. Here a batch of K latents moves
through the schedule like a conveyor: slot j holds the frame that entered j ticks ago. Each tick runs
one UNet call on all K slots (each with its own timestep and its own conditioning, the one it entered
with), the frame in the last slot is finished and decoded, every slot moves one along, and a new frame
enters slot 0. A displayed image then costs one batched UNet call (batch K is much cheaper than K
calls of batch 1 on a GPU), at the price of K − 1 frames of latency.

Every frame carries its own schedule through the conveyor: a row of K per-slot constants (timestep,
√(σ²+1), c_eps, c_noise) and, for ancestral Euler, its K per-slot step noises, shifted along with its
latents. A frame keeps the σ constants it entered with when the feedback knob moves, and the knob
never captures a new graph: one program serves text-to-image and every feedback strength. A feedback
frame runs k ≤ K steps on the model's grid (engine/render/denoise.py): it idles in the first K − k
slots (c_eps = c_noise = 0 leave it unchanged) and runs its k steps in the last k.

The frame that entered at tick i with conditioning c and seed s comes out at tick i + K − 1 equal to a
sequential render of (c, s) from the same start (tests/test_render_fast_path.py). With latent
feedback, the entering frame re-noises the newest finished frame, which is K − 1 frames older than in
sequential rendering: the picture still flows, one step behind.

Supported: guidance off (the distilled models' default), and ancestral Euler only with a fixed seed (its
per-step noise is then the same for every frame). Otherwise the renderer renders sequentially and says
why (`unsupported_reason`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from engine.render.denoise import C_EPS, C_NOISE, SCALE_IN, T, Schedule, euler_update, keep_finite
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
        k = self.k = r.steps
        lat = (k, *r.latent_shape)
        new = lambda *shape: torch.zeros(shape, device=r.device, dtype=r.dtype)  # noqa: E731
        self.x = new(*lat)  # slot j: the frame that entered j ticks ago
        self.embeds = new(k, *r.inputs(1).embeds.shape[1:])
        self.pooled = new(k, *r.inputs(1).pooled.shape[1:])
        self.time_ids = r.add_time_ids.expand(k, -1).clone()
        self.ancestral = r._t2i.ancestral
        # Row j: the constants of the frame in slot j, one column per slot; slot j reads column j.
        self.consts = torch.zeros(k, k, 4, device=r.device, dtype=torch.float32)
        self.noise_rows = new(k, *lat) if self.ancestral else None  # the same for the step noises
        self.entry_consts = torch.zeros(k, 4, device=r.device, dtype=torch.float32)  # the entering frame's row
        self.entry_noise = new(*lat) if self.ancestral else None
        self.use_prev = torch.zeros((), device=r.device, dtype=torch.bool)
        self.start_sigma = torch.zeros((), device=r.device, dtype=torch.float32)
        self._diag = torch.arange(k, device=r.device)
        self.incoming = r.inputs(1)  # the entering frame's conditioning and noise (the renderer writes them)
        self.finished = new(1, *r.latent_shape)  # the newest finished latents (feedback)
        self._entries: dict[int, tuple[torch.Tensor, ...]] = {}
        self._entered: tuple[int, int] | None = None
        self._program: FrameProgram | None = None
        self.reset()

    def reset(self) -> None:
        self.ticks = 0
        self._entered = None

    def entry_row(self, schedule: Schedule) -> tuple[list[list[float]], list[int]]:
        """(K constant rows, K step-noise indices, −1 = none) of a frame running `schedule`: idle slots
        first, then its steps in the last slots."""
        idle = self.k - len(schedule.steps)
        first = schedule.steps[0]
        rows = [[first.t, 1.0, 0.0, 0.0]] * idle + schedule.rows()
        return rows, [-1] * idle + list(range(len(schedule.steps)))

    def upload(self, schedule: Schedule) -> tuple[torch.Tensor, ...]:
        """A schedule's entry row on the device, uploaded once (warm-up uploads every schedule the
        feedback knob can reach, so moving it later is device copies only)."""
        if id(schedule) not in self._entries:
            rows, _ = self.entry_row(schedule)
            r = self.r
            self._entries[id(schedule)] = (
                torch.tensor(rows, dtype=torch.float32).to(r.device), torch.tensor(schedule.img2img).to(r.device),
                torch.tensor(schedule.start_sigma, dtype=torch.float32).to(r.device))
        return self._entries[id(schedule)]

    def _load_entry(self, schedule: Schedule, seed: int) -> None:
        """Make `schedule` (and, ancestral, `seed`'s step noise) the entering frame's: device copies of
        tensors uploaded once per schedule."""
        key = (id(schedule), seed)
        if self._entered == key:
            return
        r = self.r
        rows_t, use_prev, sigma = self.upload(schedule)
        self.entry_consts.copy_(rows_t)
        self.use_prev.copy_(use_prev)
        self.start_sigma.copy_(sigma)
        if self.entry_noise is not None:
            _, draws = r.buffers.noise_for(seed)
            for j, i in enumerate(self.entry_row(schedule)[1]):
                if i < 0:
                    self.entry_noise[j].zero_()
                else:
                    self.entry_noise[j].copy_(draws[i][0])
        self._entered = key

    def program(self) -> FrameProgram:
        """The one tick program: every schedule is data in the conveyor, so it is built once."""
        if self._program is None:
            r, inc = self.r, self.incoming

            def tick() -> torch.Tensor:
                for buf in (self.embeds, self.pooled, self.consts, self.noise_rows):  # frames keep what they entered with
                    if buf is not None:
                        buf[1:] = buf[:-1].clone()
                self.embeds[0], self.pooled[0] = inc.embeds[0], inc.pooled[0]
                self.consts[0] = self.entry_consts
                if self.noise_rows is not None and self.entry_noise is not None:
                    self.noise_rows[0] = self.entry_noise
                zero = torch.zeros((), device=self.x.device, dtype=self.x.dtype)
                start = torch.where(self.use_prev, self.finished, zero) + inc.noise * self.start_sigma.to(self.x.dtype)
                self.x[0] = start[0]
                c = self.consts[self._diag, self._diag]  # (K, 4): slot j's constants for its step
                col = lambda i: c[:, i].view(-1, 1, 1, 1)  # noqa: E731
                x_in = (self.x.float() / col(SCALE_IN)).to(self.x.dtype)
                eps = r.unet(x_in, c[:, T], encoder_hidden_states=self.embeds,
                             added_cond_kwargs={"text_embeds": self.pooled, "time_ids": self.time_ids}, return_dict=False)[0]
                noise = self.noise_rows[self._diag, self._diag] if self.noise_rows is not None else None
                x_next = euler_update(self.x, eps, col(C_EPS), noise, col(C_NOISE))
                self.finished.copy_(keep_finite(x_next[-1:], self.finished))
                self.x[1:] = x_next[:-1]
                return r.decode(self.finished)

            state = tuple(b for b in (self.x, self.embeds, self.pooled, self.finished, self.consts, self.noise_rows) if b is not None)
            self._program = FrameProgram(tick, r.device, use_graph=r.use_graphs, pool=r._pool, state=state,
                                         name=f"{r.name} stream batch {self.k}")
        return self._program

    @torch.inference_mode()
    def tick(self, conditioning: Conditioning | None, seed: int) -> torch.Tensor:
        """Enter a frame, advance every slot one step, return the finished frame's pixels. The first
        call fills the pipeline (K − 1 extra ticks with the same input), so every call returns a frame."""
        r = self.r
        r.buffers.write_conditioning(self.incoming, [conditioning])
        r.buffers.write_noise(self.incoming, [seed])
        feedback = r.feedback > 0 and self.ticks >= self.k
        self._load_entry(r.schedule_for(feedback), seed)
        for _ in range(self.k - 1 if self.ticks == 0 else 0):
            self.program()()
            self.ticks += 1
        images = self.program()()
        self.ticks += 1
        r.frame_index += 1
        return images
