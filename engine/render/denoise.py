"""The few-step Euler / ancestral-Euler arithmetic, with every per-step constant computed once.

`make_schedule` asks the diffusers scheduler for its timesteps and sigmas (the same call the
pipelines make) once, and folds them into `Step`s: the timestep as a 0-d tensor already on the device
and three Python floats. A frame then runs `denoise` with no scheduler state, no schedule lookups on
the host and no host synchronisation, so the whole frame can be captured as one CUDA graph.

The update is the scheduler's own `step` written out (diffusers' `EulerDiscreteScheduler` and
`EulerAncestralDiscreteScheduler`, prediction type epsilon):

    x_in   = x / sqrt(σ² + 1)                               (scale_model_input)
    x_next = x + ε·(σ_down − σ) + noise·σ_up                (σ_up = 0, σ_down = σ_next for plain Euler)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from engine.errors import BeatcanvasError

MAX_FEEDBACK = 0.95  # above this the frame barely denoises and the picture freezes into mush

# (latents scaled by 1/scale_in, timestep) -> epsilon; the renderer binds the conditioning and guidance.
EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Step:
    t: torch.Tensor  # 0-d timestep on the render device
    sigma: float
    sigma_next: float
    scale_in: float  # sqrt(σ² + 1): the model sees x / scale_in
    c_eps: float  # σ_down − σ
    c_noise: float  # σ_up (0 unless ancestral with σ_next > 0)


@dataclass(frozen=True)
class Schedule:
    """The steps one frame runs. Text-to-image starts from noise scaled by `init_sigma` (the
    scheduler's init_noise_sigma); img2img (feedback) re-noises the previous latent to `steps[0].sigma`."""

    steps: tuple[Step, ...]
    init_sigma: float
    ancestral: bool

    @property
    def timesteps(self) -> list[torch.Tensor]:
        return [s.t for s in self.steps]


def make_schedule(scheduler: Any, num_inference_steps: int, strength: float = 1.0,
                  device: str | torch.device | None = None) -> Schedule:
    """Steps of `scheduler` for a step count and img2img strength, as the pipelines pick them.

    Mirrors `retrieve_timesteps` + `StableDiffusionXLImg2ImgPipeline.get_timesteps`: with strength < 1
    the first `num_inference_steps − int(num_inference_steps · strength)` timesteps are skipped.
    """
    if scheduler.config.prediction_type != "epsilon":
        raise BeatcanvasError(
            f"scheduler prediction_type '{scheduler.config.prediction_type}' is not supported: "
            "SDXL-Turbo and SDXL-Lightning predict epsilon; check the scheduler config"
        )
    scheduler.set_timesteps(num_inference_steps, device=device)
    init_timestep = min(int(num_inference_steps * strength), num_inference_steps)
    t_start = max(num_inference_steps - init_timestep, 0)
    ancestral = type(scheduler).__name__ == "EulerAncestralDiscreteScheduler"
    sigmas = [float(s) for s in scheduler.sigmas[t_start:].to(torch.float32)]  # once, at set-up
    steps = []
    for i, t in enumerate(scheduler.timesteps[t_start:]):
        s, s_next = sigmas[i], sigmas[i + 1]
        up = (s_next**2 * (s**2 - s_next**2) / s**2) ** 0.5 if ancestral else 0.0
        down = (s_next**2 - up**2) ** 0.5 if ancestral else s_next
        steps.append(Step(t=t.clone().to(device), sigma=s, sigma_next=s_next, scale_in=(s**2 + 1) ** 0.5,
                          c_eps=down - s, c_noise=up))
    return Schedule(steps=tuple(steps), init_sigma=float(scheduler.init_noise_sigma), ancestral=ancestral)


def feedback_steps(steps: int, feedback: float) -> int:
    """Scheduler steps for a feedback frame so that exactly `steps` of them run (strength 1 − f)."""
    return max(steps, int(round(steps / (1.0 - feedback))))


def euler_update(x: torch.Tensor, eps: torch.Tensor, c_eps: float | torch.Tensor, noise: torch.Tensor | None = None,
                 c_noise: float | torch.Tensor = 0.0) -> torch.Tensor:
    """One (ancestral) Euler update in float32, returned in the model's dtype. `c_eps`/`c_noise` are
    floats, or (B, 1, 1, 1) tensors when the batch holds frames at different steps (stream batch)."""
    sample = x.to(torch.float32) + eps * c_eps
    if noise is not None:
        sample = sample + noise * c_noise
    return sample.to(eps.dtype)


def denoise(eps_fn: EpsFn, x: torch.Tensor, schedule: Schedule, step_noise: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Run every step of `schedule` from `x` (already at the first step's noise level) down to σ = 0.
    `step_noise[i]` is the ancestral noise of step i (drawn in the pipelines' order; unused when σ_up = 0)."""
    for i, step in enumerate(schedule.steps):
        eps = eps_fn(x / step.scale_in, step.t)
        noise = step_noise[i] if schedule.ancestral and step_noise is not None and step.c_noise > 0 else None
        x = euler_update(x, eps, step.c_eps, noise, step.c_noise)
    return x
