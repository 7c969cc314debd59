"""Where every control source meets the show: a bounded inbox, drained once per display frame.

OSC and MIDI arrive on their own threads; they only `put` (like a sounddevice callback that only
copies). The display loop calls `drain(preset)`, which applies the knob changes to the preset
through the schema, in arrival order, and hands back the new preset, the commands and the refusals.
A controller that floods faster than the display drains loses its oldest messages (counted), never
the show's time.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
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


class WarningLimiter:
    """Repeated warnings as one line each and a count: a controller that floods garbage must not
    flood the terminal. Within a window (1 s), the first message of each kind (numbers and quoted
    text blanked) is logged and at most `per_window` kinds in all; the rest are counted and said
    once the window has passed: "… and 138 more like it in the last second"."""

    def __init__(self, say: Callable[[str], None], window_s: float = 1.0, per_window: int = 5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.say, self.window_s, self.per_window, self.clock = say, window_s, per_window, clock
        self._start = -1e18
        self._kinds: dict[str, int] = {}  # kind → messages held back in this window
        self._overflow = 0  # messages of kinds past `per_window`
        self._lock = threading.Lock()

    @staticmethod
    def kind(message: str) -> str:
        return re.sub(r"'[^']*'|\"[^\"]*\"|[-+]?\d[\w.+-]*", "#", message)[:120]

    def warn(self, message: str) -> None:
        with self._lock:
            self._roll()
            kind = self.kind(message)
            if kind in self._kinds:
                self._kinds[kind] += 1
                return
            if len(self._kinds) >= self.per_window:
                self._overflow += 1
                return
            self._kinds[kind] = 0
        self.say(message)

    def flush(self) -> None:
        """Say the counts of a window that has passed (also called by `warn`)."""
        with self._lock:
            self._roll()

    def _roll(self) -> None:
        now = self.clock()
        if now - self._start < self.window_s:
            return
        held = sum(self._kinds.values())
        if held or self._overflow:
            span = "second" if self.window_s == 1.0 else f"{self.window_s:g} s"
            self.say(f"… and {held + self._overflow} more like it in the last {span}")
        self._start, self._kinds, self._overflow = now, {}, 0


class ControlHub:
    """Thread-safe inbox for KnobChange / Command / ControlError items."""

    def __init__(self, capacity: int = 1024) -> None:
        self._items: deque[ControlItem] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self.dropped = 0
        self.received = 0
        self.warnings = WarningLimiter(lambda m: log.warning("control: %s", m))

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
                except Exception as e:  # noqa: BLE001 - a value nobody foresaw costs that knob, never the frame
                    out.errors.append(f"{change.origin} {address}: {type(e).__name__}: {str(e)[:120]}; ignored")
                    continue
                if updated != current:
                    current = updated
                    out.changed.append(address)
                break
        if out.changed:
            out.preset = current
        for message in out.errors:
            self.warnings.warn(message)
        self.warnings.flush()
        return out

