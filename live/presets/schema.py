"""The preset schema: one look (model, style, motion, reactivity, transitions) as a frozen object.

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
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from engine.errors import BeatcanvasError

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"

# Few-step SDXL is distilled for very small step counts; more than 8 defeats the point.
Steps = Annotated[int, Field(ge=1, le=8)]
# SDXL's latent is 1/8 of the image and the UNet downsamples 3x more: sizes are multiples of 64.
Side = Annotated[int, Field(ge=256, le=1536, multiple_of=64)]
Sensitivity = Annotated[float, Field(ge=0.0, le=2.0)]

# SDXL-Lightning ships distilled checkpoints for exactly these step counts.
LIGHTNING_STEPS = (1, 2, 4, 8)
# Per-model defaults, applied when the file leaves the field out (see ModelSettings._model_defaults).
MODEL_DEFAULTS: dict[str, dict[str, int]] = {
    "sdxl-turbo": {"steps": 2, "width": 512, "height": 512},
    "sdxl-lightning": {"steps": 4, "width": 1024, "height": 1024},
}


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class ModelSettings(_Group):
    """Which image model renders, how many steps, at what size, on which back-end."""

    renderer: Literal["auto", "sdxl", "procedural"] = Field(
        "auto", description="auto: SDXL when its weights are present, else the procedural renderer"
    )
    model: Literal["sdxl-turbo", "sdxl-lightning"] = Field(
        "sdxl-turbo", description="sdxl-turbo (512², 1-4 steps) or sdxl-lightning (1024², 1/2/4/8 steps)"
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

    @model_validator(mode="before")
    @classmethod
    def _model_defaults(cls, data: Any) -> Any:
        # Lightning wants 1024² and 4 steps; turbo 512² and 2: fill what the file left out.
        if isinstance(data, dict):
            defaults = MODEL_DEFAULTS.get(data.get("model", "sdxl-turbo"), {})
            data = {**defaults, **data}
        return data

    @field_validator("steps")
    @classmethod
    def _lightning_steps(cls, v: int, info: ValidationInfo) -> int:
        if info.data.get("model") == "sdxl-lightning" and v not in LIGHTNING_STEPS:
            raise ValueError(f"sdxl-lightning has checkpoints for steps 1, 2, 4 or 8 only, not {v}")
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
    lyrics_weight: float = Field(  # directing (issue 17): the sung line's share (--lyrics)
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


class Preset(BaseModel):
    """One look. Immutable; load it with `live.presets.library.load_preset`."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    name: str = Field("custom", pattern=NAME_PATTERN, description="lower-case, digits, - and _")
    description: str = Field("", description="one line shown by `beatcanvas presets list`")
    model: ModelSettings = Field(default_factory=ModelSettings)
    conditioning: ConditioningSettings = Field(default_factory=ConditioningSettings)
    motion: MotionSettings = Field(default_factory=MotionSettings)
    reactivity: ReactivitySettings = Field(default_factory=ReactivitySettings)
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
        if v and model is not None and model.renderer != "procedural" and model.model == "sdxl-turbo":
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
    "transitions": TransitionSettings,
}


class PresetError(BeatcanvasError):
    """A preset that does not parse or validate; `file`, `line` and `key` say where."""

    def __init__(self, message: str, file: str = "", line: int | None = None, key: str = "") -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.key = key


def preset_hash(preset: Preset) -> str:
    """sha256 of the canonical resolved settings (name and description excluded: they don't
    change a single pixel). Export writes it into its manifest."""
    settings = preset.model_dump(mode="json", exclude={"name", "description"})
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- parsing -------------------------------------------------------------------------------


