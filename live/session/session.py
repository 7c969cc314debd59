"""The live session: four loops that never wait on each other, wired to one board of slots.

    audio callback ──▶ ring buffer ──▶ feature loop ──▶ features ─────────────────────┐
                            │                    └─ every block: transitions (router)│
                            └─ every hop ─▶ conditioning loop ─▶ conditioning         │
                                                                   │                 │
                                          render loop (newest of both) ─▶ frames     │
                                                                   │                 │
                 display loop (main thread): newest frame + newest features → compositor → window
                                             keys, preset changes, the render watchdog

Each loop is a small class with its slots named (live/session/*_loop.py); the preset router
(router.py) routes each preset change to the stages that own its parts; the fault boundary
(faults.py) turns anything a stage throws into a HUD line. Every dependency is injected (source,
tracker, stages, display, builder) so tests run the real loops with fakes.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from live.screen.compositor import Compositor
from live.screen.gl_compositor import make_compositor
from live.session.anticipate import Anticipation
from live.session.clock import Clock
from live.session.factory import Builder, Stages
from live.screen.hud import HudState
from live.presets.playlist import ShowList
from live.presets.schema import Preset
from live.session.conditioning_loop import ConditioningLoop
from live.session.display_loop import DisplayLoop
from live.session.faults import cap_malloc_arenas
from live.session.feature_loop import FeatureLoop
from live.session.rebuilder import Rebuilder
from live.session.render_loop import RenderLoop
from live.session.router import PresetRouter
from live.session.state import Board, SessionConfig, SessionReport
from live.session.show import ShowOptions, ShowSpec, resolve
from live.session.stages import Output, Source, Tracker

if TYPE_CHECKING:
    from live.control.rig import Rig
    from live.schedule.runtime import ShowDirection

log = logging.getLogger(__name__)


class Session:
    """Runs the show until quit, window close, Ctrl-C, `duration`, or the track's end.

    `stages` are the built renderer and understanding for `spec` (live/session/factory.py); `show` is what
    the preset keys and transitions step through (a playlist, or the library); `options` resolve the
    presets it switches to. `builder` makes replacement stages in the background.
    """

    def __init__(self, source: Source, tracker: Tracker, stages: Stages, spec: ShowSpec, display: Output,
                 show: ShowList, options: ShowOptions, config: SessionConfig | None = None,
                 builder: Builder | None = None, compositor: Compositor | None = None,
                 clock: Clock | None = None) -> None:
        cfg = self.config = config or SessionConfig()
        self.clock = clock or Clock()  # the wall clock; a SteppedClock where timing must not depend on load
        self.source, self.tracker, self.display = source, tracker, display
        self.board = Board(HudState(renderer_reason=spec.reason))
        self.board.anticipation = Anticipation(1.0 / max(1.0, cfg.max_fps), cfg.anticipate)
        self.compositor = compositor or make_compositor(cfg.width, cfg.height, spec.compositor.reactivity,
                                                        spec.compositor.crossfade_ms, spec.compositor.max_flashes_per_s)
        self.rebuilder = Rebuilder(builder or Builder(), self.board.stop)
        tracker_lock = threading.Lock()
        self.router = PresetRouter(show, spec, options, self.board, cfg, self.compositor)
        self.feature_loop = FeatureLoop(source, tracker, tracker_lock, self.board, cfg, on_features=self.router.step)
        self.conditioning_loop = ConditioningLoop(source, stages.understanding, spec, self.board, cfg, self.rebuilder)
        self.render_loop = RenderLoop(source, stages.render, spec, self.board, cfg, self.compositor, self.rebuilder,
                                      self.clock)
        self.display_loop = DisplayLoop(source, tracker, tracker_lock, display, self.compositor, self.board, cfg,
                                        self.router, self.render_loop, self.feature_loop, self.clock)
        self._threads: list[threading.Thread] = []

    # -- what tests and the CLI read ----------------------------------------------------------------

    @property
    def report(self) -> SessionReport:
        return self.board.report

    @property
    def state(self) -> HudState:
        return self.board.state

    @property
    def spec(self) -> ShowSpec:
        return self.router.spec

    @property
    def preset(self) -> Preset:
        return self.router.preset

    def attach_rig(self, rig: Rig | None) -> None:
        """OSC / MIDI / Link / video out (live/control/rig.py): the loops call it where it hooks in."""
        self.board.rig = rig

    def attach_direction(self, direction: ShowDirection | None) -> None:
        """--schedule / --lyrics (live/schedule/runtime.py): style, lyrics and knobs over time."""
        self.board.direction = direction
        if direction is not None:
            self.board.anticipation.set_changes([t for t, _ in direction.changes()])
            direction.attach(self.conditioning_loop.understanding)
            direction.set_base(self.router.preset)

    def stop_rig(self) -> None:
        if self.board.rig is not None:
            self.board.rig.stop()

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        self.board.stop.clear()
        self.display_loop.started_at = self.clock.monotonic()
        self.display.open()
        self.source.start()
        self._spawn("features", self.feature_loop.run)
        self._spawn("conditioning", self.conditioning_loop.run)
        self.render_loop.start()
        self.rebuilder.start()
        self.router.watch(self.router.paths[self.router.transitions.state.index])
        if self.board.direction is not None and self.config.hot_reload:
            self.board.direction.watch(self.board.state.set_error)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        t = threading.Thread(target=target, name=f"beatcanvas-{name}", daemon=True)
        t.start()
        self._threads.append(t)

    def _workers(self) -> list[threading.Thread]:
        return self._threads + self.render_loop.threads

    def stop(self) -> None:
        """Ends everything within about half a second: workers are daemons, each joined briefly;
        one stuck in a long render is left to die with the process."""
        self.board.close()
        self.clock.close()
        self.rebuilder.wake()
        self.router.stop_watching()
        if self.board.direction is not None:
            self.board.direction.stop()
        deadline = time.monotonic() + 0.5
        for t in self._workers():
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                log.info("%s still busy at shutdown; leaving it (daemon)", t.name)
        try:
            self.source.stop()
        except Exception as e:  # noqa: BLE001 - shutting down: report, don't raise
            log.warning("stopping the audio source: %s", e)
        self.display.close()

    def join_workers(self, timeout: float = 5.0) -> bool:
        """After `stop`: wait for a worker still inside a render (torch aborts the process if
        the interpreter exits under a running kernel). The window and sound are already gone, so
        the show has ended for the audience; this only tidies the exit. True when all are done."""
        deadline = time.monotonic() + timeout
        for t in self._workers():
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._workers())

    def run(self) -> SessionReport:
        """Start, run the display loop on this (main) thread until the show ends, stop. Ctrl-C asks
        the show to stop (`_stop_on_ctrl_c`); a second one interrupts at once."""
        restore = self._stop_on_ctrl_c()
        try:
            self.start()
            self.display_loop.run()
        except KeyboardInterrupt:
            self.report.interrupted = True
        finally:
            restore()
            self.stop()
            self.display_loop.finish()
        return self.report

    def _stop_on_ctrl_c(self) -> Callable[[], None]:
        """While the show runs on the main thread, Ctrl-C (SIGINT) sets the stop flag the loops watch
        instead of raising KeyboardInterrupt wherever the main thread happens to be: raised between a
        lock's acquire and its `with` body it leaves the lock held, and the shutdown that needs that
        lock waits forever (seen under load: a Ctrl-C'd show that never exited). The first Ctrl-C
        restores Python's handler, so a second one still breaks out of a stuck show. Returns the undo."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def on_ctrl_c(signum: int, frame: object) -> None:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.report.interrupted = True
            self.board.stop.set()

        previous = signal.signal(signal.SIGINT, on_ctrl_c)

        def restore() -> None:
            signal.signal(signal.SIGINT, previous)

        return restore

    def request_stop(self) -> None:
        self.board.stop.set()


def build_session(source: Source, tracker: Tracker, show: ShowList, options: ShowOptions, display: Output,
                  config: SessionConfig | None = None, spec: ShowSpec | None = None,
                  builder: Builder | None = None) -> Session:
    """A session as `play` makes it: the show's first preset resolved (unless `spec` is given), its
    stages built (the models load here), the rest wired."""
    cap_malloc_arenas()  # before the loops' threads start (live/session/faults.py)
    spec = spec or resolve(show.presets[show.start], options)
    builder = builder or Builder()
    return Session(source, tracker, builder.build(spec), spec, display, show, options, config, builder)
