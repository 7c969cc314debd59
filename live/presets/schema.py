"""The preset schema: one look (model, style, motion, reactivity, stems, transitions) as a frozen object.

A preset is data only. It is read with `tomllib` and validated here; nothing in it is executed or
imported. Every field has a default, so a preset file only names what it changes, and `Preset()`
is a valid, plain look. Validation errors become one-line `PresetError`s that name the file, the
line and the key, and suggest the nearest valid key for a typo.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from engine.directing.quantize import QUANTIZE_PATTERN
from live.presets.messages import PresetError, find_key_line, validation_error

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
MAX_PRESET_BYTES = 256 * 1024  # the largest built-in is ~2 KB; a big file is the wrong file

# Few-step SDXL is distilled for very small step counts; more than 8 defeats the point.
Steps = Annotated[int, Field(ge=1, le=8)]
# SDXL's latent is 1/8 of the image and the UNet downsamples 3x more: sizes are multiples of 64.
Side = Annotated[int, Field(ge=256, le=1536, multiple_of=64)]
Sensitivity = Annotated[float, Field(ge=0.0, le=2.0)]

# SDXL-Lightning ships distilled checkpoints for exactly these step counts.
LIGHTNING_STEPS = (2, 4, 8)  # the 1-step checkpoint predicts x0 (another sampler): not supported
# Per-model defaults, applied when the file leaves the field out (see ModelSettings._model_defaults).
MODEL_DEFAULTS: dict[str, dict[str, int]] = {
    "sdxl-turbo": {"steps": 2, "width": 512, "height": 512},
    "sdxl-lightning": {"steps": 4, "width": 1024, "height": 1024},
}


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class ModelSettings(_Group):
    """Which image model renders, how many steps, at what size, on which back-end."""

    renderer: Literal["auto", "sdxl", "procedural", "shader", "numpy"] = Field(
        "auto",
        description="auto: SDXL when its weights are present, else the weights-free look (procedural: "
        "shaders when OpenGL works, else numpy; shader / numpy pin one)",
    )
    model: Literal["sdxl-turbo", "sdxl-lightning"] = Field(
        "sdxl-turbo", description="sdxl-turbo (512², 1-4 steps) or sdxl-lightning (1024², 2/4/8 steps)"
    )
    steps: Steps = Field(2, description="denoising steps per frame (1..8)")
    width: Side = Field(512, description="image width in pixels, a multiple of 64 in 256..1536")
    height: Side = Field(512, description="image height in pixels, a multiple of 64 in 256..1536")
    backend: Literal["auto", "eager", "inductor", "tensorrt"] = Field(
        "auto", description="how the UNet runs: auto picks the fastest available"
    )
    guidance_scale: float = Field(
        0.0, ge=0.0, le=20.0, description="classifier-free guidance; 0 (off) for turbo and lightning"
    )
    decoder: Literal["taesd", "vae"] = Field("taesd", description="taesd (fast, tiny) or the full VAE")
    allow_downscale: bool = Field(
        True, description="let the live renderer lower the resolution to keep the frame rate"
    )
    # The GPU path (docs/gpu.md); export ignores these and renders every frame one at a time.
    transition_frames: int = Field(
        0, ge=0, le=8, description="1-step models: in-between frames of each conditioning change, rendered in one "
        "batched call (0 = auto: 4 on a GPU, 1 on a CPU)",
    )
    stream_batch: bool = Field(
        True, description="multi-step models on a GPU: keep one frame in flight per step (one batched UNet call "
        "per image; a frame or two more latency)",
    )
    similarity: float = Field(
        0.0, ge=0.0, lt=1.0, description="skip a render when the conditioning is at least this similar to the "
        "last rendered one (StreamDiffusion's filter, e.g. 0.98; 0 = off)",
    )
    max_render_fps: float = Field(
        0.0, ge=0.0, le=240.0, description="cap on renders per second (0 = auto: 60 for SDXL on a GPU, else 30)"
    )

    @model_validator(mode="before")
    @classmethod
    def _model_defaults(cls, data: Any) -> Any:
        # Lightning wants 1024² and 4 steps; turbo 512² and 2: fill what the file left out.
        if isinstance(data, dict):
            model = data.get("model", "sdxl-turbo")
            defaults = MODEL_DEFAULTS.get(model, {}) if isinstance(model, str) else {}  # a wrong type is reported below
            data = {**defaults, **data}
        return data

    @field_validator("steps")
    @classmethod
    def _lightning_steps(cls, v: int, info: ValidationInfo) -> int:
        if info.data.get("model") == "sdxl-lightning" and v not in LIGHTNING_STEPS:
            raise ValueError(f"sdxl-lightning runs steps 2, 4 or 8 (its 1-step checkpoint predicts x0 and is not "
                             f"supported: use sdxl-turbo for 1 step), not {v}")
        return v


class ConditioningSettings(_Group):
    """How the music becomes SDXL conditioning: the head, the style text, smoothing, scene cuts."""

    head: Literal["zeroshot", "transformer"] = Field(
        "zeroshot", description="zeroshot (descriptor bank, no training) or a trained transformer head"
    )
    head_path: str | None = Field(
        None, description="safetensors checkpoint for the transformer head; empty = registry default"
    )
    style: str = Field("", description="style text added to every prompt")
    negative: str = Field("", description="negative prompt; only used when guidance_scale > 1")
    audio_weight: float = Field(
        0.6, ge=0.0, le=1.0, description="how much the music (vs the style text) steers the picture"
    )
    lyrics_weight: float = Field(
        0.3, ge=0.0, le=1.0, description="how much the line being sung (--lyrics FILE.lrc) steers the picture"
    )
    smoothing_s: float = Field(
        2.0, ge=0.0, le=30.0, description="time constant of the conditioning smoother, seconds"
    )
    on_scene_change: Literal["glide", "cut"] = Field(
        "glide", description="when the music changes a lot: glide to the new look, or cut to it"
    )
    scene_threshold: float = Field(
        0.35, ge=0.0, le=2.0, description="cosine distance between audio embeddings that counts as a new scene"
    )
    top_k: int = Field(3, ge=1, le=16, description="zero-shot: how many descriptors per category mix")
    temperature: float = Field(
        0.1, gt=0.0, le=10.0, description="zero-shot: softmax temperature over descriptor similarities"
    )
    descriptors: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="descriptor-bank overrides: category (genre, mood, ...) → list of phrases",
    )

    @field_validator("head_path")
    @classmethod
    def _empty_is_default(cls, v: str | None) -> str | None:
        return v or None

    @field_validator("descriptors")
    @classmethod
    def _non_empty_phrases(cls, v: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for category, phrases in v.items():
            if not phrases:
                raise ValueError(f"descriptor category '{category}' is empty; give it at least one phrase")
            if any(not p.strip() for p in phrases):
                raise ValueError(f"descriptor category '{category}' has an empty phrase")
        return v


class MotionSettings(_Group):
    """How frames follow each other: latent feedback, seeds, crossfades."""

    feedback: float = Field(
        0.3, ge=0.0, le=1.0, description="img2img strength of the previous frame (0 = fresh each frame)"
    )
    seed: int = Field(0, ge=0, le=2**32 - 1, description="noise seed")
    seed_policy: Literal["fixed", "drift"] = Field(
        "fixed", description="fixed: one seed (stable look); drift: the seed walks slowly"
    )
    reuse_noise: bool = Field(True, description="reuse the same noise between frames (less flicker)")
    crossfade_ms: float = Field(400.0, ge=0.0, le=10000.0, description="display crossfade between renders")


class ReactivitySettings(_Group):
    """Per-effect sensitivities for the compositor's beat effects; 0 = off, 1 = normal, 2 = double."""

    beat_zoom: Sensitivity = Field(1.0, description="zoom pulse on each beat")
    band_brightness: Sensitivity = Field(1.0, description="brightness follows band energy")
    band_hue: Sensitivity = Field(0.5, description="hue shifts with the treble/bass balance")
    warp: Sensitivity = Field(0.5, description="warp/ripple driven by onsets")


