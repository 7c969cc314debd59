"""The MIDI mapping file: which CC or note drives which knob or command (TOML, schema-checked).

    # beatcanvas MIDI mapping
    port = "nanoKONTROL2"      # part of the input port's name; "" = the first port
    takeover = "pickup"        # pickup: a fader acts once it reaches the knob's value; jump: at once

    [[bind]]
    cc = 0                     # or note = 36
    channel = 1                # 1..16; leave out for any channel
    target = "/beatcanvas/motion/feedback"

    [[bind]]
    note = 41
    target = "/beatcanvas/preset"
    arg = "neon-noir"

    [[bind]]
    note = 42
    target = "/beatcanvas/cue/preset"   # on the next downbeat (quantize: beat, downbeat, bar:N, off)
    arg = "ember"

Targets are the OSC addresses (`beatcanvas osc-map`), so one vocabulary names every knob. MIDI
learn appends to this file; it is written atomically, so a crash never leaves half a file.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from pathlib import Path
from typing import Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from engine.directing.quantize import QUANTIZE_PATTERN
from live.control.knobs import COMMANDS, ControlInputError, find_knob
from live.presets.schema import PresetError, validation_error


class Binding(BaseModel):
    """One control → one target."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cc: int | None = Field(None, ge=0, le=127, description="control-change number")
    note: int | None = Field(None, ge=0, le=127, description="note number (pads, buttons)")
    channel: int | None = Field(None, ge=1, le=16, description="1..16; leave out for any channel")
    target: str = Field(..., description="an address from `beatcanvas osc-map`")
    arg: str | None = Field(None, description="the preset name for /beatcanvas/preset and /beatcanvas/cue/preset")
    quantize: str | None = Field(None, pattern=QUANTIZE_PATTERN,
                                 description="/beatcanvas/cue/preset: when it lands (off, beat, downbeat, bar:N); "
                                             "default downbeat")

    @model_validator(mode="after")
    def _check(self) -> "Binding":
        if (self.cc is None) == (self.note is None):
            raise ValueError("give exactly one of cc = N or note = N")
        spec = COMMANDS.get(self.target)
        if spec is not None:
            if spec.name in ("preset", "cue") and not self.arg:
                raise ValueError(f'{self.target} needs arg = "preset-name"')
            if spec.name in ("style", "learn"):
                raise ValueError(f"{self.target} takes text; it cannot be bound to a MIDI control")
            if self.quantize is not None and spec.name != "cue":
                raise ValueError(f"quantize is for /beatcanvas/cue/preset, not {self.target}")
            return self
        try:
            knob = find_knob(self.target)
        except ControlInputError as e:
            raise ValueError(str(e)) from None
        if knob.kind == "text":
            raise ValueError(f"{self.target} is text; a MIDI control cannot set it")
        if self.note is not None and knob.kind != "bool":
            raise ValueError(f"a note can toggle an on/off knob or fire a command; {self.target} needs a cc")
        return self

    def matches(self, kind: str, number: int, channel: int) -> bool:
        """`channel` is 1-based, as printed on controllers."""
        own = self.cc if kind == "cc" else self.note
        return own == number and (self.channel is None or self.channel == channel)


class MidiMapping(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    port: str = Field("", description="part of the MIDI input port's name; empty = the first port")
    takeover: Literal["pickup", "jump"] = Field(
        "pickup", description="pickup: a control acts once it reaches the knob's value (no jumps)"
    )
    bind: tuple[Binding, ...] = ()

    def with_binding(self, new: Binding) -> "MidiMapping":
        """Learnt bindings replace any earlier one on the same control."""
        same = lambda b: b.cc == new.cc and b.note == new.note and b.channel == new.channel  # noqa: E731
        return self.model_copy(update={"bind": tuple(b for b in self.bind if not same(b)) + (new,)})


def load_mapping(path: str | Path) -> MidiMapping:
    """Read a mapping file; a missing file is an empty mapping (learn will create it)."""
    path = Path(path)
    if not path.exists():
        return MidiMapping()
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise PresetError(f"{path}: cannot read the MIDI mapping ({e}); fix or delete the file", file=str(path)) from None
    try:
        return MidiMapping.model_validate(data)
    except ValidationError as e:
        raise validation_error(e, text, str(path), root=MidiMapping) from None


def save_mapping(mapping: MidiMapping, path: str | Path) -> None:
    """Write atomically: a temporary file in the same folder, then rename over the old one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = tomli_w.dumps(mapping.model_dump(mode="json", exclude_none=True))
    text = "# beatcanvas MIDI mapping (targets: `beatcanvas osc-map`; MIDI learn appends here)\n" + body
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
