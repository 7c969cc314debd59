"""From settings to stages, one seam: a preset plus the command line → a frozen, typed `ShowSpec`.

`resolve` is the only reader of a `Preset` (the transitions stage reads its own `[transitions]`
section): every stage gets its own part of the spec as plain data, so the engine never sees a preset,
and play, live, demo, export and bench turn one preset into one picture. Which section feeds which
stage:

    [model]        → render (kind, model, size, steps, back-end, guidance, decoder, step-down rule, the
                     GPU path's batches and render cap)
    [motion]       → render (feedback, seed, seed policy, noise reuse), compositor (crossfade)
    [procedural]   → render (the shader look), compositor (flash limit)
    [conditioning] → understanding (head, style, negative, smoothing, scene rules, zero-shot knobs)
    [reactivity]   → compositor
    [stems]        → compositor (zoom, flash, warp, colour), render (the shader look: warp, mood),
                     understanding (subject)
    [transitions]  → transitions (live/presets/transitions.py, stepped by the session)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from engine.audio.stems import StemRouting
from engine.errors import BeatcanvasError
from engine.models.profiles import PROFILES, Profile, as_profile
from engine.render.shader.director import Look
from engine.render.stage import RendererKind, RenderSpec
from engine.understanding.settings import UnderstandingSettings
from live.screen.compositor import Reactivity
from live.presets.schema import Preset, StemSettings, TransitionSettings, preset_hash

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShowOptions:
    """What the command line may override; None means "the preset's"."""

    renderer: str | None = None  # auto | sdxl | procedural
    profile: str = "real"  # tiny | random-full | real
    backend: str | None = None  # auto | eager | inductor | tensorrt
    models_dir: Path | None = None
    allow_cpu_diffusion: bool = False
    size: tuple[int, int] | None = None  # the render size, when given explicitly (export --size)
    seed: int | None = None
    device: str | None = None  # default: cuda when available
    canvas: tuple[int, int] | None = None  # the composition size; the procedural renderer draws at it
    # A window (play/live/demo/studio say so): on software GL the shader draws smaller and adapts, and the
    # render stage hands over frames smaller than its width x height (the compositor scales them). Export
    # and one-off renders (thumbnails, tests, benches) keep the default: frames of exactly the size asked.
    live: bool = False
    directed: bool = False  # a schedule/lyrics mix the style in per frame (live/schedule): the head hears music only


@dataclass(frozen=True)
class CompositorSpec:
    reactivity: Reactivity
    crossfade_ms: float
    max_flashes_per_s: float = 3.0


def compositor_spec(preset: Preset) -> CompositorSpec:
    """The compositor's part of a preset (also what a schedule changes frame by frame)."""
    r = preset.reactivity
    reactivity = Reactivity(beat_zoom=r.beat_zoom, band_brightness=r.band_brightness, band_hue=r.band_hue, warp=r.warp,
                            stems=stem_routing(preset.stems))
    return CompositorSpec(reactivity, preset.motion.crossfade_ms, preset.procedural.max_flashes_per_s)


def stem_routing(s: StemSettings) -> StemRouting:
    """A preset's `[stems]` as the engine's plain routing."""
    return StemRouting(zoom=s.zoom, zoom_amount=s.zoom_amount, flash=s.flash, flash_amount=s.flash_amount,
                       warp=s.warp, warp_amount=s.warp_amount, colour=s.colour, colour_amount=s.colour_amount,
                       mood=s.mood, mood_amount=s.mood_amount, subject=s.subject, subject_amount=s.subject_amount)


@dataclass(frozen=True)
class ShowSpec:
    """Everything the stages need, resolved. Compare two with `changed` to route an edit."""

    name: str
    preset_hash: str
    render: RenderSpec
    understanding: UnderstandingSettings
    compositor: CompositorSpec
    transitions: TransitionSettings
    reason: str  # why this renderer (one line, for the console and the HUD)
    profile: Profile = "real"
    device: str = "cpu"
    models_dir: Path | None = None

    def changed(self, other: ShowSpec) -> tuple[str, ...]:
        """The parts that differ: "render", "understanding", "compositor", "transitions"."""
        pairs = (("render", self.render != other.render), ("understanding", self.understanding != other.understanding),
                 ("compositor", self.compositor != other.compositor), ("transitions", self.transitions != other.transitions))
        return tuple(name for name, differs in pairs if differs)


def device_for(opts: ShowOptions, kind: RendererKind = "sdxl") -> str:
    """Where the models run: --device, else CUDA when torch sees it. A weights-free show runs no model
    (the shader renderer finds its own GPU through OpenGL), so it never imports torch to ask."""
    if opts.device:
        return opts.device
    if kind != "sdxl":
        return "cpu"
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:  # noqa: BLE001 - a broken torch install means "no GPU"
        return "cpu"


