"""The preset router: which preset is on, and every change of it routed to the stages that own it.

A preset changes four ways: a transition (auto-advance or a beat-gated hard cut, stepped with every
block of features by the feature loop), a key (←/→, 0–9), a hot-reloaded edit of its file, or a
playlist. Each becomes a pending change; the display loop applies it (`apply_pending`): the preset is
resolved into a `ShowSpec` (live/session/show.py), the compositor takes its part here (and a soft cut starts
its fade), and the spec goes on the `specs` slot, where the conditioning and render loops each apply
their own part between steps — in place when they can, rebuilding in the background when they must.
The log says what changed.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from engine.errors import BeatcanvasError
from engine.directing.quantize import Quantize, Queued, land, queued_text
from engine.types import BeatGrid, Features
from live.screen.compositor import Compositor
from live.presets.watch import PresetWatcher
from live.presets.playlist import ShowList
from live.presets.schema import Preset
from live.presets.transitions import TransitionState
from live.session.state import Board, SessionConfig
from live.session.show import ShowOptions, ShowSpec, resolve

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pending:
    preset: Preset
    index: int
    fade_s: float = 0.0  # > 0: a soft cut over this long
    why: str = ""
    lands: float = 0.0  # quantised (the left preset's transitions.quantize): on screen at this audio time


class PresetRouter:
    def __init__(self, show: ShowList, spec: ShowSpec, options: ShowOptions, board: Board, config: SessionConfig,
                 compositor: Compositor) -> None:
        self.show, self.spec, self.options = show, spec, options
        self.board, self.config, self.compositor = board, config, compositor
        self.transitions = show.transitioner()
        self.paths = list(show.paths)
        self._lock = threading.Lock()
        self._pending: Pending | None = None
        self._t = 0.0  # the audio time of the newest features
        self._watcher: PresetWatcher | None = None
        self._watched: Path | None = None
        self.events: list[tuple[float, str, str, bool]] = []  # (audio time, preset, why, on a beat)
        self._beat = False  # the newest features' beat flag
        self._grid: BeatGrid | None = None  # the newest features' beat grid (where a switch is quantised to)
        board.state.preset = self._label(spec.name)

    # -- from the loops -----------------------------------------------------------------------------

    def step(self, features: Features) -> None:
        """Feature loop: every block, so a hard cut lands on the beat that triggered it."""
        with self._lock:
            self._t, self._beat, self._grid = features.t, features.beat, features.grid
            state = self.transitions.step(features.t, features)
            if state.event is not None:
                self._queue(state)

    def switch(self, step: int | None = None, slot: int | None = None, index: int | None = None,
               quantize: str = "") -> None:
        """Keys: ←/→ (`step`) and 0–9 (`slot`, 1 = first, 0 = tenth); soft or immediate as the preset
        being left says (`transitions.switch`), quantised as it says unless `quantize` (a cue) is given."""
        with self._lock:
            n = len(self.transitions.presets)
            if index is None and slot is not None:
                index = (slot - 1) % 10
                if index >= n:
                    raise BeatcanvasError(f"preset slot {slot} is empty ({n} presets)")
            elif index is None:
                index = self.transitions.state.index + (step or 1)
            self._queue(self.transitions.switch_to(index, self._t), quantize)

    def reloaded(self, path: Path, preset: Preset) -> None:
        """Preset watcher thread: a valid edit of `path`."""
        with self._lock:
            index = self.transitions.state.index
            file = self.paths[index]
            if file is None or file.resolve() != path:
                return  # the show moved on to another preset meanwhile
            self.transitions.update(index, preset)
            self._pending = Pending(preset, index, why="edited")

    @property
    def preset(self) -> Preset:
        """The preset on show (the rig's knobs start from it)."""
        with self._lock:
            return self.transitions.presets[self.transitions.state.index]

    def edited(self, preset: Preset, why: str) -> None:
        """A knob changed from outside the file (OSC, MIDI): applied like a hot-reloaded edit."""
        with self._lock:
            index = self.transitions.state.index
            self.transitions.update(index, preset)
            self._pending = Pending(preset, index, why=why)

    def switch_named(self, name: str, quantize: str = "") -> None:
        """OSC `/beatcanvas/preset "name"`: a preset of this show by name; `/beatcanvas/cue/preset "name"
        downbeat`: the same, quantised to the boundary the cue names."""
        with self._lock:
            names = [p.name for p in self.transitions.presets]
        if name not in names:
            raise BeatcanvasError(f"no preset named {name!r} in this show: {', '.join(names)}")
        self.switch(index=names.index(name), quantize=quantize)

    def _queue(self, state: TransitionState, quantize: str = "") -> None:
        fade = state.fade_s if state.previous is not None else 0.0
        q = Quantize.parse(quantize or self.spec.transitions.quantize)  # a cue's own, else the preset being left's
        lands = land(q, self._t, self._grid) - 0.5 * fade if q.on else 0.0  # a soft cut's middle on the beat
        self._pending = Pending(state.preset, state.index, fade, state.event or "", lands)
        on_beat = self._beat or self.transitions.in_beat_hit  # a hard cut: on its beat's kick
        self.events.append((state.t, state.preset.name, state.event or "", on_beat))
        del self.events[:-100]

    # -- the display loop ---------------------------------------------------------------------------

    def apply_pending(self, now: float) -> None:
        """The pending change, if it is due: a quantised switch is applied when a render started now
        would be seen on its beat (the measured render latency before it, live/session/anticipate.py)."""
        with self._lock:
            pending = self._pending
            if pending is not None and pending.lands:
                a = self.board.anticipation
                seen = a.routed_by(self._t)
                if seen < pending.lands:
                    self.board.state.queued = queued_text(
                        Queued(f"preset {pending.preset.name}", self._t, pending.lands), self._t, self._grid)
                    return
                self.board.state.queued = ""
            self._pending = None
        if pending is None:
            return
        spec = resolve(pending.preset, self.options)
        parts = spec.changed(self.spec)
        old, self.spec = self.spec, spec
        if spec.compositor != old.compositor:
            self.compositor.configure(spec.compositor.reactivity, spec.compositor.crossfade_ms,
                                      spec.compositor.max_flashes_per_s)
        if pending.lands:  # its first frame goes up at `lands`, and the soft cut begins with it (display loop)
            with self.board.anticipation.lock:
                self.board.anticipation.add_change(pending.lands, pending.fade_s)
                self.board.specs.put(spec)  # the render loop takes the spec and its look together
        else:
            if pending.fade_s > 0:
                self.compositor.begin_cut(now, pending.fade_s)
            if "render" in parts or "understanding" in parts:
                self.board.specs.put(spec)
        self.board.report.presets_applied += 1
        state = self.board.state
        state.preset, state.message = self._label(spec.name), ""
        log.info("preset %s applied (%s%s)", spec.name, pending.why or "switch",
                 f"; changed: {', '.join(parts)}" if parts else "; nothing changed")
        self.watch(self.paths[pending.index], pending.preset)

    def direct(self, preset: Preset) -> None:
        """A schedule's knobs at this instant (display loop, every frame of a directed show): each part
        that changed goes to the stage that owns it, as an edit's would, without counting as a preset
        change (live/schedule/runtime.py)."""
        spec = resolve(preset, self.options)
        parts = spec.changed(self.spec)
        self.spec = spec
        if "compositor" in parts:
            self.compositor.configure(spec.compositor.reactivity, spec.compositor.crossfade_ms,
                                      spec.compositor.max_flashes_per_s)
        if "render" in parts or "understanding" in parts:
            self.board.specs.put(spec)

    def watch(self, path: Path | None, current: Preset | None = None) -> None:
        """Hot-reload the file of the preset on show (none for a preset without a file)."""
        if not self.config.hot_reload or path is None:
            return
        resolved = path.resolve()
        if resolved == self._watched:
            return
        self.stop_watching()
        self._watched = resolved
        self._watcher = PresetWatcher(resolved, lambda p: self.reloaded(resolved, p), self._watch_error, current=current)
        self._watcher.start()

    def stop_watching(self) -> None:
        if self._watcher is not None:
            self._watcher.stop(timeout=0.2)
        self._watcher, self._watched = None, None

    def _watch_error(self, message: str) -> None:
        self.board.state.set_error(message)

    def _label(self, name: str) -> str:
        return f"{name} · playlist {self.show.name}" if self.show.name else name
