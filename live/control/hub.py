"""Where every control source meets the show: a bounded inbox, drained once per display frame.

OSC and MIDI arrive on their own threads; they only `put` (like a sounddevice callback that only
copies). The display loop calls `drain(preset)`, which applies the knob changes to the preset
through the schema, in arrival order, and hands back the new preset, the commands and the refusals.
A controller that floods faster than the display drains loses its oldest messages (counted), never
the show's time.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from live.control.knobs import Command, ControlInputError, ControlItem, ControlNotice, KnobChange, apply_change

log = logging.getLogger(__name__)


@dataclass
class Drained:
    """One frame's worth of control: `preset` is None when no knob changed."""

    preset: Any = None
    changed: list[str] = field(default_factory=list)  # addresses whose value changed
    commands: list[Command] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


class ControlHub:
    """Thread-safe inbox for KnobChange / Command / ControlError items."""

    def __init__(self, capacity: int = 1024) -> None:
        self._items: deque[ControlItem] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self.dropped = 0
        self.received = 0

    def put(self, item: ControlItem) -> None:
        """Never blocks; when full, the oldest item is dropped."""
        with self._lock:
            if len(self._items) == self._items.maxlen:
                self.dropped += 1
            self._items.append(item)
            self.received += 1

    def drain(self, preset: Any) -> Drained:
        """Apply everything received since the last call to `preset`.

        Changes to one knob within a frame coalesce (a fader sends far more often than the screen
        refreshes): the newest value the schema accepts wins; refused values after it are reported.
        Each knob is validated on its own, so one bad value never costs the others."""
        with self._lock:
            items = list(self._items)
            self._items.clear()
        out = Drained()
        per_knob: dict[str, list[KnobChange]] = {}
        for item in items:
            if isinstance(item, KnobChange):
                per_knob.setdefault(item.address, []).append(item)
            elif isinstance(item, Command):
                out.commands.append(item)
            elif isinstance(item, ControlNotice):
                out.notices.append(item.message)
            else:
                out.errors.append(item.message)
        current = preset
        for address, changes in per_knob.items():
            for change in reversed(changes):
                try:
                    updated = apply_change(current, change)
                except ControlInputError as e:
                    out.errors.append(str(e))
                    continue
                if updated != current:
                    current = updated
                    out.changed.append(address)
                break
        if out.changed:
            out.preset = current
        for message in out.errors:
            log.warning("control: %s", message)
        return out