MOTIF_NAMES = ("warp", "ink", "kaleidoscope", "tunnel", "ribbons", "particles")


class ProceduralSettings(_Group):
    """The weights-free look (the shader renderer): which motifs, which colours, how fine."""

    motifs: dict[str, Sensitivity] = Field(
        default_factory=lambda: {m: 1.0 for m in MOTIF_NAMES},
        description="weight per motif (warp, ink, kaleidoscope, tunnel, ribbons, particles); 0 = never, "
        "2 = favoured; motifs left out keep 1",
    )
    palette: Literal["auto", "ocean", "neon", "dusk", "ember", "mono"] = Field(
        "auto", description="auto follows the music's valence and arousal; a name fixes the colours"
    )
    line_width: float = Field(2.0, ge=0.5, le=8.0, description="line width in pixels at 720 lines (scales up)")
    symmetry: int = Field(6, ge=2, le=16, description="kaleidoscope mirror sectors")
    trails: float = Field(1.0, ge=0.0, le=2.0, description="feedback trail length: 0 = none, 2 = long")
    max_flashes_per_s: float = Field(
        3.0, ge=0.5, le=10.0,
        description="full-frame brightness flashes allowed per second (3 = the photosensitivity guideline; "
        "more is allowed with a warning)",
    )

    @field_validator("motifs")
    @classmethod
    def _known_motifs(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = [m for m in v if m not in MOTIF_NAMES]
        if unknown:
            close = difflib.get_close_matches(unknown[0], MOTIF_NAMES, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"use {', '.join(MOTIF_NAMES)}"
            raise ValueError(f"unknown motif '{unknown[0]}'; {hint}")
        return {**{m: 1.0 for m in MOTIF_NAMES}, **v}


StemChoice = Literal["percussive", "bass", "harmonic", "voice", "off"]


class StemSettings(_Group):
    """Which stem of the music (engine/audio/stems.py) moves which part of the picture, and how much.
    Each target names one stem (or off) and an amount (0 = off, 1 = normal, 2 = double); the
    compositor's targets are also scaled by their `[reactivity]` knob."""

    zoom: StemChoice = Field("percussive", description="the stem that kicks the zoom (compositor)")
    zoom_amount: Sensitivity = Field(1.0, description="how hard the zoom stem kicks")
    flash: StemChoice = Field("percussive", description="the stem that brightens the picture (compositor)")
    flash_amount: Sensitivity = Field(0.5, description="how much the flash stem brightens")
    warp: StemChoice = Field("bass", description="the stem that drives the feedback warp and the shader's flow")
    warp_amount: Sensitivity = Field(1.0, description="how much the warp stem turns and smears")
    colour: StemChoice = Field("harmonic", description="the stem whose harmony tints the picture (hue from its chord)")
    colour_amount: Sensitivity = Field(1.0, description="how strongly the colour stem tints")
    mood: StemChoice = Field("harmonic", description="the stem that makes the shader palette more vivid")
    mood_amount: Sensitivity = Field(0.5, description="how much the mood stem moves the palette")
    subject: StemChoice = Field("voice", description="the stem that pulls the prompt towards the music (conditioning)")
    subject_amount: Sensitivity = Field(0.5, description="how much the subject stem raises the audio weight")


class TransitionSettings(_Group):
    """projectM-style preset transitions; the settings of the preset being left govern."""

    duration_s: float = Field(
        60.0, ge=0.0, le=3600.0, description="auto-advance to the next preset after this long; 0 = never"
    )
    soft_cut_s: float = Field(3.0, ge=0.0, le=60.0, description="a soft cut blends over this many seconds")
    hard_cut: bool = Field(False, description="allow beat-gated hard cuts")
    hard_cut_min_s: float = Field(
        20.0, ge=0.0, le=3600.0, description="no hard cut sooner than this after the last switch"
    )
    hard_cut_sensitivity: Sensitivity = Field(
        1.0, description="0 never cuts; higher cuts on weaker beats"
    )
    lock: bool = Field(False, description="stay on this preset: no auto-advance, no hard cuts")
    switch: Literal["immediate", "smooth"] = Field(
        "smooth", description="manual switches: cut at once, or soft-cut over soft_cut_s"
    )
    quantize: str = Field(
        "off", pattern=QUANTIZE_PATTERN,
        description="changes the music or a performer triggers (preset switches, schedule keys, cues) wait for "
        "the next beat, downbeat or bar:N, and their render starts early by the measured render latency; off = at once",
    )
    recall: float = Field(
        0.0, ge=0.0, le=1.0, description="a section that returns brings back the look it had (seed, palette, "
        "conditioning): 1 = the old look, 0 = off (what the music does now)",
    )


class Preset(BaseModel):
    """One look. Immutable; load it with `live.presets.library.load_preset`."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    name: str = Field("custom", pattern=NAME_PATTERN, description="lower-case, digits, - and _")
    description: str = Field("", description="one line shown by `beatcanvas presets list`")
    model: ModelSettings = Field(default_factory=ModelSettings)
    conditioning: ConditioningSettings = Field(default_factory=ConditioningSettings)
    motion: MotionSettings = Field(default_factory=MotionSettings)
    reactivity: ReactivitySettings = Field(default_factory=ReactivitySettings)
    procedural: ProceduralSettings = Field(default_factory=ProceduralSettings)
    stems: StemSettings = Field(default_factory=StemSettings)
    transitions: TransitionSettings = Field(default_factory=TransitionSettings)
    commercial_safe: bool = Field(
        False, description="every model this preset uses allows commercial use (checked)"
    )

    @field_validator("commercial_safe")
    @classmethod
    def _licence(cls, v: bool, info: ValidationInfo) -> bool:
        # SDXL-Turbo's licence restricts commercial use; SDXL-Lightning (openrail++) and the
        # procedural renderer do not. `auto` may pick SDXL, so it counts as the named model.
        model = info.data.get("model")
        weights_free = model is not None and model.renderer in ("procedural", "shader", "numpy")
        if v and model is not None and not weights_free and model.model == "sdxl-turbo":
            raise ValueError(
                "true needs model.model = 'sdxl-lightning' or model.renderer = 'procedural' "
                "(SDXL-Turbo's licence restricts commercial use)"
            )
        return v


GROUPS: dict[str, type[BaseModel]] = {
    "model": ModelSettings,
    "conditioning": ConditioningSettings,
    "motion": MotionSettings,
    "reactivity": ReactivitySettings,
    "procedural": ProceduralSettings,
    "stems": StemSettings,
    "transitions": TransitionSettings,
}


def preset_hash(preset: Preset) -> str:
    """sha256 of the canonical resolved settings (name and description excluded: they don't
    change a single pixel). Export writes it into its manifest."""
    settings = preset.model_dump(mode="json", exclude={"name", "description"})
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- parsing -------------------------------------------------------------------------------


def parse_preset(text: str, source: str = "<string>", name: str | None = None) -> Preset:
    """Parse and validate preset TOML. `source` names the file in errors; `name` (the file stem)
    becomes the preset's name when the file has none."""
    data = load_toml(text, source)
    if name is not None:
        if "name" in data and data["name"] != name:
            line = find_key_line(text, ("name",))
            raise PresetError(
                f"{source}, line {line}: name = {data['name']!r} does not match the file name "
                f"'{name}.toml'; make them the same (or remove the name line)",
                file=source,
                line=line,
                key="name",
            )
        data.setdefault("name", name)
    try:
        return Preset.model_validate(data)
    except ValidationError as e:
        raise validation_error(e, text, source, Preset) from None
    except (TypeError, ValueError, RecursionError) as e:  # a validator tripped on a shape nobody expected
        raise PresetError(f"{source}: not a valid preset ({e}); compare it with `beatcanvas presets show default`",
                          file=source) from None


def load_toml(text: str, source: str, error: type[PresetError] = PresetError) -> dict[str, Any]:
    """TOML text → a dict, or an `error` naming the line (nesting too deep for the parser included).
    Presets, playlists and schedules all read their files through here."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        line = _toml_error_line(e)
        where = f"{source}, line {line}" if line else source
        raise error(f"{where}: TOML syntax error: {_toml_error_reason(e)}; fix the syntax there",
                    file=source, line=line) from None
    except RecursionError:
        raise error(f"{source}: nested too deeply to be read (arrays or tables inside each other "
                    "hundreds of levels deep); fix the file", file=source) from None


def read_preset_file(path: str | Path) -> Preset:
    """Read one preset file; its stem is its name. A file over MAX_PRESET_BYTES is refused unread."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_PRESET_BYTES:
            raise PresetError(f"{path} is {size / 1e6:.1f} MB; a preset is a few KB of TOML — is this the right file?",
                              file=str(path))
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PresetError(f"{path}: no such preset file; check the path", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise PresetError(f"{path}: cannot read preset file ({e})", file=str(path)) from None
    return parse_preset(text, source=str(path), name=path.stem)


def _toml_error_line(e: tomllib.TOMLDecodeError) -> int | None:
    lineno = getattr(e, "lineno", None)  # Python 3.14+
    if lineno:
        return int(lineno)
    m = re.search(r"line (\d+)", str(e))
    return int(m.group(1)) if m else None


def _toml_error_reason(e: tomllib.TOMLDecodeError) -> str:
    msg = getattr(e, "msg", None) or str(e)
    return re.sub(r"\s*\(at line \d+, column \d+\)", "", msg).strip()
