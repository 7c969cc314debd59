"""Every preset knob at a stable address, and the one validated way to change it.

The table is derived from the preset schema, so a field added to `live/presets/schema.py` gets an
OSC address and a MIDI mapping target without a line here: `/beatcanvas/<section>/<key>`, e.g.
`/beatcanvas/motion/feedback`. A change is applied by rebuilding the preset through the same
pydantic model that validates preset files, so a value a file may not hold cannot arrive over OSC
or MIDI either, and the refusal reads like the file loader's ("motion.feedback = 1.5 is out of
range: allowed 0.0..1.0").
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from live.presets.schema import Preset, validation_error

ROOT = "/beatcanvas"
Kind = Literal["float", "int", "bool", "choice", "text"]


@dataclass(frozen=True)
class KnobChange:
    """Set `section.key` to `value` (raw; the schema validates it when applied)."""

    section: str
    key: str
    value: Any
    origin: str = "OSC"  # says where a refused value came from, in the HUD

    @property
    def address(self) -> str:
        return f"{ROOT}/{self.section}/{self.key}"


@dataclass(frozen=True)
class Command:
    """A one-shot action: freeze, blackout, tap, next_preset, prev_preset, preset (arg: name), cue
    (arg: name; `quantize`: when it lands), learn (arg: address or None), hud, screenshot. `arg`
    True/False sets a toggle, None flips it."""

    name: str
    arg: str | bool | None = None
    origin: str = "OSC"
    quantize: str = ""  # a cue's boundary (engine/directing/quantize.py: off, beat, downbeat, bar:N)


@dataclass(frozen=True)
class ControlError:
    """A message that could not be understood; shown in the HUD, never raised."""

    message: str


@dataclass(frozen=True)
class ControlNotice:
    """Something the performer should read (a MIDI binding was learnt, a knob is held)."""

    message: str


ControlItem = KnobChange | Command | ControlError | ControlNotice


@dataclass(frozen=True)
class Knob:
    """One preset field a controller can reach: its address, type, range and default."""

    section: str
    key: str
    kind: Kind
    default: Any
    description: str = ""
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False  # `gt` rather than `ge`: the low end itself is not allowed
    step: int | None = None  # multiple_of (image sides are multiples of 64)
    choices: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        return f"{ROOT}/{self.section}/{self.key}"

    @property
    def field(self) -> str:
        """The section's field: `key`, or for an entry of a table of numbers (`motifs/ink`) the table."""
        return self.key.split("/", 1)[0]

    def read(self, preset: BaseModel) -> Any:
        """The knob's current value in `preset`."""
        value = getattr(getattr(preset, self.section), self.field)
        return value[self.key.split("/", 1)[1]] if "/" in self.key else value

    def write(self, data: dict, value: Any) -> None:
        """Set the knob in a `model_dump()` of a preset."""
        if "/" in self.key:
            data[self.section][self.field][self.key.split("/", 1)[1]] = value
        else:
            data[self.section][self.key] = value

    @property
    def example(self) -> str:
        """A value of the knob's own type, as an OSC hint writes it (a text knob's hint is text)."""
        if self.kind == "bool":
            return "1"
        if self.kind == "choice":
            return f'"{self.choices[0]}"' if self.choices else '""'
        if self.kind == "text":
            return f'"{self.default}"' if isinstance(self.default, str) and self.default else '"some text"'
        value = self.default if isinstance(self.default, (int, float)) else self.lo
        if self.kind == "int":
            return str(int(value or 0))
        return f"{float(value or 0.0):g}"

    @property
    def continuous(self) -> bool:
        """A fader can sweep it (and soft takeover applies)."""
        return self.kind in ("float", "int") and self.lo is not None and self.hi is not None

    def to_unit(self, value: Any) -> float:
        """Where `value` sits on a 0..1 fader."""
        if self.kind == "bool":
            return 1.0 if value else 0.0
        if self.kind == "choice":
            n = len(self.choices)
            return (self.choices.index(value) + 0.5) / n if value in self.choices else 0.0
        if not self.continuous:
            raise ValueError(f"{self.address} is text; it has no fader position")
        lo, hi = float(self.lo), float(self.hi)  # type: ignore[arg-type]
        return min(1.0, max(0.0, (float(value) - lo) / (hi - lo))) if hi > lo else 0.0

    def from_unit(self, u: float) -> Any:
        """The value at fader position `u` (0..1): the inverse of `to_unit`."""
        u = min(1.0, max(0.0, float(u)))
        if self.kind == "bool":
            return u >= 0.5
        if self.kind == "choice":
            return self.choices[min(int(u * len(self.choices)), len(self.choices) - 1)]
        if not self.continuous:
            raise ValueError(f"{self.address} is text; a fader cannot set it")
        lo, hi = float(self.lo), float(self.hi)  # type: ignore[arg-type]
        value = lo + u * (hi - lo)
        if self.lo_open and value <= lo:
            value = lo + (hi - lo) / 1000.0  # the open end is not allowed: stop just above it
        if self.kind == "float":
            return round(value, 6)
        step = self.step or 1
        return int(min(hi, max(lo, round(value / step) * step)))


@dataclass(frozen=True)
class CommandSpec:
    """A command's address in the shared vocabulary of OSC addresses and MIDI targets."""

    name: str
    arg: str  # "none" (a trigger), "toggle" (0/1 or nothing), "text", "address", "cue" (name [quantize])
    help: str


