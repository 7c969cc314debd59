"""Few-step SDXL renderer (SDXL-Turbo, SDXL-Lightning): conditioning → latents → pixels.

A minimal custom loop in the style of diffusers' `StableDiffusionXLPipeline.__call__`, cut down to what
a live visualizer needs and with everything that does not change between frames computed once:

- the timesteps and sigmas for the step count (and for each feedback strength) come from the
  scheduler's own `set_timesteps`, once; the Euler / ancestral-Euler update is then written out here
  (the same arithmetic as the scheduler's `step`), so the loop keeps no scheduler state between frames
  and never synchronises the GPU to look up a step index;
- `add_time_ids` (original size, crop, target size) are built once;
- the starting noise is fixed per seed, so steady music gives a steady picture. Ancestral Euler adds
  noise at every step: it comes from a generator seeded per frame, so every frame is reproducible;
- classifier-free guidance only when `guidance_scale > 1` (Turbo and Lightning are distilled for
  guidance 0). The negative conditioning is the renderer's `negative` attribute; `None` means zeros,
  which is what SDXL's pipelines do for an empty negative prompt (`force_zeros_for_empty_prompt`).

Temporal coherence (latent feedback): with `feedback > 0` a frame starts from the previous frame's
latent instead of pure noise: the latent is re-noised to the sigma where denoising starts and the last
`steps` timesteps are run — img2img without a VAE encode. Feedback `f` means img2img strength `1 − f`;
to keep the cost of a frame at exactly `steps` UNet calls at any strength, the schedule has
`round(steps / (1 − f))` timesteps of which the last `steps` run (the same as diffusers'
`StableDiffusionXLImg2ImgPipeline` with that many `num_inference_steps` and `strength = steps / n`).

Equivalence with diffusers' pipelines on the tiny profile is tested in tests/test_render_sdxl.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from diffusers.utils.torch_utils import randn_tensor

from engine.errors import BeatcanvasError
from engine.types import Conditioning, Features, Frame

log = logging.getLogger(__name__)

Decoder = Literal["taesd", "vae"]
SeedPolicy = Literal["fixed", "drift"]
MAX_FEEDBACK = 0.95  # above this the frame barely denoises and the picture freezes into mush


@dataclass(frozen=True)
class Schedule:
    """The timesteps one frame runs and the sigmas around them (sigmas[i] → sigmas[i + 1] per step)."""

    timesteps: torch.Tensor  # (steps,)
    sigmas: torch.Tensor  # (steps + 1,) float32, ending in 0
    init_sigma: float  # std of the starting noise (scheduler.init_noise_sigma) for text-to-image
    ancestral: bool


def make_schedule(scheduler, num_inference_steps: int, strength: float = 1.0, device=None) -> Schedule:
    """Timesteps/sigmas of `scheduler` for a step count and img2img strength, as the pipelines pick them.

    Mirrors `retrieve_timesteps` + `StableDiffusionXLImg2ImgPipeline.get_timesteps`: with strength < 1
    the first `num_inference_steps − int(num_inference_steps · strength)` timesteps are skipped.
    """
    scheduler.set_timesteps(num_inference_steps, device=device)
    init_timestep = min(int(num_inference_steps * strength), num_inference_steps)
    t_start = max(num_inference_steps - init_timestep, 0)
    if scheduler.config.prediction_type != "epsilon":
        raise BeatcanvasError(
            f"scheduler prediction_type '{scheduler.config.prediction_type}' is not supported: "
            "SDXL-Turbo and SDXL-Lightning predict epsilon; check the scheduler config"
        )
    return Schedule(
        timesteps=scheduler.timesteps[t_start:].clone(),
        sigmas=scheduler.sigmas[t_start:].to(device=device, dtype=torch.float32).clone(),
        init_sigma=float(scheduler.init_noise_sigma),
        ancestral=type(scheduler).__name__ == "EulerAncestralDiscreteScheduler",
    )


def unet_pooled_dim(unet_config) -> int:
    """Width of the pooled text embedding the UNet takes: its added-condition input minus 6 time ids."""
    return unet_config.projection_class_embeddings_input_dim - 6 * unet_config.addition_time_embed_dim


def feedback_steps(steps: int, feedback: float) -> int:
    """Scheduler steps for a feedback frame so that exactly `steps` of them run (strength 1 − f)."""
    return max(steps, int(round(steps / (1.0 - feedback))))


class SDXLRenderer:
    """Renders `Conditioning` into frames with a few-step SDXL UNet and TAESDXL (or the full VAE).

    `components` is an `engine.profiles.SDXLComponents`. The UNet and decoders are used as given, or
    prepared by the compile back-end named by `backend` (engine/render/backends.py). Not thread-safe:
    one render worker owns one renderer.

    Attributes a caller may set between frames: `negative` (the negative conditioning for
    classifier-free guidance, used only when `guidance_scale > 1`: a `Conditioning` or the
    `(prompt_embeds, pooled)` pair from `Understanding.negative_conditioning()`; None = zeros),
    `feedback`, `seed_policy`, `reuse_noise`. `guidance_scale` is fixed at construction (it sets the
    UNet batch, which static-shape back-ends compile for).
    """

    def __init__(
        self,
        components,
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
        cache_dir=None,
        progress=None,
    ):
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

        self.device = torch.device(device)
        self.dtype = dtype
        self.width, self.height, self.steps = width, height, steps
        self.guidance_scale = guidance_scale
        self.decoder_name = decoder
        self.feedback = feedback
        self.seed_policy = seed_policy
        self.reuse_noise = reuse_noise
        self.negative = negative
        self.model = components.model

        unet_config = components.unet.config
        self.latent_shape = (unet_config.in_channels, height // factor, width // factor)
        self.unet_config = unet_config
        self._scheduler = components.scheduler
        self._vae_config = (components.taesd if decoder == "taesd" else components.vae).config

        self._upcast_vae = (
            decoder == "vae" and dtype == torch.float16 and bool(getattr(self._vae_config, "force_upcast", False))
        )
        if self._upcast_vae:  # the original SDXL VAE overflows in fp16 (the fp16-fix VAE does not): keep it fp32
            components.vae.to(torch.float32)
        prepared = prepare_backend(
            components, backend, device=self.device, dtype=dtype, width=width, height=height,
            decoder=decoder, unet_batch=2 if guidance_scale > 1 else 1, cache_dir=cache_dir, progress=progress,
        )
        self.backend, self.backend_reason = prepared.name, prepared.reason
        self.unet, self.decode_model = prepared.unet, prepared.decoder
        self.name = f"{self.model}/{self.backend}"

        self._t2i = make_schedule(self._scheduler, steps, device=self.device)
        self._feedback_schedules: dict[int, Schedule] = {}
        # (original_size, crops_coords_top_left, target_size), as `_get_add_time_ids` builds them.
        self.add_time_ids = torch.tensor(
            [[height, width, 0, 0, height, width]], device=self.device, dtype=dtype
        )
        self.reset(seed)

    # ------------------------------------------------------------------------------------ state

    def reset(self, seed: int) -> None:
        """Forget the feedback latent and the cached noise; start counting frames from 0."""
        self.seed = int(seed)
        self.frame_index = 0
        self.prev_latents: torch.Tensor | None = None
        self._noise_cache: tuple[int, int, torch.Tensor, torch.Tensor] | None = None

    def frame_seed(self, index: int, feedback_frame: bool) -> int:
        """`fixed`: every frame uses `seed`; `drift`: frame i uses `seed + i`. Feedback frames draw fresh
        noise every frame unless `reuse_noise` (then a steady input converges to a steady picture)."""
        base = self.seed + index if self.seed_policy == "drift" else self.seed
        if feedback_frame and not self.reuse_noise:
            return (base * 1_000_003 + index + 1) % (2**63)
        return base

    def generator(self, seed: int, batch: int = 1) -> tuple[torch.Generator, torch.Tensor]:
        """A generator for `seed` and the starting noise it draws first; the generator then supplies the
        ancestral step noise. Both are cached for the last seed (noise fixed per seed)."""
        gen = torch.Generator(device=self.device)
        cache = self._noise_cache
        if cache is not None and cache[0] == seed and cache[1] == batch:
            gen.set_state(cache[3])
            return gen, cache[2]
        gen.manual_seed(seed)
        noise = randn_tensor((batch, *self.latent_shape), generator=gen, device=self.device, dtype=self.dtype)
        self._noise_cache = (seed, batch, noise, gen.get_state())
        return gen, noise

    def feedback_schedule(self, feedback: float) -> Schedule:
        n = feedback_steps(self.steps, min(feedback, MAX_FEEDBACK))
        if n not in self._feedback_schedules:
            self._feedback_schedules[n] = make_schedule(self._scheduler, n, self.steps / n, device=self.device)
        return self._feedback_schedules[n]

    # ------------------------------------------------------------------------------------ stages

    def embeddings(self, conditioning: Conditioning | None, batch: int = 1):
        """(prompt_embeds, pooled, time_ids) on the device, negatives first when guidance is on."""
        if conditioning is None:  # before the first window: the unconditional picture
            conditioning = self.zero_conditioning()
        embeds = conditioning.prompt_embeds.to(self.device, self.dtype)
        pooled = conditioning.pooled_prompt_embeds.to(self.device, self.dtype)
        if embeds.shape[0] != batch:
            embeds, pooled = embeds[:1].expand(batch, -1, -1), pooled[:1].expand(batch, -1)
        time_ids = self.add_time_ids.expand(batch, -1)
        if self.do_cfg:
            neg = self.negative
            if neg is None:
                neg_embeds, neg_pooled = torch.zeros_like(embeds), torch.zeros_like(pooled)
            else:  # a Conditioning, or the (prompt_embeds, pooled) pair Understanding.negative_conditioning gives
                neg_e, neg_p = (neg.prompt_embeds, neg.pooled_prompt_embeds) if isinstance(neg, Conditioning) else neg
                neg_embeds, neg_pooled = neg_e.to(embeds).expand_as(embeds), neg_p.to(pooled).expand_as(pooled)
            embeds, pooled = torch.cat([neg_embeds, embeds]), torch.cat([neg_pooled, pooled])
            time_ids = torch.cat([time_ids, time_ids])
        return embeds, pooled, time_ids

    def zero_conditioning(self) -> Conditioning:
        dim = self.unet_config.cross_attention_dim
        return Conditioning(torch.zeros(1, 77, dim), torch.zeros(1, unet_pooled_dim(self.unet_config)))

    @property
    def do_cfg(self) -> bool:
        return self.guidance_scale > 1.0

    def unet_step(self, latents: torch.Tensor, t: torch.Tensor, sigma: torch.Tensor, embeds, pooled, time_ids):
        """One UNet evaluation on the sigma-scaled latents (with guidance when it is on)."""
        latent_in = torch.cat([latents] * 2) if self.do_cfg else latents
        latent_in = latent_in / ((sigma**2 + 1) ** 0.5)  # scheduler.scale_model_input
        noise_pred = self.unet(
            latent_in,
            t,
            encoder_hidden_states=embeds,
            added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids},
            return_dict=False,
        )[0]
        if self.do_cfg:
            uncond, text = noise_pred.chunk(2)
            noise_pred = uncond + self.guidance_scale * (text - uncond)
        return noise_pred

    def denoise(self, latents, schedule: Schedule, embeds, pooled, time_ids, generator) -> torch.Tensor:
        """The few-step Euler (or ancestral Euler) loop, from `schedule.sigmas[0]` down to 0."""
        for i, t in enumerate(schedule.timesteps):
            sigma, sigma_next = schedule.sigmas[i], schedule.sigmas[i + 1]
            eps = self.unet_step(latents, t, sigma, embeds, pooled, time_ids)
            sample = latents.to(torch.float32)
            if schedule.ancestral:
                sigma_up = (sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2) ** 0.5
                sigma_down = (sigma_next**2 - sigma_up**2) ** 0.5
                sample = sample + eps * (sigma_down - sigma)
                noise = randn_tensor(eps.shape, dtype=eps.dtype, device=eps.device, generator=generator)
                sample = sample + noise * sigma_up
            else:
                sample = sample + eps * (sigma_next - sigma)
            latents = sample.to(eps.dtype)
        return latents

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents → uint8 images (B, H, W, 3) on the render device (4× less to copy than floats)."""
        config = self._vae_config
        mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
        if mean is not None and std is not None:
            mean = torch.tensor(mean, device=latents.device, dtype=latents.dtype).view(1, -1, 1, 1)
            std = torch.tensor(std, device=latents.device, dtype=latents.dtype).view(1, -1, 1, 1)
            latents = latents * std / config.scaling_factor + mean
        else:
            latents = latents / config.scaling_factor
        if self._upcast_vae:
            latents = latents.to(torch.float32)
        image = self.decode_model.decode(latents, return_dict=False)[0]
        image = (image.float() / 2 + 0.5).clamp(0, 1)  # VaeImageProcessor.denormalize
        return (image * 255).round().to(torch.uint8).permute(0, 2, 3, 1)

    @staticmethod
    def to_host(images: torch.Tensor) -> np.ndarray:
        return images.cpu().numpy()

    # ------------------------------------------------------------------------------------ frame

    @torch.inference_mode()
    def render_latents(self, conditioning: Conditioning | None, batch: int = 1) -> torch.Tensor:
        """Start latents (noise, or the re-noised previous frame) → denoised latents; advances the frame."""
        use_feedback = self.feedback > 0 and self.prev_latents is not None and self.prev_latents.shape[0] == batch
        gen, noise = self.generator(self.frame_seed(self.frame_index, use_feedback), batch)
        if use_feedback:
            schedule = self.feedback_schedule(self.feedback)
            latents = self.prev_latents + noise * schedule.sigmas[0]  # scheduler.add_noise
        else:
            schedule = self._t2i
            latents = noise * schedule.init_sigma
        embeds, pooled, time_ids = self.embeddings(conditioning, batch)
        latents = self.denoise(latents, schedule, embeds, pooled, time_ids, gen)
        self.prev_latents = latents
        self.frame_index += 1
        return latents

    @torch.inference_mode()
    def render(self, conditioning: Conditioning | None, features: Features | None = None, t: float = 0.0) -> Frame:
        seed = self.frame_seed(self.frame_index, False)
        latents = self.render_latents(conditioning)
        image = self.to_host(self.decode(latents))[0]
        return Frame(
            image=image,
            t=conditioning.t if conditioning is not None else t,
            seed=seed,
            renderer=self.name,
        )
