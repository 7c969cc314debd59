"""The few-step Euler / ancestral-Euler arithmetic, its constants computed once and kept on the device.

`make_schedule` asks the diffusers scheduler for its timesteps and sigmas (the same call the
pipelines make) once, and folds them into `Step`s. A frame reads its per-step constants from a small
device tensor (`StepTable`: one row per step, timestep, √(σ²+1), σ_down − σ, σ_up, and the start's
σ), never from Python floats baked into the code: one captured CUDA graph serves every schedule with
the same number of UNet calls (text-to-image, and feedback at any strength), and switching schedule
is one device-to-device copy into the table. No scheduler state, no host synchronisation.

The update is the scheduler's own `step` written out (diffusers' `EulerDiscreteScheduler` and
`EulerAncestralDiscreteScheduler`, prediction type epsilon):

    x_in   = x / sqrt(σ² + 1)                               (scale_model_input)
    x_next = x + ε·(σ_down − σ) + noise·σ_up                (σ_up = 0, σ_down = σ_next for plain Euler)

Feedback (img2img) on the model's own grid: SDXL-Turbo is distilled on the 4-point trailing grid
999, 749, 499, 249 and an SDXL-Lightning checkpoint on its own N-step trailing grid. A feedback frame
therefore runs the last k points of that N-point grid (img2img at strength k/N, exactly diffusers'
`StableDiffusionXLImg2ImgPipeline(num_inference_steps=N, strength=k/N)`), with
k = round(N·(1 − feedback)) clamped to 1…steps: never a timestep the model was not trained on, and
never more UNet calls than a text-to-image frame (fewer when the feedback is strong).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from engine.errors import BeatcanvasError

MAX_FEEDBACK = 0.95  # above this the frame barely denoises and the picture freezes into mush
TURBO_GRID = 4  # SDXL-Turbo's student timesteps (ADD): 999, 749, 499, 249

# (latents scaled by 1/scale_in, timestep) -> epsilon; the renderer binds the conditioning and guidance.
EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# Columns of a StepTable row.
T, SCALE_IN, C_EPS, C_NOISE = range(4)


@dataclass(frozen=True)
class Step:
    t: float  # the timestep, as the scheduler gives it
    sigma: float
    sigma_next: float
    scale_in: float  # sqrt(σ² + 1): the model sees x / scale_in
    c_eps: float  # σ_down − σ
    c_noise: float  # σ_up (0 unless ancestral with σ_next > 0)

    def row(self) -> list[float]:
        return [self.t, self.scale_in, self.c_eps, self.c_noise]


@dataclass(frozen=True)
class Schedule:
    """The steps one frame runs. Text-to-image (`img2img` False) starts from noise scaled by
    `init_sigma` (the scheduler's init_noise_sigma); img2img (feedback) re-noises the previous latent
    to `steps[0].sigma`."""

    steps: tuple[Step, ...]
    init_sigma: float
    ancestral: bool
    img2img: bool = False

    @property
    def start_sigma(self) -> float:
        return self.steps[0].sigma if self.img2img else self.init_sigma

    def rows(self) -> list[list[float]]:
        return [s.row() for s in self.steps]


def native_grid(model: str, steps: int) -> int:
    """N of the trailing grid the model was distilled on: SDXL-Turbo's 4 points (or `steps` when
    more are asked for), one SDXL-Lightning checkpoint per step count (its own `steps` points)."""
    return max(steps, TURBO_GRID) if model == "sdxl-turbo" else steps


def feedback_steps(steps: int, feedback: float, grid: int | None = None) -> int:
    """UNet calls of a feedback frame: the last k of the model's `grid`-point grid (strength k/grid),
    k = round(grid·(1 − feedback)) within 1…steps."""
    n = grid if grid is not None else steps
    return min(steps, max(1, round(n * (1.0 - min(feedback, MAX_FEEDBACK)))))


def make_schedule(scheduler: Any, num_inference_steps: int, last: int | None = None,
                  device: str | torch.device | None = None) -> Schedule:
    """Steps of `scheduler` for `num_inference_steps`, the pipelines' `set_timesteps` call; `last = k`
    keeps only the last k (img2img at strength k/N, as `StableDiffusionXLImg2ImgPipeline.get_timesteps`
    picks them). Call it on the renderer's own copy of the scheduler: `set_timesteps` mutates it."""
    if scheduler.config.prediction_type != "epsilon":
        raise BeatcanvasError(
            f"scheduler prediction_type '{scheduler.config.prediction_type}' is not supported: "
            "SDXL-Turbo and SDXL-Lightning (2-, 4- and 8-step checkpoints) predict epsilon; check the scheduler config"
        )
    scheduler.set_timesteps(num_inference_steps, device="cpu")
    k = num_inference_steps if last is None else max(1, min(last, num_inference_steps))
    t_start = num_inference_steps - k
    ancestral = type(scheduler).__name__ == "EulerAncestralDiscreteScheduler"
    sigmas = [float(s) for s in scheduler.sigmas[t_start:].to(torch.float32)]  # once, at set-up
    steps = []
    for i, t in enumerate(scheduler.timesteps[t_start:]):
        s, s_next = sigmas[i], sigmas[i + 1]
        up = (s_next**2 * (s**2 - s_next**2) / s**2) ** 0.5 if ancestral else 0.0
        down = (s_next**2 - up**2) ** 0.5 if ancestral else s_next
        steps.append(Step(t=float(t), sigma=s, sigma_next=s_next, scale_in=(s**2 + 1) ** 0.5, c_eps=down - s, c_noise=up))
    return Schedule(steps=tuple(steps), init_sigma=float(scheduler.init_noise_sigma), ancestral=ancestral,
                    img2img=last is not None)