COMMANDS: dict[str, CommandSpec] = {
    f"{ROOT}/preset": CommandSpec("preset", "text", "switch to the named preset"),
    f"{ROOT}/cue/preset": CommandSpec("cue", "cue", "switch to the named preset on the next downbeat "
                                      "(or the boundary a second argument names: beat, downbeat, bar:N, off), "
                                      "its render started early by the measured render latency"),
    f"{ROOT}/preset/next": CommandSpec("next_preset", "none", "next preset in the library"),
    f"{ROOT}/preset/prev": CommandSpec("prev_preset", "none", "previous preset in the library"),
    f"{ROOT}/freeze": CommandSpec("freeze", "toggle", "hold the picture (effects keep moving)"),
    f"{ROOT}/blackout": CommandSpec("blackout", "toggle", "black output"),
    f"{ROOT}/hud": CommandSpec("hud", "toggle", "heads-up display on the window"),
    f"{ROOT}/tap": CommandSpec("tap", "none", "tap tempo"),
    f"{ROOT}/screenshot": CommandSpec("screenshot", "none", "save a PNG of the output"),
    f"{ROOT}/style": CommandSpec("style", "text", "style text (alias of /beatcanvas/conditioning/style)"),
    f"{ROOT}/learn": CommandSpec("learn", "address", "MIDI learn: the next CC binds to this address"),
}


class ControlInputError(ValueError):
    """An address or value that cannot be turned into a control item; the message says why."""


def _scalar_kind(annotation: Any) -> tuple[Kind, tuple[str, ...]] | None:
    """The knob kind of a field's type, or None for structured fields (lists, tables)."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "choice", tuple(str(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _scalar_kind(inner[0]) if len(inner) == 1 else None
    kinds: dict[Any, Kind] = {bool: "bool", int: "int", float: "float", str: "text"}
    return (kinds[annotation], ()) if annotation in kinds else None


def _bounds(metadata: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in metadata:
        for attr, name in (("ge", "lo"), ("gt", "lo"), ("le", "hi"), ("lt", "hi"), ("multiple_of", "step")):
            v = getattr(m, attr, None)
            if v is not None:
                out[name] = v
                if attr == "gt":
                    out["lo_open"] = True
    return out


@cache
def knob_table(root: type[BaseModel] = Preset) -> dict[str, Knob]:
    """address → Knob for every scalar field of every section, in schema order."""
    defaults = root()
    table: dict[str, Knob] = {}
    for section, field in root.model_fields.items():
        group = field.annotation
        if not (isinstance(group, type) and issubclass(group, BaseModel)):
            continue  # name, description, commercial_safe: not knobs of a look
        current = getattr(defaults, section)
        for key, sub in group.model_fields.items():
            for knob in _field_knobs(section, key, sub, getattr(current, key)):
                table[knob.address] = knob
    return table


def _field_knobs(section: str, key: str, sub: Any, default: Any) -> list[Knob]:
    """The knob of a scalar field; one knob per entry of a table of numbers with fixed names (the
    shader's motif weights: `/beatcanvas/procedural/motifs/ink`); none for other structures."""
    kind = _scalar_kind(sub.annotation)
    if kind is not None:
        return [Knob(section, key, kind[0], default, sub.description or "", choices=kind[1], **_bounds(sub.metadata))]
    if typing.get_origin(sub.annotation) is dict and isinstance(default, dict) and default:
        value_type = typing.get_args(sub.annotation)[1]
        metadata = list(getattr(value_type, "__metadata__", ()))
        inner = _scalar_kind(typing.get_args(value_type)[0] if metadata else value_type)
        metadata = [c for m in metadata for c in (m.metadata if isinstance(m, FieldInfo) else [m])]  # Field(ge=…) → Ge
        if inner is not None and inner[0] in ("float", "int"):
            return [Knob(section, f"{key}/{name}", inner[0], v, f"{sub.description or key} ({name})", **_bounds(metadata))
                    for name, v in default.items()]
    return []


def find_knob(address: str) -> Knob:
    """The knob at `address`, or a ControlInputError that suggests the nearest one."""
    table = knob_table()
    knob = table.get(address.rstrip("/"))
    if knob is not None:
        return knob
    close = difflib.get_close_matches(address, list(table), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else "`beatcanvas osc-map` lists every address"
    raise ControlInputError(f"unknown address {address}; {hint}")


def coerce(knob: Knob, value: Any) -> Any:
    """Translate what a controller naturally sends into what the schema checks: OSC floats are
    32-bit (0.4 arrives as 0.4000000059604645), toggles send 0.0/1.0, radio buttons send an index.
    Range and type are left to the schema."""
    if knob.kind == "float" and isinstance(value, float):
        return float(f"{value:.7g}")
    if knob.kind == "bool" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value >= 0.5
    if knob.kind == "choice" and isinstance(value, (int, float)) and not isinstance(value, bool):
        index = int(value) if math.isfinite(value) else -1
        if not 0 <= index < len(knob.choices) or index != value:
            raise ControlInputError(
                f"{knob.address}: index {value} is not one of 0..{len(knob.choices) - 1} "
                f"({', '.join(knob.choices)})"
            )
        return knob.choices[index]
    if knob.kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def apply_change(preset: Preset, change: KnobChange) -> Preset:
    """A new preset with one knob changed, validated whole (some rules span fields: Lightning's
    step counts, the commercial-licence check). Raises ControlInputError with a one-line reason."""
    knob = find_knob(change.address)
    value = coerce(knob, change.value)
    data = preset.model_dump()
    knob.write(data, value)
    try:
        return type(preset).model_validate(data)
    except ValidationError as e:
        reason = validation_error(e, "", f"{change.origin} {change.address}", type(preset))
        raise ControlInputError(f"{reason}; kept {knob.read(preset)!r}") from None
