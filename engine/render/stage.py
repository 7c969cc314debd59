"""The render stage: a renderer together with the settings it was built from.

`RenderSpec` is what a preset's `[model]` and `[motion]` sections say about rendering, as plain data
(the engine never reads a preset). `RenderStage` wraps either renderer behind one contract: `render`,
`reset`, and `configure(spec)`, which applies the knobs a running renderer can take (feedback, seed,
seed policy, noise reuse, the negative conditioning) and names the ones only a rebuild can change
(another model, size, step count, back-end, decoder, guidance, or renderer kind).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal

from engine.render.procedural import ProceduralRenderer
from engine.render.select import RendererKind
from engine.render.shader.director import Look
from engine.render.shader.resolution import ResolutionGovernor
from engine.types import Conditioning, Features, Frame, Reconfigured

if TYPE_CHECKING:  # importing diffusers costs seconds; a procedural show never needs it
    import torch

    from engine.render.sdxl import SDXLRenderer
    from engine.render.shader.renderer import ShaderRenderer

log = logging.getLogger(__name__)

Negative = tuple["torch.Tensor", "torch.Tensor"]  # torch is imported only by the SDXL stage


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
    # The shader renderer in a window on software OpenGL: draw smaller, upscale, and adapt the internal
    # resolution to hold `display_fps` (engine/render/shader/resolution.py). Export never adapts.
    adaptive: bool = False
    display_fps: float = 30.0

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

    def observe(self, render_s: float, display_fps: float) -> None:
        """After each live render: how long it took and the display rate now (for stages that adapt)."""

    def describe(self) -> str:
        """The renderer's name for the HUD, with what it is doing when that is worth a word."""
        return self.renderer.name

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
        self.governor: ResolutionGovernor | None = None
        self._govern(spec)

    def _govern(self, spec: RenderSpec) -> None:
        if not spec.adaptive:
            self.governor = None
            self.shader.resize(self.shader.width, self.shader.height)
            return
        # Half of each render interval: the rasteriser shares the CPU with the display loop.
        self.governor = ResolutionGovernor(0.5 / max(1.0, spec.max_render_fps), spec.display_fps)
        self.shader.resize(*self.governor.size(self.shader.width, self.shader.height))

    def observe(self, render_s: float, display_fps: float) -> None:
        if self.governor is not None and self.governor.observe(render_s, display_fps):
            self.shader.resize(*self.governor.size(self.shader.width, self.shader.height))
            log.info("shader renderer now draws %dx%d for %dx%d (render %.0f ms, display %.0f fps)",
                     *self.shader.render_size, self.shader.width, self.shader.height, render_s * 1000, display_fps)

    def describe(self) -> str:
        if self.governor is None:
            return self.shader.name
        w, h = self.shader.render_size
        return f"{self.shader.name} {w}x{h} upscaled" + ("" if self.governor.measured else " (measuring)")

    def _apply(self, spec: RenderSpec, negative: Negative | None) -> tuple[str, ...]:
        applied: tuple[str, ...] = ()
        if spec.look != self.spec.look:
            self.shader.director.set_look(spec.look)
            applied += ("look",)
        if (spec.adaptive, spec.max_render_fps, spec.display_fps) != (
                self.spec.adaptive, self.spec.max_render_fps, self.spec.display_fps):
            self._govern(spec)
            applied += ("adaptive",)
        return applied


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