class StepTable:
    """The device constants of one k-step frame: `rows` (k, 4) float32 (timestep, √(σ²+1), c_eps,
    c_noise), `use_prev` (a bool: img2img starts from the previous latent) and `start_sigma`. A frame
    program reads them; `load` switches schedule with device-to-device copies (no capture, no sync)."""

    def __init__(self, k: int, device: torch.device) -> None:
        self.k, self.device = k, device
        self.rows = torch.zeros(k, 4, device=device, dtype=torch.float32)
        self.use_prev = torch.zeros((), device=device, dtype=torch.bool)
        self.start_sigma = torch.zeros((), device=device, dtype=torch.float32)
        self._sources: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self.loaded: Schedule | None = None

    def load(self, schedule: Schedule) -> None:
        if len(schedule.steps) != self.k:
            raise ValueError(f"a {len(schedule.steps)}-step schedule in a {self.k}-step table")
        if schedule is self.loaded:
            return
        src = self._sources.get(id(schedule))
        if src is None:  # uploaded once per schedule (at set-up or warm-up), copied on device after that
            src = (torch.tensor(schedule.rows(), dtype=torch.float32).to(self.device),
                   torch.tensor(schedule.img2img).to(self.device), torch.tensor(schedule.start_sigma, dtype=torch.float32).to(self.device))
            self._sources[id(schedule)] = src
        self.rows.copy_(src[0])
        self.use_prev.copy_(src[1])
        self.start_sigma.copy_(src[2])
        self.loaded = schedule


def start_latents(table: StepTable, prev: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Text-to-image: noise · init_sigma; img2img: prev + noise · σ_start (scheduler.add_noise). A
    `where`, not a multiply: a non-finite stale `prev` never leaks into a text-to-image frame."""
    base = torch.where(table.use_prev, prev, torch.zeros((), device=prev.device, dtype=prev.dtype))
    return base + noise * table.start_sigma.to(noise.dtype)


def keep_finite(x: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """`x`, or `last` when `x` holds a NaN/Inf (a non-finite conditioning): on the device, no host
    sync, so a bad input shows the last frame again and never reaches the feedback latent."""
    return torch.where(torch.isfinite(x).all(), x, last)


def euler_update(x: torch.Tensor, eps: torch.Tensor, c_eps: float | torch.Tensor, noise: torch.Tensor | None = None,
                 c_noise: float | torch.Tensor = 0.0) -> torch.Tensor:
    """One (ancestral) Euler update in float32, returned in the model's dtype. `c_eps`/`c_noise` are
    0-d tensors, or (B, 1, 1, 1) tensors when the batch holds frames at different steps (stream batch)."""
    sample = x.to(torch.float32) + eps * c_eps
    if noise is not None:
        sample = sample + noise * c_noise
    return sample.to(eps.dtype)


def denoise(eps_fn: EpsFn, x: torch.Tensor, table: StepTable, step_noise: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Run the k steps of `table` from `x` (already at the first step's noise level) down to σ = 0.
    `step_noise[i]` is the ancestral noise of step i (drawn in the pipelines' order); None for plain Euler."""
    for i in range(table.k):
        row = table.rows[i]
        eps = eps_fn(x / row[SCALE_IN].to(x.dtype), row[T])
        noise = step_noise[i] if step_noise else None
        x = euler_update(x, eps, row[C_EPS], noise, row[C_NOISE])
    return x
