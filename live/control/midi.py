"""MIDI in (mido + python-rtmidi): mapped controls, MIDI learn and soft takeover.

The port's callback runs on the MIDI library's thread and only translates a message into control
items for the ControlHub. Soft takeover ("pickup"): after a preset switch or an OSC change, a fader
whose position differs from the knob's value does nothing until it is moved onto or across that
value, so the picture never jumps when the performer touches it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.errors import BeatcanvasError
from live.control.hub import ControlHub
from live.control.knobs import (
    COMMANDS, Command, ControlError, ControlInputError, ControlNotice, KnobChange, find_knob,
)
from live.control.midi_map import Binding, MidiMapping, save_mapping

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'beatcanvas[midi]' (mido + python-rtmidi)"
PICKUP_WINDOW = 2.0 / 127  # "close enough" to take over without crossing
# After sending a value, the running preset shows it once the display loop drains (a frame or two);
# only a difference that outlives this was made by someone else and releases the fader.
SETTLE_S = 0.25


@dataclass
class _Fader:
    engaged: bool = False
    last_pos: float | None = None
    last_sent: Any = None
    sent_at: float = 0.0
    held_notice_at: float = 0.0


class MidiControl:
    """Turns mido messages into knob changes and commands. `current()` returns the running
    preset (soft takeover compares against it); `path` is where learnt bindings are saved."""

    def __init__(self, hub: ControlHub, mapping: MidiMapping, current: Callable[[], Any],
                 path: str | Path | None = None) -> None:
        self.hub = hub
        self.mapping = mapping
        self.current = current
        self.path = Path(path) if path else None
        self._faders: dict[tuple[str, str], _Fader] = {}
        self._levels: dict[tuple[int, int], int] = {}  # (channel, cc) → last value, for button edges
        self._armed: str | None = None
        self._lock = threading.Lock()  # arm() comes from the display thread
        self.port_name = ""
        self._port: Any = None

    # -- learn ------------------------------------------------------------------------------------

    def arm(self, address: str) -> str:
        """Bind the next control moved to `address`; returns the line for the HUD."""
        address = address.rstrip("/")
        if address not in COMMANDS:
            find_knob(address)  # raises ControlInputError with a suggestion
        try:  # can a control drive it at all? (text knobs cannot)
            Binding(cc=0, target=address, arg="x" if address.endswith("/preset") else None)  # preset, cue/preset
        except ValidationError as e:
            raise ControlInputError(f"MIDI learn: {_reason(e)}") from None
        with self._lock:
            self._armed = address
        return f"MIDI learn: move a control to bind it to {address}"

    def _learn(self, kind: str, number: int, channel: int) -> bool:
        with self._lock:
            target, self._armed = self._armed, None
        if target is None:
            return False
        try:
            binding = Binding(**{kind: number}, channel=channel, target=target)
        except ValidationError as e:
            self.hub.put(ControlError(f"MIDI learn: {kind} {number} cannot drive {target} ({_reason(e)})"))
            return True
        self.mapping = self.mapping.with_binding(binding)
        where = ""
        if self.path is not None:
            try:
                save_mapping(self.mapping, self.path)
                where = f" (saved to {self.path})"
            except OSError as e:
                where = f" (NOT saved: {e})"
        self.hub.put(ControlNotice(f"MIDI learn: {kind} {number} ch {channel} → {target}{where}"))
        return True

    # -- messages ---------------------------------------------------------------------------------

    def handle(self, msg: Any) -> None:
        """One mido message (from the port's thread). Never raises."""
        try:
            if msg.type == "control_change":
                self._cc(msg.channel + 1, msg.control, msg.value)
            elif msg.type == "note_on" and msg.velocity > 0:
                self._note(msg.channel + 1, msg.note)
        except Exception as e:  # noqa: BLE001 - a controller must not crash the show
            self.hub.put(ControlError(f"MIDI: {e}"))

    def _bound(self, kind: str, number: int, channel: int) -> list[Binding]:
        """What this control drives; nothing when it was just learnt (learning is its only job)."""
        if self._learn(kind, number, channel):
            return []
        return [b for b in self.mapping.bind if b.matches(kind, number, channel)]

    def _cc(self, channel: int, number: int, value: int) -> None:
        previous = self._levels.get((channel, number), 0)
        self._levels[(channel, number)] = value
        for b in self._bound("cc", number, channel):
            if b.target not in COMMANDS:
                self._fader(b, value / 127.0, f"MIDI cc{number}")
            elif value >= 64 > previous:  # a button's press, not its release or a fader's sweep
                self.hub.put(_command(b))

    def _note(self, channel: int, number: int) -> None:
        for b in self._bound("note", number, channel):
            if b.target in COMMANDS:
                self.hub.put(_command(b))
            else:  # an on/off knob: a pad toggles it
                knob = find_knob(b.target)
                now = knob.read(self.current())
                self.hub.put(KnobChange(knob.section, knob.key, not now, f"MIDI note {number}"))

    def _fader(self, b: Binding, pos: float, origin: str) -> None:
        knob = find_knob(b.target)
        state = self._faders.setdefault((b.target, origin), _Fader())
        value_now = knob.read(self.current())
        now = time.monotonic()
        if state.engaged and now - state.sent_at > SETTLE_S and value_now != state.last_sent:
            state.engaged = False  # a preset switch or another controller moved the knob
        if not state.engaged and (self.mapping.takeover == "jump" or not knob.continuous):
            state.engaged = True
        if not state.engaged:
            u = knob.to_unit(value_now)
            crossed = state.last_pos is not None and (state.last_pos - u) * (pos - u) <= 0
            state.engaged = crossed or abs(pos - u) <= PICKUP_WINDOW
        state.last_pos = pos
        if not state.engaged:
            if now - state.held_notice_at > 1.0:
                state.held_notice_at = now
                self.hub.put(ControlNotice(
                    f"{origin}: {knob.section}.{knob.key} stays {value_now!r} until the control reaches it"
                ))
            return
        value = knob.from_unit(pos)
        state.last_sent, state.sent_at = value, now
        self.hub.put(KnobChange(knob.section, knob.key, value, origin))

    # -- the port ---------------------------------------------------------------------------------

    def open(self, name: str | None = None, opener: Callable[..., Any] | None = None,
             names: Callable[[], list[str]] | None = None) -> str:
        """Open the input whose name contains `name` (else the mapping's `port`, else the first)
        with `self.handle` as its callback. Raises BeatcanvasError with one line saying why not."""
        if opener is None or names is None:
            try:
                import mido
            except ImportError:
                raise BeatcanvasError(f"MIDI needs mido: {INSTALL_HINT}") from None
            opener, names = opener or mido.open_input, names or mido.get_input_names
        try:
            available = list(names())
        except ImportError:
            raise BeatcanvasError(f"MIDI needs python-rtmidi: {INSTALL_HINT}") from None
        except Exception as e:  # noqa: BLE001 - rtmidi raises SystemError when ALSA/CoreMIDI is absent
            raise BeatcanvasError(f"MIDI is unavailable on this machine ({_first_line(e)}); running without it") from None
        want = name if name is not None else self.mapping.port
        chosen = next((n for n in available if want.lower() in n.lower()), None) if available else None
        if chosen is None:
            listed = ", ".join(available) or "none"
            raise BeatcanvasError(f"MIDI: no input port matches {want!r} (ports: {listed}); plug it in or pick one with --midi")
        try:
            self._port = opener(chosen, callback=self.handle)
        except Exception as e:  # noqa: BLE001
            raise BeatcanvasError(f"MIDI: cannot open {chosen!r} ({_first_line(e)})") from None
        self.port_name = chosen
        return chosen

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except Exception as e:  # noqa: BLE001 - shutting down
                log.info("closing MIDI port: %s", e)


def _command(b: Binding) -> Command:
    spec = COMMANDS[b.target]
    if spec.name == "cue":
        return Command("cue", b.arg, "MIDI", quantize=b.quantize or "downbeat")
    return Command(spec.name, b.arg if spec.name == "preset" else None, "MIDI")


def _reason(e: ValidationError) -> str:
    return str(e.errors()[0]["msg"]).removeprefix("Value error, ")


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[-1]
