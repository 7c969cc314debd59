"""The schedule file: TOML, data only, validated like a preset (same error style, same line numbers).

    interpolate = "linear"        # how keys arrive by default: linear | ease | hold | cut
    beats_per_bar = 4
    sections = ["0:00", "0:31.9"] # section starts (`beatcanvas analyze --sections` writes them)

    [[key]]
    at = "1:32.5"                 # or: bar = 33 (beat = 1..), or: section = 2
    style = "the city on fire"    # the preset's style text
    interpolate = "ease"
    fade = "2 bars"               # ramp over the last 2 bars before the key (linear/ease)
    reactivity.beat_zoom = 1.6    # any knob of [conditioning], [motion], [reactivity], [transitions]
    preset = "neon-noir"          # every knob of that preset (the keys above still win)

`parse_schedule` returns a `Schedule` (keys with their lines; nothing placed in time yet:
live.schedule.timeline does that against a beat grid). Every mistake is one `ScheduleError` line
with the file, the line and what to write instead; an unknown key gets a "did you mean".
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Literal, Optional, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from engine.directing.keyframes import MODES
from engine.directing.timecode import Span, parse_span, parse_time
from live.presets.schema import (
    GROUPS, Preset, PresetError, find_key_line, load_toml, validation_error,
)

Mode = Literal[MODES]  # type: ignore[valid-type]
# The groups a schedule may change while the show runs; [model] picks and loads the weights.
SCHEDULED = ("conditioning", "motion", "reactivity", "transitions")


class ScheduleError(PresetError):
    """A schedule that does not parse, validate or fit the track; `file` and `line` say where."""


def _partial(group: type[BaseModel]) -> type[BaseModel]:
    """The group with every knob optional (unset = not scheduled), its ranges and choices kept."""
    fields: dict[str, Any] = {}
    for name, info in group.model_fields.items():
        kind = Annotated[(Optional[info.annotation], *info.metadata)] if info.metadata else Optional[info.annotation]
        fields[name] = (kind, Field(None, description=info.description))
    return create_model(f"Scheduled{group.__name__}", __config__=ConfigDict(frozen=True, extra="forbid"), **fields)


_PARTIAL = {g: _partial(GROUPS[g]) for g in SCHEDULED}
if TYPE_CHECKING:  # built at import time from the preset's groups; to the type checker, models
    ConditioningKnobs: TypeAlias = BaseModel
    MotionKnobs: TypeAlias = BaseModel
    ReactivityKnobs: TypeAlias = BaseModel
    TransitionKnobs: TypeAlias = BaseModel
else:
    ConditioningKnobs, MotionKnobs, ReactivityKnobs, TransitionKnobs = (
        _PARTIAL[g] for g in ("conditioning", "motion", "reactivity", "transitions"))
LoadPreset = Callable[[str], Preset]


class Key(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    at: Any = Field(None, description='a time: seconds (92.5) or "m:ss.x" ("1:32.5")')
    bar: Optional[Annotated[int, Field(ge=1)]] = Field(None, description="a bar; 1 = the first downbeat")
    beat: Optional[Annotated[float, Field(ge=1)]] = Field(None, description="the beat within `bar`, from 1")
    section: Optional[Annotated[int, Field(ge=1)]] = Field(None, description="the start of section N")
    interpolate: Optional[Mode] = Field(None, description="how the values arrive; default: the file's")
    fade: Any = Field(None, description='linear/ease only: ramp over this long before the key ("2 bars")')
    preset: Optional[str] = Field(None, description="take every knob of this preset")
    style: Optional[str] = Field(None, description="the style text (conditioning.style)")
    conditioning: Optional[ConditioningKnobs] = None
    motion: Optional[MotionKnobs] = None
    reactivity: Optional[ReactivityKnobs] = None
    transitions: Optional[TransitionKnobs] = None


class ScheduleFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str = ""
    interpolate: Mode = Field("linear", description="default for keys that do not say")
    beats_per_bar: int = Field(4, ge=1, le=16, description="for bar keys when the tracker finds no downbeats")
    sections: tuple[Any, ...] = Field((), description="section start times")
    key: tuple[Key, ...] = Field(min_length=1, description="the keyframes, [[key]] tables")


@dataclass(frozen=True)
class KeySpec:
    """One [[key]], checked: where it goes, how it arrives, and the knobs it sets ("group.knob")."""

    number: int  # 1-based, in file order
    line: int | None
    at: float | None
    bar: int | None
    beat: float
    section: int | None
    mode: str
    fade: Span | None
    values: dict[str, Any]
    preset: str | None = None
    written: frozenset[str] = frozenset()  # the knobs written in this key (not taken from `preset`)

    @property
    def where(self) -> str:
        return f"line {self.line}" if self.line else f"key {self.number}"


@dataclass(frozen=True)
class Schedule:
    keys: tuple[KeySpec, ...]
    beats_per_bar: int = 4
    sections: tuple[float, ...] = ()
    source: str = "<schedule>"
    digest: str = ""  # sha256 of the text: export refuses to resume over another schedule
    warnings: tuple[str, ...] = ()
    preset_models: dict[str, Any] = field(default_factory=dict)  # preset name → its [model] group

    @property
    def needs_grid(self) -> bool:
        return any(k.bar is not None or k.mode == "cut" or (k.fade and k.fade.unit != "s") for k in self.keys)

    @property
    def needs_sections(self) -> bool:
        return not self.sections and any(k.section is not None for k in self.keys)


def _suggest(bad: str, names: list[str], dotted: dict[str, str]) -> str:
    close = difflib.get_close_matches(bad, names + list(dotted), n=1, cutoff=0.6)
    if not close:
        return f"valid keys: {', '.join(names)}"
    return f"did you mean '{close[0] if close[0] in names else dotted[close[0]]}'?"


def _fail(source: str, text: str, loc: tuple, message: str) -> ScheduleError:
    line = find_key_line(text, loc)
    where = f"{source}, line {line}" if line else source
    return ScheduleError(f"{where}: {message}", file=source, line=line, key=".".join(map(str, loc)))


def _check_names(data: dict, text: str, source: str) -> None:
    """Unknown keys, with a suggestion that knows knobs live in groups (beat_zoom → reactivity.beat_zoom)."""
    top = list(ScheduleFile.model_fields)
    for name in data:
        if name not in top:
            raise _fail(source, text, (name,), f"unknown setting '{name}'; {_suggest(name, top, {})}")
    keys = data.get("key")
    if not isinstance(keys, list):
        return
    names = list(Key.model_fields)
    dotted = {knob: f"{g}.{knob}" for g in SCHEDULED for knob in GROUPS[g].model_fields}
    for i, key in enumerate(keys):
        if not isinstance(key, dict):
            continue
        for name, value in key.items():
            if name == "model" or name in GROUPS["model"].model_fields:
                raise _fail(source, text, ("key", i, name),
                            "[model] settings cannot change during a show (they choose and load the weights); "
                            "remove it, or start the show with a preset that has that model")
            if name not in names:
                raise _fail(source, text, ("key", i, name),
                            f"unknown key '{name}' in [[key]] {i + 1}; {_suggest(name, names, dotted)}")
            if name in SCHEDULED and isinstance(value, dict):
                knobs = list(GROUPS[name].model_fields)
                for knob in value:
                    if knob not in knobs:
                        raise _fail(source, text, ("key", i, name, knob),
                                    f"unknown knob '{name}.{knob}' in [[key]] {i + 1}; {_suggest(knob, knobs, {})}")


def parse_schedule(text: str, source: str = "<schedule>", load_preset: LoadPreset | None = None) -> Schedule:
    """Parse and check a schedule. `load_preset(name) -> Preset` resolves `preset = "..."` keys."""
    data = load_toml(text, source, ScheduleError)
    _check_names(data, text, source)
    if "key" not in data:
        raise ScheduleError(f"{source}: no keyframes; add at least one [[key]] table with at = \"m:ss\" and a setting",
                            file=source)
    try:
        model = ScheduleFile.model_validate(data)
    except ValidationError as e:
        err = validation_error(e, text, source, root=ScheduleFile)
        message = re.sub(r"\bkey\[(\d+)\]\.", lambda m: f"[[key]] {int(m.group(1)) + 1}: ", str(err))
        raise ScheduleError(message, file=err.file, line=err.line, key=err.key) from None
    sections = []
    for j, value in enumerate(model.sections):
        try:
            sections.append(parse_time(value))
        except ValueError as e:
            raise _fail(source, text, ("sections",), f"sections[{j + 1}]: {e}") from None
    if sections != sorted(sections):
        raise _fail(source, text, ("sections",), "sections must be in time order; sort the list")
    presets: dict[str, Preset] = {}
    keys = tuple(_key_spec(i, k, model, text, source, load_preset, presets) for i, k in enumerate(model.key))
    return Schedule(keys, model.beats_per_bar, tuple(sections), source,
                    hashlib.sha256(text.encode()).hexdigest(), (),
                    {name: p.model for name, p in presets.items()})


def _key_spec(i: int, key: Key, model: ScheduleFile, text: str, source: str, load_preset: LoadPreset | None,
              presets: dict[str, Preset]) -> KeySpec:
    loc = ("key", i)
    placed = [n for n, v in (("at", key.at), ("bar", key.bar), ("section", key.section)) if v is not None]
    if len(placed) != 1:
        what = "none" if not placed else " and ".join(placed)
        raise _fail(source, text, loc, f"[[key]] {i + 1} has {what}; give it exactly one of at = \"m:ss\", bar = N "
                                       "or section = N")
    if key.beat is not None and key.bar is None:
        raise _fail(source, text, loc + ("beat",), "beat = N needs bar = N next to it (the beat within that bar)")
    try:
        at = parse_time(key.at) if key.at is not None else None
    except ValueError as e:
        raise _fail(source, text, loc + ("at",), f"at = {key.at!r}: {e}") from None
    mode = key.interpolate or model.interpolate
    fade = None
    if key.fade is not None:
        if mode not in ("linear", "ease"):
            raise _fail(source, text, loc + ("fade",), f"fade only applies to linear or ease keys, this one is '{mode}'; "
                                                       "remove fade or set interpolate = \"ease\"")
        try:
            fade = parse_span(key.fade)
        except ValueError as e:
            raise _fail(source, text, loc + ("fade",), f"fade = {key.fade!r}: {e}") from None
    values: dict[str, Any] = {}
    if key.preset is not None:
        if key.preset not in presets:
            if load_preset is None:
                raise _fail(source, text, loc + ("preset",), "preset keys need the preset library")
            try:
                presets[key.preset] = load_preset(key.preset)
            except PresetError as e:
                raise _fail(source, text, loc + ("preset",), f"preset = {key.preset!r}: {e}") from None
        dumped = presets[key.preset].model_dump()
        values.update({f"{g}.{k}": v for g in SCHEDULED for k, v in dumped[g].items()})
    given = key.model_dump(include=set(SCHEDULED), exclude_none=True)
    written = {f"{g}.{k}" for g, knobs in given.items() for k in knobs}
    values.update({f"{g}.{k}": v for g, knobs in given.items() for k, v in knobs.items()})
    if key.style is not None:
        if "conditioning.style" in written:
            raise _fail(source, text, loc + ("style",), "both style and conditioning.style are set; keep one")
        written.add("conditioning.style")
        values["conditioning.style"] = key.style
    return KeySpec(i + 1, find_key_line(text, loc), at, key.bar, key.beat or 1.0, key.section, mode, fade,
                   values, key.preset, frozenset(written))


def read_schedule(path: str | Path, load_preset: LoadPreset | None = None) -> Schedule:
    path = Path(path)
    if load_preset is None:
        from live.presets.library import load_preset
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScheduleError(f"{path}: no such schedule file; check the --schedule path", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ScheduleError(f"{path}: cannot read the schedule ({e})", file=str(path)) from None
    return parse_schedule(text, source=str(path), load_preset=load_preset)