def load_toml(text: str, source: str, error: type[PresetError] = PresetError) -> dict[str, Any]:
    """TOML text → dict; a syntax error becomes one `error` line with the file and line (presets,
    playlists and schedules all read their files through here)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        line = _toml_error_line(e)
        where = f"{source}, line {line}" if line else source
        raise error(
            f"{where}: TOML syntax error: {_toml_error_reason(e)}; fix the syntax there",
            file=source,
            line=line,
        ) from None


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
        raise validation_error(e, text, source) from None


def read_preset_file(path: str | Path) -> Preset:
    """Read one preset file; its stem is its name."""
    path = Path(path)
    try:
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


# --- error messages ------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$")
_KEYLINE = re.compile(r"^\s*([A-Za-z0-9_\-\.\"' ]+?)\s*=")


def _split_key(key: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in key.split("."))


def find_key_line(text: str, loc: tuple[str | int, ...]) -> int | None:
    """1-based line where the dotted key `loc` (or its longest defined prefix) is set.

    tomllib keeps no positions, so scan the text: track the current [table] (counting
    [[array]] tables, so `("entry", 2, "preset")` finds the third entry), match `key = ...` lines
    (dotted keys included) and skip multi-line string bodies."""
    want = tuple(str(p) for p in loc)
    best: tuple[int, int] | None = None  # (prefix length, line)
    table: tuple[str, ...] = ()
    arrays: dict[tuple[str, ...], int] = {}
    in_multiline: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if line.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        header = _HEADER.match(line)
        if header:
            table = _split_key(header.group(1))
            if line.lstrip().startswith("[["):
                arrays[table] = arrays.get(table, -1) + 1
                table = table + (str(arrays[table]),)
            full = table
        else:
            m = _KEYLINE.match(line)
            if not m:
                continue
            full = table + _split_key(m.group(1))
            for quote in ('"""', "'''"):
                if line.count(quote) % 2 == 1:
                    in_multiline = quote
        n = 0
        while n < min(len(full), len(want)) and full[n] == want[n]:
            n += 1
        if n == len(full) and n > 0 and (best is None or n > best[0]):
            best = (n, number)
            if n == len(want):
                break
    return best[1] if best else None


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation like `Model`, `list[Model]` or `Model | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _owner(root: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model whose field `loc[-1]` is: walk `loc` from `root`, skipping list indices."""
    owner: type[BaseModel] | None = root
    for part in loc[:-1]:
        if isinstance(part, int) or owner is None:
            continue
        field = owner.model_fields.get(part)
        owner = _model_of(field.annotation) if field else None
    return owner


def _valid_keys(root: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    owner = _owner(root, loc)
    return list(owner.model_fields) if owner else []


def _allowed_range(root: type[BaseModel], loc: tuple[str | int, ...]) -> str:
    """'allowed 1..8' from the field's own constraints, so the message shows the whole range."""
    owner = _owner(root, loc)
    field = owner.model_fields.get(str(loc[-1])) if owner else None
    if field is None:
        return ""
    lo = hi = step = None
    lo_open = hi_open = False
    for m in field.metadata:
        for attr in ("ge", "gt", "le", "lt", "multiple_of"):
            v = getattr(m, attr, None)
            if v is None:
                continue
            if attr in ("ge", "gt"):
                lo, lo_open = v, attr == "gt"
            elif attr in ("le", "lt"):
                hi, hi_open = v, attr == "lt"
            else:
                step = v
    if lo is None and hi is None:
        return ""
    low = f"more than {lo}" if lo_open else f"{lo}"
    text = f"allowed {low} up to {hi}" if lo_open or hi_open else f"allowed {lo}..{hi}"
    return text + (f" in steps of {step}" if step else "")


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _describe(err: dict[str, Any], root: type[BaseModel]) -> str:
    loc = tuple(err["loc"])
    key = _dotted(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        valid = _valid_keys(root, loc)
        bad = str(loc[-1])
        close = difflib.get_close_matches(bad, valid, n=1, cutoff=0.5)
        table = f"[{_dotted(loc[:-1])}]" if len(loc) > 1 else "the top level"
        hint = f"did you mean '{close[0]}'?" if close else f"valid keys: {', '.join(valid)}"
        what = "section" if isinstance(err.get("input"), dict) else "key"
        if what == "section" and close:
            hint = f"did you mean [{close[0]}]?"
        return f"unknown {what} '{bad}' in {table}; {hint}"
    value = err.get("input")
    shown = f" = {value!r}" if not isinstance(value, dict) else ""
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", err.get("ctx", {}).get("expected", ""))
        close = difflib.get_close_matches(str(value), options, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"{key}{shown}: must be one of {', '.join(repr(o) for o in options)}{hint}"
    if kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "multiple_of"}:
        allowed = _allowed_range(root, loc) or err["msg"].lower().replace("input should be ", "must be ")
        return f"{key}{shown} is out of range: {allowed}"
    if kind == "value_error" or kind == "assertion_error":
        msg = re.sub(r"^(Value|Assertion) error, ", "", err["msg"])
        return f"{key}: {msg}" if key else msg
    if kind == "missing":
        return f"{key}: required but missing"
    # Wrong types and the rest: pydantic's wording is already clear ("Input should be a valid integer").
    return f"{key}{shown}: wrong type or value: {err['msg'].replace('Input should be', 'should be')}"


def validation_error(
    e: ValidationError, text: str, source: str, root: type[BaseModel] | None = None
) -> PresetError:
    """One-line `PresetError` for a pydantic error on TOML `text` read from `source`; the first
    problem leads, with file and line; the rest follow in brackets."""
    root = root or Preset
    parts: list[str] = []
    first_line: int | None = None
    first_key = ""
    # A typo'd key also makes the real key "missing": lead with the typo, it explains both.
    errors = sorted(e.errors(include_url=False), key=lambda err: err["type"] != "extra_forbidden")
    for i, err in enumerate(errors):
        loc = tuple(err["loc"])
        line = find_key_line(text, loc) if loc else None
        where = f"line {line}: " if line else ""
        parts.append(where + _describe(err, root))
        if i == 0:
            first_line, first_key = line, _dotted(loc)
    message = f"{source}, {parts[0]}" if parts else source
    if len(parts) > 1:
        message += f" (and {len(parts) - 1} more: " + "; ".join(parts[1:]) + ")"
    return PresetError(message, file=source, line=first_line, key=first_key)