SOFTWARE_GL_RENDER_FPS = 20.0


def _software_gl() -> bool:
    from engine.render import select

    return select.gl_software()


def profile_of(opts: ShowOptions) -> Profile:
    try:
        return as_profile(opts.profile)
    except BeatcanvasError:
        raise BeatcanvasError(f"--profile {opts.profile!r} is unknown — use one of {', '.join(PROFILES)}") from None


def choose(preset: Preset, opts: ShowOptions) -> tuple[RendererKind, str]:
    """(kind, one-line reason). The tiny and random-full profiles build their own weights, so they
    count as present; tiny is cheap enough to diffuse on a CPU without asking."""
    from engine.render import select

    profile_of(opts)  # a bad --profile is the first thing to hear about
    choice = opts.renderer or preset.model.renderer
    model = preset.model.model
    if opts.profile == "real":
        picked = select.choose_renderer(choice, allow_cpu_diffusion=opts.allow_cpu_diffusion, model=model,
                                        models_dir=opts.models_dir, live=opts.live)
        return picked.kind, picked.reason
    picked = select.select_renderer(
        choice, weights_present=True, gpu_present=select.gpu_present(),
        allow_cpu_diffusion=opts.allow_cpu_diffusion or opts.profile == "tiny", model=model,
        gl_unavailable=select.gl_unavailable() if choice != "numpy" else None,
        gl_software=choice != "numpy" and select.gl_software(), live=opts.live,
    )
    return picked.kind, f"{picked.reason} [{opts.profile} profile]"


def resolve(preset: Preset, opts: ShowOptions, kind: tuple[RendererKind, str] | None = None) -> ShowSpec:
    """The show `preset` makes under `opts`. `kind` skips the renderer choice when the caller made it."""
    kind_, reason = kind or choose(preset, opts)
    m, motion, c, p = preset.model, preset.motion, preset.conditioning, preset.procedural
    if kind_ in ("procedural", "shader"):  # no native size: draw at the composition size unless asked
        width, height = opts.size or opts.canvas or (m.width, m.height)
    else:
        width, height = opts.size or (m.width, m.height)
    device = device_for(opts, kind_)
    # A shader in a window on software GL draws smaller, at the size that holds the display rate, and
    # less often: the CPU it rasterises on is the one the display loop needs (the compositor animates between).
    adaptive = opts.live and kind_ == "shader" and _software_gl()
    gpu, live = device.startswith("cuda"), opts.live
    render = RenderSpec(
        kind=kind_, model=m.model, steps=m.steps, width=width, height=height, backend=opts.backend or m.backend,
        guidance_scale=m.guidance_scale, decoder=m.decoder, allow_downscale=m.allow_downscale,
        feedback=motion.feedback, seed=motion.seed if opts.seed is None else opts.seed,
        seed_policy=motion.seed_policy, reuse_noise=motion.reuse_noise,
        look=Look(motifs=dict(p.motifs), palette=p.palette, line_width=p.line_width, symmetry=p.symmetry, trails=p.trails,
                  stems=stem_routing(preset.stems)),
        # Export renders each frame on its own (exact, deterministic); live uses the GPU path's batches.
        transition_frames=(m.transition_frames or (4 if gpu else 1)) if live else 1,
        stream_batch=m.stream_batch and gpu and live,
        similarity_threshold=m.similarity if live else 0.0,
        max_render_fps=(m.max_render_fps or (60.0 if gpu and kind_ == "sdxl" else 30.0)) if not adaptive
        else min(m.max_render_fps or SOFTWARE_GL_RENDER_FPS, SOFTWARE_GL_RENDER_FPS),
        pipelined=gpu and live,
        adaptive=adaptive,
    )
    understanding = UnderstandingSettings(
        # A directed show mixes the style text itself, per frame (engine/directing/director.py).
        head=c.head, head_path=c.head_path, style="" if opts.directed else c.style, negative=c.negative,
        audio_weight=1.0 if opts.directed else c.audio_weight,
        smoothing_s=c.smoothing_s, on_scene_change=c.on_scene_change, scene_threshold=c.scene_threshold,
        top_k=c.top_k, temperature=c.temperature, descriptors=tuple(sorted(c.descriptors.items())),
        stems=stem_routing(preset.stems),
    )
    return ShowSpec(
        name=preset.name, preset_hash=preset_hash(preset), render=render, understanding=understanding,
        compositor=compositor_spec(preset), transitions=preset.transitions,
        reason=reason, profile=profile_of(opts), device=device, models_dir=opts.models_dir,
    )
