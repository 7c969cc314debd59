"""Rendering: the newest features and conditioning in, the `frames` slot out — and the watchdog.

The worker renders as fast as the renderer allows (capped at `max_render_fps`), always from the newest
of everything, and applies its part of each new preset (`specs`) and negative prompt between frames.
When the renderer fails it keeps the last frame up and:

- retries at once after a one-off error, then backs off (`Backoff`);
- on CUDA out-of-memory steps down to a smaller size when the preset allows it;
- after `fallback_after` failures in a row, out-of-memory at the smallest size, or a render hung for
  `hang_s` (the watchdog, run by the display loop), hands the show to the procedural renderer, says so,
  and tries the configured renderer again in the background (`Rebuilder`, with a trial frame),
  stepping back up when it works. A hung worker is abandoned (it is a daemon) and a new one starts.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import threading
import time
from collections import deque

from engine.directing.drops import DROP_AROUSAL
from engine.render.stage import Negative, RenderStage
from engine.types import Conditioning, Features
from live.screen.compositor import Compositor
from live.session.clock import Clock
from live.session.factory import procedural_stage, smaller_size
from engine.errors import one_line
from live.session.faults import Backoff, is_out_of_memory
from live.session.rebuilder import Built, Rebuilder, RenderJob
from live.session.state import Board, SessionConfig
from live.session.show import ShowSpec
from live.session.stages import Source

log = logging.getLogger(__name__)

RETRY_MAX_S = 120.0


class RenderLoop:
    def __init__(self, source: Source, stage: RenderStage, spec: ShowSpec, board: Board, config: SessionConfig,
                 compositor: Compositor, rebuilder: Rebuilder, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.source, self.stage, self.spec = source, stage, spec
        self.board, self.config, self.compositor, self.rebuilder = board, config, compositor, rebuilder
        self.negative: Negative | None = None
        self.degraded = ""  # "", "fallback" (procedural stands in) or "smaller" (stepped down)
        self.retry_at: float | None = None
        self.retry = Backoff(config.retry_s, RETRY_MAX_S)
        self.failures = Backoff(config.backoff_s, config.backoff_max_s)
        self.awaiting_step_down = False
        self.busy_since: float | None = None
        self.durations: deque[float] = deque(maxlen=30)
        self.finished_at: deque[float] = deque(maxlen=30)
        self.generation = 0
        self.look = 0  # how many scheduled changes the spec being rendered shows
        self.threads: list[threading.Thread] = []
        self._seen = {"specs": board.specs.version, "negatives": board.negatives.version,
                      "built": rebuilder.renders.version, "features": 0}
        self._show_name()

    # -- the worker ---------------------------------------------------------------------------------

    def start(self) -> None:
        t = threading.Thread(target=self.run, args=(self.generation,), name="beatcanvas-render", daemon=True)
        self.clock.enlist(t)
        t.start()
        self.threads.append(t)

    def run(self, generation: int) -> None:
        cfg, b = self.config, self.board
        last = 0.0
        while not b.stop.is_set() and generation == self.generation:
            # The render cap is the preset's ([model] max_render_fps, resolved per device) under the display's.
            min_gap = 1.0 / max(1e-3, min(self.spec.render.max_render_fps, cfg.max_render_fps, cfg.max_fps))
            wait = last + min_gap - self.clock.monotonic()
            if wait > 0 and self.clock.wait(b.stop, wait):
                break
            last = self.clock.monotonic()
            with b.faults.guard("render setup"), b.anticipation.lock:  # the spec and its look together
                self._take_updates()
                self.look = b.anticipation.routed_look
            seen = self._seen["features"]
            with self.clock.parked(lambda: b.features.version > seen or b.stop.is_set()):
                got = b.features.wait_newer(seen, timeout=0.1)
            if got is None or self.awaiting_step_down:
                continue
            self._seen["features"] = got[0]
            self._render_once(generation, got[1], b.conditioning.get()[1])

    def _render_once(self, generation: int, features: Features, cond: Conditioning | None) -> None:
        stage, b = self.stage, self.board
        try:
            t = float(self.source.clock())
        except Exception:  # noqa: BLE001 - a lost source; render on its features' time
            t = features.t
        self.busy_since = start = self.clock.monotonic()
        a = b.anticipation
        hold = False
        try:
            clock = t
            seen = a.seen_at(t, (stage.name, stage.width, stage.height))
            if b.direction is not None:  # the schedule and lyrics, exact at the time this render is seen
                cond = b.direction.condition(cond, b.direction.at(seen))
                features, clock = b.direction.recall_render(seen, features)  # a returning section's look
                clock -= seen - t
            else:  # live: a section recognised as a return (engine/directing/live_sections.py)
                features, clock = b.recall.render(seen, features, self.spec.transitions.recall)
                clock -= seen - t
            drop, hold = a.drop_look(t, seen)  # a build's drop: its look rendered ahead (held), then for a bar
            if drop:
                features = dataclasses.replace(features, arousal=max(features.arousal, DROP_AROUSAL))
            frame = stage.render(cond, features, clock)
            a.tag(frame, self.look, t, drop)
            # A frame the similarity filter kept needs no new picture: the compositor still shows it.
            surface = None if frame.reused else self.compositor.prepare(frame)  # the costly scale, off the display loop
        except Exception as e:  # noqa: BLE001 - the show goes on
            self.busy_since = None
            if generation == self.generation:
                self._failed(e)
            return
        self.busy_since = None
        if generation != self.generation:
            return  # abandoned by the watchdog while it rendered: its frame is stale
        self.failures.succeeded()
        now = self.clock.monotonic()
        self.durations.append(now - start)
        self.finished_at.append(now)
        with b.faults.guard("render size"):
            stage.observe(now - start, b.state.display_fps)  # a shader on software GL adapts its resolution
            self._show_name()
        if surface is None:  # the similarity filter kept the last frame: nothing new to show
            b.report.frames_skipped += 1
            b.state.skip_rate = b.report.frames_skipped / max(1, b.report.frames_skipped + b.report.frames_rendered)
            return
        (b.held if hold else b.frames).put((frame, surface))
        b.report.frames_rendered += 1
        b.state.frames_rendered = b.report.frames_rendered

    def _failed(self, e: Exception) -> None:
        b = self.board
        b.report.render_errors += 1
        if is_out_of_memory(e):
            self._out_of_memory(e)
            return
        b.faults.report("render", e)
        delay = self.failures.failed()
        if self.failures.failures >= self.config.fallback_after and self.degraded != "fallback":
            self.fall_back(f"{self.failures.failures} render failures in a row ({one_line(e)})")
        elif delay:
            b.stop.wait(delay)

    # -- updates between frames ---------------------------------------------------------------------

    def _take_updates(self) -> None:
        b, seen = self.board, self._seen
        got_neg = b.negatives.get_newer(seen["negatives"])
        if got_neg is not None:
            seen["negatives"], self.negative = got_neg
        got_spec = b.specs.get_newer(seen["specs"])
        if got_spec is not None:
            seen["specs"], self.spec = got_spec
        if got_spec is not None or got_neg is not None:
            self._configure()
        built = self.rebuilder.renders.get_newer(seen["built"])
        if built is not None:
            seen["built"] = built[0]
            self._take_built(built[1])
        if self.retry_at is not None and time.monotonic() >= self.retry_at and not self.rebuilder.pending():
            self.retry_at = None
            self.rebuilder.request_render(RenderJob(self.spec, "retry", negative=self.negative, trial_s=self.config.hang_s))

    def _configure(self) -> None:
        if self.degraded == "fallback":  # the configured renderer is being retried: retry the new one
            self.retry_at = time.monotonic()
            return
        result = self.stage.configure(self.spec.render, self.negative)
        if result.rebuild:
            log.info("preset %s: %s changed; building a new renderer", self.spec.name, ", ".join(result.rebuild))
            self.board.state.message = f"loading the renderer for preset {self.spec.name}…"
            self.rebuilder.request_render(RenderJob(self.spec, "rebuild", negative=self.negative))
        elif result.applied:
            log.info("renderer applied %s", ", ".join(result.applied))

    def _take_built(self, built: Built) -> None:
        b, why = self.board, built.job.why
        if why == "step_down":
            self.awaiting_step_down = False
        if built.stage is None:
            if why == "retry":
                self.retry_at = time.monotonic() + self.retry.failed()
                b.state.message = f"{self.spec.render.kind} still failing ({built.error}); retrying in {self.retry_at - time.monotonic():.0f} s"
            elif why == "step_down":
                self.fall_back(f"stepping down failed ({built.error})")
            else:
                b.state.message = ""
                b.state.set_error(f"could not switch renderer: {built.error}")
            return
        if built.job.spec.render != self.spec.render and why != "step_down":
            return  # built for a preset that has since changed; a newer job is on its way
        self.stage = built.stage
        if why == "retry":
            self.retry.succeeded()
            b.report.recoveries += 1
            log.info("%s is back", self.stage.name)
        self.degraded = "smaller" if why == "step_down" else ""
        self.retry_at = time.monotonic() + self.config.retry_s if why == "step_down" else None
        self.failures.succeeded()
        b.state.message = (f"GPU out of memory: stepped down to {self._size_text()}" if why == "step_down"
                           else f"{self.stage.name} is back" if why == "retry" else "")
        self._show_name()

    # -- faults -------------------------------------------------------------------------------------

    def _out_of_memory(self, e: Exception) -> None:
        b = self.board
        log.warning("out of memory in %s: %s", self.stage.name, e)
        _empty_cuda_cache()
        b.state.set_error("CUDA out of memory")
        if not self.spec.render.allow_downscale:
            b.state.message = "GPU out of memory: the preset forbids stepping down (model.allow_downscale)"
            self.failures.failed()
            return
        size = smaller_size(self.stage.width, self.stage.height)
        if size is None:
            self.fall_back("out of memory at the smallest size")
            return
        self.awaiting_step_down = True
        b.state.message = f"GPU out of memory: stepping down to {size[0]}x{size[1]}…"
        self.rebuilder.request_render(RenderJob(self.spec, "step_down", size=size, negative=self.negative))

    def fall_back(self, why: str) -> None:
        """Hand the show to the procedural renderer; try the configured one again later."""
        b = self.board
        self.stage = procedural_stage(self.spec, (self.stage.width, self.stage.height))
        self.degraded, self.awaiting_step_down = "fallback", False
        self.failures.succeeded()
        self.retry_at = time.monotonic() + self.retry.failed() + self.config.retry_s
        b.report.fallbacks += 1
        log.warning("falling back to the procedural renderer: %s", why)
        b.state.message = f"{why}: showing the procedural renderer; retrying {self.spec.render.kind} in the background"
        self._show_name()

    def watchdog(self, now: float) -> None:
        """From the display loop, every frame: say when a render is slow; abandon a hung one."""
        since = self.busy_since
        if since is None:
            return
        busy = now - since
        median = statistics.median(self.durations) if self.durations else 0.0
        if busy > max(0.5, self.config.slow_factor * median):
            self.board.state.message = f"render slow: {busy:.1f} s so far (median {median * 1000:.0f} ms)"
        if busy > self.config.hang_s:
            self.generation += 1
            self.busy_since = None
            self.fall_back(f"a render hung for {busy:.0f} s")
            self.start()

    # -- HUD ----------------------------------------------------------------------------------------

    def render_fps(self, now: float) -> float:
        times = self.finished_at
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        fps = (len(times) - 1) / (times[-1] - times[0])
        return min(fps, 1.0 / (now - times[-1])) if now - times[-1] > 5.0 else fps

    def _size_text(self) -> str:
        steps = self.stage.steps
        return f"{self.stage.width}x{self.stage.height}" + (f", {steps} steps" if steps is not None else "")

    def _show_name(self) -> None:
        self.board.state.renderer = self.stage.describe() + (" (fallback)" if self.degraded == "fallback" else "")


def _empty_cuda_cache() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001
        pass
