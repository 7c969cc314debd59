"""The builder: stages from a `ShowSpec` (live/session/show.py), the same way for play, live, demo, export and
bench.

`Builder` keeps the SDXL components it loaded, so an out-of-memory step-down (`smaller_size`), a retry
after a render fault or a preset that changes only the size makes a new renderer without reloading a
single weight. `procedural_stage` is the fallback a failing show hands over to.
The SDXL and CLAP modules are imported inside the functions: a procedural show never loads diffusers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from engine.render.stage import Negative, ProceduralStage, RenderStage, SDXLStage, ShaderStage
from live.session.show import ShowSpec

if TYPE_CHECKING:  # torch: only a show that runs CLAP imports it
    from engine.understanding.pipeline import Understanding

log = logging.getLogger(__name__)

MIN_SIDE = 256  # smallest size an out-of-memory step-down goes to


@dataclass
class Stages:
    """What a session or an export needs from the models."""

    render: RenderStage
    understanding: Understanding | None  # None for the procedural renderer
    reason: str  # why this renderer, one line, for the console and the HUD
    model_ids: dict[str, str] = field(default_factory=dict)


class Builder:
    """Makes the stages of a show. Not thread-safe: one builder per thread that builds."""

    def __init__(self) -> None:
        self._components: tuple[tuple[Any, ...], Any] | None = None  # (key, SDXLComponents): the last loaded

    def build(self, spec: ShowSpec) -> Stages:
        understanding = self.understanding(spec) if spec.render.kind == "sdxl" else None
        negative = understanding.negative_conditioning() if understanding and spec.render.uses_negative else None
        render = self.render_stage(spec, negative=negative)
        ids = {"image": spec.render.model, "profile": spec.profile} if spec.render.kind == "sdxl" else {}
        return Stages(render, understanding, spec.reason, ids)

    def render_stage(self, spec: ShowSpec, size: tuple[int, int] | None = None,
                     negative: Negative | None = None) -> RenderStage:
        """The renderer `spec` asks for, at `size` when given (a step-down); the stage keeps the spec.
        `negative` is the negative prompt's conditioning, for guidance > 1."""
        r = spec.render
        width, height = size or (r.width, r.height)
        if r.kind == "procedural":
            from engine.render.procedural import ProceduralRenderer

            return ProceduralStage(ProceduralRenderer(width, height, r.seed), r)
        if r.kind == "shader":
            from engine.render.shader.renderer import ShaderRenderer

            return ShaderStage(ShaderRenderer(width, height, r.seed, look=r.look), r)
        return SDXLStage(self._sdxl(spec, width, height), r, negative)

    def understanding(self, spec: ShowSpec) -> Understanding:
        import torch

        from engine.understanding.pipeline import build_understanding

        dtype = torch.float16 if spec.device.startswith("cuda") else None  # as the bench measures it (H100: 24 ms a hop)
        return build_understanding(spec.profile, spec.understanding, device=spec.device, models_dir=spec.models_dir,
                                   sdxl_model=spec.render.model, dtype=dtype)

    def _sdxl(self, spec: ShowSpec, width: int, height: int) -> Any:
        import torch

        from engine.models.profiles import build_sdxl
        from engine.render.sdxl import SDXLRenderer

        r = spec.render
        dtype = torch.float16 if spec.device.startswith("cuda") else torch.float32
        lightning_steps = r.steps if r.model == "sdxl-lightning" else None  # one checkpoint per step count
        key = (spec.profile, r.model, spec.device, str(dtype), spec.models_dir, r.decoder == "vae", lightning_steps)
        if self._components is None or self._components[0] != key:
            self._components = None  # let the old weights go before the new ones load
            self._components = (key, build_sdxl(spec.profile, model=r.model, device=spec.device, dtype=dtype,
                                                models_dir=spec.models_dir, with_vae=r.decoder == "vae",
                                                lightning_steps=r.steps))
        renderer = SDXLRenderer(
            self._components[1], width=width, height=height, steps=r.steps, guidance_scale=r.guidance_scale,
            decoder=r.decoder, feedback=r.feedback, seed=r.seed, seed_policy=r.seed_policy,
            reuse_noise=r.reuse_noise, device=spec.device, dtype=dtype, backend=r.backend,
            transition_frames=r.transition_frames, stream_batch=r.stream_batch,
            similarity_threshold=r.similarity_threshold, pipelined=r.pipelined,
        )
        if spec.device.startswith("cuda"):  # compile and capture every frame program now, not on stage
            renderer.warm_up()
        return renderer


def procedural_stage(spec: ShowSpec, size: tuple[int, int]) -> RenderStage:
    """The fallback when the configured renderer keeps failing: procedural, same seed, at `size`
    (cheap to build on any thread)."""
    from engine.render.procedural import ProceduralRenderer

    render = replace(spec.render, kind="procedural", width=size[0], height=size[1])
    return ProceduralStage(ProceduralRenderer(size[0], size[1], render.seed), render)


def smaller_size(width: int, height: int) -> tuple[int, int] | None:
    """~3/4 of a size (multiples of 64, not below 256) for an out-of-memory step-down; None at the floor."""
    nw, nh = (max(min(MIN_SIDE, s), int(s * 0.75) // 64 * 64) for s in (width, height))
    return None if (nw, nh) == (width, height) else (nw, nh)


def build_stages(spec: ShowSpec) -> Stages:
    """One-shot build (export, bench, scripts): `Builder().build(spec)`."""
    return Builder().build(spec)


def published_ids(spec: ShowSpec) -> dict[str, str]:
    """repo@revision of every published model a show uses (export's manifest), from the registry."""
    if spec.render.kind != "sdxl" or spec.profile != "real":
        return {}
    from engine.models.registry import MODELS

    names = [spec.render.model, "clap"] + (["taesdxl"] if spec.render.decoder == "taesd" else [])
    names += [d for n in list(names) if n in MODELS for d in MODELS[n].depends_on]
    return {n: f"{MODELS[n].repo_id}@{MODELS[n].revision}" for n in names if n in MODELS}

