"""Builds the renderer and the understanding from a preset plus command-line options.

`play`, `live`, `demo` and `export` share it, so one preset means one picture everywhere. The SDXL
and CLAP builders are imported inside the functions: `--renderer procedural` never loads torch
models, and the live app starts even where those modules are broken.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import BeatcanvasError

log = logging.getLogger(__name__)

PROFILES = ("tiny", "random-full", "real")
MIN_SIDE = 256  # smallest size an out-of-memory step-down goes to


@dataclass
class RenderOptions:
    """What the command line may override; None means "the preset's"."""

    renderer: str | None = None  # auto | sdxl | procedural
    profile: str = "real"  # tiny | random-full | real
    backend: str | None = None  # auto | eager | inductor | tensorrt
    models_dir: Path | None = None
    allow_cpu_diffusion: bool = False
    width: int | None = None
    height: int | None = None
    seed: int | None = None
    device: str | None = None  # default: cuda when available
    canvas: tuple[int, int] | None = None  # the composition size; the procedural renderer draws at it


@dataclass
class Stages:
    """What a session or an export needs from the models."""

    renderer: Any
    understanding: Any  # None for the procedural renderer
    kind: str  # "sdxl" | "procedural"
    reason: str  # select_renderer's one line, for the console and the HUD
    model_ids: dict[str, str] = field(default_factory=dict)


def _device(opts: RenderOptions) -> str:
    if opts.device:
        return opts.device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:  # noqa: BLE001
        return "cpu"


def choose(preset: Any, opts: RenderOptions) -> tuple[str, str]:
    """(kind, one-line reason). The tiny and random-full profiles build their own weights, so they
    count as present; tiny is cheap enough to diffuse on a CPU without asking."""
    from engine.render import select

    if opts.profile not in PROFILES:
        raise BeatcanvasError(f"unknown profile {opts.profile!r}: use one of {', '.join(PROFILES)}")
    choice = opts.renderer or getattr(preset.model, "renderer", "auto")
    model = preset.model.model
    if opts.profile == "real":
        picked = select.choose_renderer(
            choice, allow_cpu_diffusion=opts.allow_cpu_diffusion, model=model, models_dir=opts.models_dir
        )
    else:
        picked = select.select_renderer(
            choice,
            weights_present=True,
            gpu_present=select.gpu_present(),
            allow_cpu_diffusion=opts.allow_cpu_diffusion or opts.profile == "tiny",
            model=model,
        )
        picked = type(picked)(picked.kind, f"{picked.reason} [{opts.profile} profile]")
    return picked.kind, picked.reason


def _size(preset: Any, opts: RenderOptions) -> tuple[int, int]:
    return opts.width or preset.model.width, opts.height or preset.model.height


def _seed(preset: Any, opts: RenderOptions) -> int:
    return opts.seed if opts.seed is not None else int(getattr(preset.motion, "seed", 0) or 0)


def build_procedural(preset: Any, opts: RenderOptions, width: int | None = None, height: int | None = None) -> Any:
    from engine.render.procedural import ProceduralRenderer

    # It has no native resolution: draw at the composition size rather than have it stretched.
    w, h = opts.canvas if opts.canvas and not (opts.width or opts.height) else _size(preset, opts)
    return ProceduralRenderer(width or w, height or h, _seed(preset, opts))


class SDXLBuilder:
    """Builds SDXL components once and renderers from them, so an out-of-memory step-down makes a
    smaller renderer without reloading a single weight."""

    def __init__(self, preset: Any, opts: RenderOptions) -> None:
        import torch

        from engine.models.profiles import build_sdxl

        m = preset.model
        self.preset, self.opts = preset, opts
        self.device = _device(opts)
        self.dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        self.components = build_sdxl(
            opts.profile, model=m.model, device=self.device, dtype=self.dtype, models_dir=opts.models_dir,
            with_vae=m.decoder == "vae", lightning_steps=m.steps,
        )

    def renderer(self, width: int, height: int, steps: int | None = None) -> Any:
        from engine.render.sdxl import SDXLRenderer

        p, m = self.preset, self.preset.model
        return SDXLRenderer(
            self.components, width=width, height=height, steps=steps or m.steps,
            guidance_scale=m.guidance_scale, decoder=m.decoder, feedback=p.motion.feedback,
            seed=_seed(p, self.opts), seed_policy=p.motion.seed_policy, reuse_noise=p.motion.reuse_noise,
            device=self.device, dtype=self.dtype, backend=self.opts.backend or m.backend,
        )

    def step_down(self, renderer: Any, preset: Any) -> Any:
        """A renderer at ~3/4 of the size (multiples of 64, not below 256), or None at the floor."""
        w, h = renderer.width, renderer.height
        nw, nh = (max(MIN_SIDE, int(s * 0.75) // 64 * 64) for s in (w, h))
        if (nw, nh) == (w, h):
            return None
        log.warning("stepping SDXL down from %dx%d to %dx%d", w, h, nw, nh)
        return self.renderer(nw, nh, getattr(renderer, "steps", None))


def build_understanding(preset: Any, opts: RenderOptions, text: Any = None) -> Any:
    from engine.understanding.pipeline import build_understanding as build, settings_kwargs

    return build(
        profile=opts.profile, device=_device(opts), models_dir=opts.models_dir,
        sdxl_model=preset.model.model, text=text, **settings_kwargs(preset.conditioning),
    )


def build_stages(preset: Any, opts: RenderOptions, kind: str | None = None, reason: str = "") -> tuple[Stages, Any]:
    """(Stages, step_down or None). `kind` skips the choice when the caller already made it."""
    if kind is None:
        kind, reason = choose(preset, opts)
    if kind == "procedural":
        return Stages(build_procedural(preset, opts), None, "procedural", reason), None
    builder = SDXLBuilder(preset, opts)
    w, h = _size(preset, opts)
    renderer = builder.renderer(w, h)
    understanding = build_understanding(preset, opts)
    ids = {"image": preset.model.model, "profile": opts.profile}
    return Stages(renderer, understanding, "sdxl", reason, ids), builder.step_down


def rebuild_for(opts: RenderOptions):
    """The session's `rebuild`: a preset whose model settings changed gets fresh stages."""

    def rebuild(preset: Any) -> tuple[Any, Any]:
        stages, _ = build_stages(preset, opts)
        return stages.renderer, stages.understanding

    return rebuild


def build_export_stages(preset: Any, kind: str, profile: str, width: int, height: int, seed: int) -> tuple[Any, Any, dict[str, str], str]:
    """What live/commands/export.py asks for: (renderer, understanding, model ids, renderer name)."""
    opts = RenderOptions(profile=profile, width=width, height=height, seed=seed, allow_cpu_diffusion=True)
    stages, _ = build_stages(preset, opts, kind=kind)
    return stages.renderer, stages.understanding, stages.model_ids, getattr(stages.renderer, "name", kind)
