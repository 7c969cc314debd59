"""The render stage: a renderer together with the settings it was built from.

`RenderSpec` is what a preset's `[model]` and `[motion]` sections say about rendering, as plain data
(the engine never reads a preset). `RenderStage` wraps either renderer behind one contract: `render`,
`reset`, and `configure(spec)`, which applies the knobs a running renderer can take (feedback, seed,
seed policy, noise reuse, the negative conditioning) and names the ones only a rebuild can change
(another model, size, step count, back-end, decoder, guidance, or renderer kind).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal

import torch

from engine.render.procedural import ProceduralRenderer
from engine.render.select import RendererKind
from engine.types import Conditioning, Features, Frame, Reconfigured

from engine.render.shader.director import Look

if TYPE_CHECKING:  # importing diffusers costs seconds; a procedural show never needs it
    from engine.render.sdxl import SDXLRenderer
    from engine.render.shader.renderer import ShaderRenderer

Negative = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class RenderSpec:
    kind: RendererKind = "procedural"
    model: str = "sdxl-turbo"
    steps: int = 2
    width: int = 512
    height: int = 512
    backend: str = "auto"
    guidance_scale: float = 0.0
    decoder: Literal["taesd", "vae"] = "taesd"
    allow_downscale: bool = True
    feedback: float = 0.3
    seed: int = 0
    seed_policy: Literal["fixed", "drift"] = "fixed"
    reuse_noise: bool = True
    look: Look = field(default_factory=Look)  # the shader renderer's [procedural] look
    # The SDXL GPU path (docs/gpu.md): in-between frames per conditioning change (1-step models),
    # K frames in flight (K-step models), skipping renders of an unchanged conditioning, and the
    # render worker's frame cap. Export renders every frame one at a time whatever these say.
    transition_frames: int = 1
    stream_batch: bool = False
    similarity_threshold: float = 0.0
    max_render_fps: float = 30.0
    pipelined: bool = False  # hand out the newest finished frame while the next renders (live, GPU)

    def changed(self, other: RenderSpec) -> tuple[str, ...]:
        mine, theirs = asdict(self), asdict(other)
        return tuple(k for k in mine if mine[k] != theirs[k])

    @property
    def uses_negative(self) -> bool:
        """Classifier-free guidance is on, so the negative prompt is rendered against."""
        return self.kind == "sdxl" and self.guidance_scale > 1.0


class RenderStage:
    """One renderer and the spec it runs. Not thread-safe: the render worker owns it."""

    renderer: SDXLRenderer | ShaderRenderer | ProceduralRenderer
    rebuild_keys: tuple[str, ...] = ("kind",)

    def __init__(self, spec: RenderSpec) -> None:
        self.spec = spec

    @property
    def name(self) -> str:
        return self.renderer.name

    @property
    def width(self) -> int:
        return self.renderer.width

    @property
    def height(self) -> int:
        return self.renderer.height

    @property
    def steps(self) -> int | None:
        """Denoising steps per frame, where the renderer has such a thing."""
        return None

    def render(self, conditioning: Conditioning | None, features: Features, t: float) -> Frame:
        return self.renderer.render(conditioning, features, t)

    def reset(self, seed: int) -> None:
        self.renderer.reset(seed)

    def configure(self, spec: RenderSpec, negative: Negative | None = None) -> Reconfigured:
        """Apply `spec` (and, for guidance, the negative conditioning) in place where the renderer
        allows; the rest is named in `rebuild` and left as it was. The size compared is the one asked
        for, so a renderer stepped down after an out-of-memory error is not rebuilt by an unrelated
        edit."""
        changed = spec.changed(self.spec)
        rebuild = tuple(k for k in changed if k in self.rebuild_keys)
        if rebuild:
            return Reconfigured(rebuild=rebuild)
        applied = changed + self._apply(spec, negative)
        if "seed" in changed:
            self.renderer.reset(spec.seed)
        self.spec = spec
        return Reconfigured(applied=tuple(dict.fromkeys(applied)))

    def _apply(self, spec: RenderSpec, negative: Negative | None) -> tuple[str, ...]:
        return ()


class ProceduralStage(RenderStage):
    """The weights-free renderer: it has no model, so only its kind, size and seed matter to it."""

    rebuild_keys = ("kind", "width", "height")

    def __init__(self, renderer: ProceduralRenderer, spec: RenderSpec) -> None:
        super().__init__(spec)
        self.renderer = renderer


class ShaderStage(RenderStage):
    """The shader renderer: its look changes between frames; its kind, size and GL context do not."""

    rebuild_keys = ("kind", "width", "height")

    def __init__(self, renderer: ShaderRenderer, spec: RenderSpec) -> None:
        super().__init__(spec)
        self.renderer = self.shader = renderer

    def _apply(self, spec: RenderSpec, negative: Negative | None) -> tuple[str, ...]:
        if spec.look != self.spec.look:
            self.shader.director.set_look(spec.look)
            return ("look",)
        return ()


class SDXLStage(RenderStage):
    """Few-step SDXL: feedback, seed policy, noise reuse and the negative conditioning change between
    frames; anything that changes weights or static shapes needs a new renderer. A non-finite
    conditioning is caught on the device inside the frame (the last frame and feedback latent are
    kept, `engine.render.denoise.keep_finite`): no per-frame host sync here."""

    rebuild_keys = ("kind", "model", "steps", "width", "height", "backend", "guidance_scale", "decoder",
                    "transition_frames", "stream_batch", "pipelined")

    def __init__(self, renderer: SDXLRenderer, spec: RenderSpec, negative: Negative | None = None) -> None:
        super().__init__(spec)
        self.renderer = self.sdxl = renderer
        if spec.uses_negative and negative is not None:
            renderer.negative = negative

    @property
    def steps(self) -> int | None:
        return self.sdxl.steps

    @property
    def negative(self) -> Negative | None:
        neg = self.sdxl.negative
        return neg if isinstance(neg, tuple) else None

    def _apply(self, spec: RenderSpec, negative: Negative | None) -> tuple[str, ...]:
        r = self.sdxl
        r.feedback, r.seed_policy, r.reuse_noise = spec.feedback, spec.seed_policy, spec.reuse_noise
        r.set_similarity(spec.similarity_threshold)
        if spec.uses_negative and negative is not None and negative is not r.negative:
            r.negative = negative
            return ("negative",)
        return ()
