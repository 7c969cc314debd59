"""Few-step SDXL renderer (SDXL-Turbo, SDXL-Lightning): conditioning → latents → pixels.

A minimal custom loop in the style of diffusers' `StableDiffusionXLPipeline.__call__`, cut down to what
a live visualizer needs, with everything that does not change between frames done once:

- the schedule for each step count and feedback strength comes from the scheduler's own
  `set_timesteps`, once, folded into per-step constants (engine/render/denoise.py);
- the frame reads only static buffers (conditioning, noise, previous latents) and returns uint8 pixels,
  so on CUDA it is captured as one CUDA graph and replayed (engine/render/graphs.py). A frame's hot
  path makes no host synchronisation: conditioning is uploaded only when it changes, noise only when
  the seed changes, and readback can be asynchronous (`pipelined=True`, engine/render/readback.py);
- the starting noise is fixed per seed, so steady music gives a steady picture. Ancestral Euler's step
  noise is drawn right after it from the same generator, as diffusers' pipelines draw it;
- classifier-free guidance only when `guidance_scale > 1` (Turbo and Lightning are distilled for
  guidance 0), with the renderer's `negative` conditioning (None = zeros, SDXL's
  `force_zeros_for_empty_prompt`).

Temporal coherence (latent feedback): with `feedback > 0` a frame starts from the previous frame's
latent re-noised to the σ where denoising starts, and runs the last k points of the N-point grid the
model was distilled on (Turbo: 999, 749, 499, 249): img2img at strength k/N ≈ 1 − f without a VAE
encode, k ≤ `steps` UNet calls (engine/render/denoise.py). Every schedule with k steps runs in the same
frame program (its constants are device tensors), so moving the feedback knob never captures a graph.

Pipelined readback (live, `pipelined=True`): `render` queues this frame's copy to host memory and
returns the previous frame, so one frame is always in flight and the render loop never waits for the
frame it has just submitted (engine/render/readback.py).

Throughput options: `transition_frames = B > 1` (1-step models) renders the B in-between frames of a
conditioning change in one batched call; `stream_batch` (multi-step models) keeps K frames in flight
at K denoising stages (engine/render/stream_batch.py); `similarity_threshold > 0` skips renders whose
conditioning barely changed (engine/render/similarity.py). Export uses none of them.

Equivalence with diffusers' pipelines on the tiny profile is tested in tests/test_render_sdxl.py.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable
from collections import OrderedDict, deque
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from engine.errors import BeatcanvasError
from engine.render.denoise import (Schedule, StepTable, denoise, feedback_steps, keep_finite, make_schedule, native_grid,
                                   start_latents)
from engine.render.frame_inputs import FrameInputs, StaticInputs
from engine.render.graphs import FrameProgram
from engine.render.readback import Readback
from engine.render.shapes import latent_shape, unet_pooled_dim
from engine.render.similarity import SimilarityFilter
from engine.render.stream_batch import StreamBatch, unsupported_reason
from engine.streams import render_stream
from engine.types import Conditioning, Features, Frame
from engine.understanding.conditioning import blend

if TYPE_CHECKING:
    from engine.models.profiles import SDXLComponents

log = logging.getLogger(__name__)

Decoder = Literal["taesd", "vae"]
SeedPolicy = Literal["fixed", "drift"]
MAX_PROGRAMS = 16  # captured (batch, UNet calls) programs kept; each holds its graph's activations


class SDXLRenderer:
    """Renders `Conditioning` into frames with a few-step SDXL UNet and TAESDXL (or the full VAE).

    `components` is an `engine.models.profiles.SDXLComponents`; the compile back-end named by `backend`
    (engine/render/backends.py) prepares its UNet and decoder. Not thread-safe: one render worker owns
    one renderer. Settable between frames: `negative`, `feedback`, `seed_policy`, `reuse_noise`.
    """

    def __init__(
        self,
        components: SDXLComponents,
        width: int = 512,
        height: int = 512,
        steps: int = 1,
        guidance_scale: float = 0.0,
        decoder: Decoder = "taesd",
        feedback: float = 0.0,
        seed: int = 0,
        seed_policy: SeedPolicy = "fixed",
        reuse_noise: bool = True,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        backend: str = "eager",
        negative: Conditioning | tuple[torch.Tensor, torch.Tensor] | None = None,
        cuda_graphs: bool = True,
        pipelined: bool = False,
        transition_frames: int = 1,
        stream_batch: bool = False,
        similarity_threshold: float = 0.0,
        cache_dir: str | os.PathLike[str] | None = None,
        progress: Callable[[str], None] | None = None,
        fp8: bool = False,
    ) -> None:
        from engine.render.backends import prepare_backend

        factor = components.vae_scale_factor
        if width % factor or height % factor or width <= 0 or height <= 0:
            raise BeatcanvasError(f"image size {width}x{height} must be positive multiples of {factor}")
        if steps < 1:
            raise BeatcanvasError(f"steps must be at least 1, got {steps}")
        if decoder not in ("taesd", "vae"):
            raise BeatcanvasError(f"unknown decoder '{decoder}': choose taesd or vae")
        if decoder == "vae" and components.vae is None:
            raise BeatcanvasError("decoder 'vae' needs the full VAE: build the components with with_vae=True")
        if seed_policy not in ("fixed", "drift"):
            raise BeatcanvasError(f"unknown seed policy '{seed_policy}': choose fixed or drift")
        if components.model == "sdxl-lightning" and steps == 1:
            raise BeatcanvasError("SDXL-Lightning's 1-step checkpoint predicts x0 (another sampler) and is not "
                                  "supported: use steps 2, 4 or 8, or sdxl-turbo for 1 step")

        self.device, self.dtype = torch.device(device), dtype
        self.width, self.height, self.steps = width, height, steps
        self.guidance_scale, self.decoder_name = guidance_scale, decoder
        self.feedback, self.seed_policy, self.reuse_noise, self.negative = feedback, seed_policy, reuse_noise, negative
        self.model = components.model
        self.unet_config = components.unet.config
        self.latent_shape = latent_shape(self.unet_config, width, height, factor)
        self._scheduler = copy.deepcopy(components.scheduler)  # set_timesteps mutates it: never share one
        vae = components.vae
        if decoder == "vae" and vae is None:
            raise BeatcanvasError('decoder = "vae" needs the full SDXL VAE: build the components with '
                                  'build_sdxl(..., with_vae=True), or use decoder = "taesd"')
        self._vae_config = components.taesd.config if vae is None or decoder == "taesd" else vae.config
        self._upcast_vae = decoder == "vae" and dtype == torch.float16 and bool(self._vae_config.get("force_upcast", True))
        if self._upcast_vae and vae is not None:  # the original SDXL VAE overflows in fp16 (the fp16-fix
            vae.to(torch.float32)  # VAE does not): keep it fp32
        self._t2i = make_schedule(self._scheduler, steps, device=self.device)
        self.grid = native_grid(self.model, steps)
        self._feedback_schedules = {k: make_schedule(self._scheduler, self.grid, last=k, device=self.device)
                                    for k in range(1, steps + 1)}
        self._tables: dict[int, StepTable] = {}  # one per UNet-call count, shared by that count's programs
        stream_reason = unsupported_reason(self) if stream_batch and steps > 1 else "off"
        rows = (steps if not stream_reason else 1) * (2 if guidance_scale > 1 else 1)  # static-shape engines
        prepared = prepare_backend(
            components, backend, device=self.device, dtype=dtype, width=width, height=height,
            decoder=decoder, unet_batch=rows, cache_dir=cache_dir, progress=progress, fp8=fp8,
        )
        self.backend, self.backend_reason = prepared.name, prepared.reason
        self.unet, self.decode_model = prepared.unet, prepared.decoder
        self.name = f"{self.model}/{self.backend}"
        self._latent_affine = self._decoder_affine()

        self.add_time_ids = torch.tensor([[height, width, 0, 0, height, width]], device=self.device, dtype=dtype)
        self.use_graphs = cuda_graphs and self.device.type == "cuda"
        self._render_stream = render_stream(self.device)  # frames outrank background (conditioning) work
        self._pool = torch.cuda.graph_pool_handle() if self.use_graphs else None
        self._programs: OrderedDict[tuple, FrameProgram] = OrderedDict()
        self.buffers = StaticInputs(
            self.device, dtype, self.latent_shape, self.unet_config.cross_attention_dim,
            unet_pooled_dim(self.unet_config), self.add_time_ids, cfg=self.do_cfg,
            ancestral_draws=steps if self._t2i.ancestral else 0,
        )
        self._readback: Readback[tuple[float, int]] | None = Readback(self.device) if pipelined else None
        # In-between frames need a batch of B: not for multi-step models, nor for TensorRT's static batch.
        self.transition_frames = transition_frames if steps == 1 and self.backend != "tensorrt" else 1
        self.similarity = SimilarityFilter(similarity_threshold, seed=seed) if similarity_threshold > 0 else None
        if stream_batch and stream_reason:
            log.info("stream batch off: %s", stream_reason)
        self._stream = StreamBatch(self) if not stream_reason else None
        self.reset(seed)

    # ------------------------------------------------------------------------------------ state

    def reset(self, seed: int) -> None:
        """Forget the feedback latent, queued frames and the cached noise; count frames from 0."""
        self.seed = int(seed)
        self.frame_index = 0
        self.buffers.reset()
        self._queue: deque[Frame] = deque()
        if self._readback is not None:
            self._readback.clear()
        self._target: Conditioning | None = None  # the conditioning the picture is heading for
        self._last_frame: Frame | None = None
        if self._stream is not None:
            self._stream.reset()

    @torch.inference_mode()
    def warm_up(self) -> None:
        """Build (compile, capture) every frame program the show will use, before the show: the first
        live frame then costs one frame, not a compile. Leaves the renderer as `reset` leaves it."""
        with self.on_render_stream():
            if self._stream is not None:  # the show renders only through the stream: nothing else
                for _ in range(self.steps + 1):  # is compiled (a static-batch engine has batch K only)
                    self._stream.tick(None, self.seed)
                for schedule in self._feedback_schedules.values():  # the knob's reach: device copies later
                    self._stream.upload(schedule)
            else:
                batches = [1] + ([self.transition_frames] if self.transition_frames > 1 else [])
                for batch in batches:
                    self._run([None] * batch)  # text-to-image
                    if self.feedback > 0 or self.device.type == "cuda":  # every feedback program the knob
                        for k in range(1, self.steps + 1):  # can reach (k = 1…steps): no capture on stage
                            self._run([None] * batch, schedule=self._feedback_schedules[k])
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.reset(self.seed)

    def set_similarity(self, threshold: float) -> None:
        """Turn the similarity filter on (threshold in (0, 1)), change it, or off (0)."""
        if threshold <= 0:
            self.similarity = None
        elif self.similarity is None or self.similarity.threshold != threshold:
            self.similarity = SimilarityFilter(threshold, seed=self.seed)

    def frame_seed(self, index: int, feedback_frame: bool) -> int:
        """`fixed`: every frame uses `seed`; `drift`: frame i uses `seed + i`. Feedback frames draw fresh
        noise every frame unless `reuse_noise` (then a steady input converges to a steady picture)."""
        base = self.seed + index if self.seed_policy == "drift" else self.seed
        if feedback_frame and not self.reuse_noise:
            return (base * 1_000_003 + index + 1) % (2**63)
        return base

    def feedback_schedule(self, feedback: float) -> Schedule:
        """The last k points of the model's grid for this feedback strength (engine/render/denoise.py)."""
        return self._feedback_schedules[feedback_steps(self.steps, feedback, self.grid)]

    def schedule_for(self, feedback: bool) -> Schedule:
        return self.feedback_schedule(self.feedback) if feedback else self._t2i

    @property
    def do_cfg(self) -> bool:
        return self.guidance_scale > 1.0

    def zero_conditioning(self) -> Conditioning:
        return self.buffers.zero_conditioning()

    def inputs(self, batch: int) -> FrameInputs:
        return self.buffers.batch(batch)

    def on_render_stream(self) -> AbstractContextManager[object]:
        """Context in which the renderer's GPU work is queued (the high-priority render stream)."""
        return torch.cuda.stream(self._render_stream) if self._render_stream is not None else nullcontext()

    # ------------------------------------------------------------------------------------ stages

    def unet_eps(self, x_in: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor, pooled: torch.Tensor,
                 time_ids: torch.Tensor) -> torch.Tensor:
        """One UNet evaluation on already-scaled latents, with guidance when it is on."""
        latent_in = torch.cat([x_in] * 2) if self.do_cfg else x_in
        noise_pred = self.unet(
            latent_in, t, encoder_hidden_states=embeds,
            added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}, return_dict=False,
        )[0]
        if self.do_cfg:
            uncond, text = noise_pred.chunk(2)
            noise_pred = uncond + self.guidance_scale * (text - uncond)
        return noise_pred

    def _decoder_affine(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        config = self._vae_config
        mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
        if mean is None or std is None:
            return None
        dt = torch.float32 if self._upcast_vae else self.dtype
        as_t = lambda v: torch.tensor(v, device=self.device, dtype=dt).view(1, -1, 1, 1)  # noqa: E731
        return as_t(mean), as_t(std)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents → uint8 images (B, H, W, 3) on the render device (4× less to copy than floats)."""
        if self._upcast_vae:
            latents = latents.to(torch.float32)
        if self._latent_affine is not None:
            mean, std = self._latent_affine
            latents = latents * std / self._vae_config.scaling_factor + mean
        else:
            latents = latents / self._vae_config.scaling_factor
        image = self.decode_model.decode(latents, return_dict=False)[0]
        image = (image.float() / 2 + 0.5).clamp(0, 1)  # VaeImageProcessor.denormalize
        return (image * 255).round().to(torch.uint8).permute(0, 2, 3, 1)

    @staticmethod
    def to_host(images: torch.Tensor) -> np.ndarray:
        return images.cpu().numpy()

    # ------------------------------------------------------------------------------------ frames

    def table(self, k: int) -> StepTable:
        if k not in self._tables:
            self._tables[k] = StepTable(k, self.device)
        return self._tables[k]

    def program(self, batch: int, k: int) -> FrameProgram:
        """The captured (or eager) frame for a batch size and k UNet calls: start latents → uint8 pixels.
        Its schedule is whatever the k-step table holds: text-to-image or feedback at any strength."""
        key = (batch, k)
        if key not in self._programs:
            inputs, table = self.inputs(batch), self.table(k)
            eps = lambda x, t: self.unet_eps(x, t, inputs.embeds, inputs.pooled, inputs.time_ids)  # noqa: E731
            ancestral = self._t2i.ancestral

            def run() -> torch.Tensor:
                x = start_latents(table, inputs.prev, inputs.noise)
                x = denoise(eps, x, table, inputs.step_noise[:k] if ancestral else None)
                x = keep_finite(x, inputs.prev)
                inputs.prev.copy_(x)
                return self.decode(x)

            self._programs[key] = FrameProgram(run, self.device, use_graph=self.use_graphs, state=(inputs.prev,),
                                               pool=self._pool, name=f"{self.name} batch {batch}")
            while len(self._programs) > MAX_PROGRAMS:
                self._programs.popitem(last=False)
        self._programs.move_to_end(key)
        return self._programs[key]

    @torch.inference_mode()
    def run(self, conds: list[Conditioning | None]) -> torch.Tensor:
        """Render one frame per conditioning (one batched call) → uint8 (B, H, W, 3) on the device. All
        frames start from the last frame's latents when feedback is on; the last one's become the next."""
        with self.on_render_stream():
            return self._run(conds)

    def _run(self, conds: list[Conditioning | None], schedule: Schedule | None = None) -> torch.Tensor:
        batch = len(conds)
        inputs, single = self.inputs(batch), self.inputs(1)
        feedback = self.feedback > 0 and single.has_prev if schedule is None else schedule.img2img
        schedule = schedule or self.schedule_for(feedback)
        if batch > 1 and feedback:
            inputs.prev.copy_(single.prev.expand_as(inputs.prev))
        self.buffers.write_conditioning(inputs, conds, self.negative)
        self.buffers.write_noise(inputs, [self.frame_seed(self.frame_index + j, feedback) for j in range(batch)])
        k = len(schedule.steps)
        self.table(k).load(schedule)
        images = self.program(batch, k)()
        if batch > 1:
            single.prev.copy_(inputs.prev[-1:])
        single.has_prev = True
        self.frame_index += batch
        return images

    @torch.inference_mode()
    def render_latents(self, conditioning: Conditioning | None, batch: int = 1) -> torch.Tensor:
        """Render one frame (the same conditioning `batch` times) and return its latents (a copy)."""
        self.run([conditioning] * batch)
        return self.inputs(batch).prev.clone()

    @torch.inference_mode()
    def render(self, conditioning: Conditioning | None, features: Features | None = None, t: float = 0.0) -> Frame:
        with self.on_render_stream():
            return self._render(conditioning, t)

    def _render(self, conditioning: Conditioning | None, t: float) -> Frame:
        t = conditioning.t if conditioning is not None else t
        if self._queue and conditioning is self._target:  # in-between frames of a transition
            return self._remember(self._queue.popleft())
        if self.similarity is not None and self._last_frame is not None and self.similarity.should_skip(conditioning):
            return replace(self._last_frame, reused=True)
        if self.similarity is not None:
            self.similarity.rendered_with(conditioning)
        seed = self.frame_seed(self.frame_index, False)
        if self._stream is not None:
            return self._emit(self._stream.tick(conditioning, seed), t, seed)
        previous, self._target = self._target, conditioning
        if self.transition_frames > 1 and conditioning is not None and previous is not None and conditioning is not previous:
            return self._transition(previous, conditioning, t)
        return self._emit(self.run([conditioning]), t, seed)

    def _transition(self, start: Conditioning, end: Conditioning, t: float) -> Frame:
        b = self.transition_frames
        conds = [blend(start, end, (j + 1) / b, slerp=True) for j in range(b)]
        first_seed = self.frame_seed(self.frame_index, False)
        images = self.to_host(self.run(conds))  # one copy for all B frames (at hop rate, not per frame)
        self._queue = deque(Frame(image=images[j], t=t, seed=first_seed, renderer=self.name) for j in range(b))
        return self._remember(self._queue.popleft())

    def _emit(self, images: torch.Tensor, t: float, seed: int) -> Frame:
        if self._readback is None:
            return self._remember(Frame(image=self.to_host(images)[0], t=t, seed=seed, renderer=self.name))
        self._readback.submit(images, (t, seed))
        done = self._readback.take()  # the previous frame: this one stays in flight (the first is waited for)
        assert done is not None
        image, (t_done, seed_done) = done
        return self._remember(Frame(image=image[0], t=t_done, seed=seed_done, renderer=self.name))

    def _remember(self, frame: Frame) -> Frame:
        self._last_frame = frame
        return frame
