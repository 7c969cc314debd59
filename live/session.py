"""The live session: four loops that never wait on each other.

    audio callback ──▶ ring buffer ──▶ feature thread ──▶ features slot ─┐
                            │                                            │
                            └─ every hop ─▶ conditioning worker ─▶ conditioning slot
                                                                         │
                                      render worker (newest of both) ─▶ frame slot
                                                                         │
                 display loop (main thread): newest frame + newest features → compositor → window

Hand-offs are `LatestSlot`s: a slow stage drops work, it never builds latency. Nothing a
performer or the machine does wrong ends the show: render errors are logged and retried with
back-off while the last frame stays up, CUDA out-of-memory steps the renderer down when the preset
allows it, a vanished input device is reopened, a broken preset edit is refused.

Every dependency is injected (source, tracker, understanding, renderer, preset, display) so tests
run the real loops with fakes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pygame

from engine.errors import BeatcanvasError
from engine.types import Conditioning, Features, Frame
from live.compositor import Compositor
from live.hud import Hud, HudState
from live.keys import Action, action_for
from live.slots import LatestSlot

log = logging.getLogger(__name__)

# (renderer, preset) → a smaller renderer, or None when it cannot step down further.
StepDown = Callable[[Any, Any], Any]
# preset → (renderer, understanding | None): rebuild after a preset switch changes the model.
Rebuild = Callable[[Any], tuple[Any, Any]]


@dataclass
class SessionConfig:
    """Knobs of the runtime itself (the look is the preset's)."""

    width: int = 1280  # composition size; the display scales it to the window
    height: int = 720
    hop_s: float = 0.5  # conditioning worker period
    max_fps: float = 60.0  # frame cap when vsync is unavailable (and a ceiling when it is)
    # Renders beyond this are wasted CPU (the prepare scale alone is ~3 ms): the crossfade fills
    # the gaps. A GPU renderer faster than this just idles.
    max_render_fps: float = 30.0
    duration: float | None = None  # stop after this many seconds (wall clock)
    stop_when_finished: bool = True  # a file source that ends ends the session
    backoff_s: float = 0.25  # first retry delay after a render/conditioning error; doubles
    backoff_max_s: float = 5.0
    reopen_every_s: float = 1.0  # how often to retry a lost input device
    feature_period_s: float = 0.005  # how often the feature thread polls the ring
    screenshots_dir: Path = field(default_factory=lambda: Path("screenshots"))
    hud: bool = True
    hot_reload: bool = True
    renderer_reason: str = ""  # select_renderer's one-line reason, shown in the HUD


@dataclass
class SessionReport:
    """What happened, for the CLI summary, the benchmark and tests."""

    display_frames: int = 0
    frames_rendered: int = 0
    frames_shown: int = 0  # distinct rendered frames handed to the compositor
    render_errors: int = 0
    conditioning_steps: int = 0
    conditioning_errors: int = 0
    overflows: int = 0
    reopens: int = 0
    screenshots: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    display_fps: float = 0.0
    latency_ms_median: float | None = None
    latency_ms_p95: float | None = None
    interrupted: bool = False
    last_error: str = ""


def is_out_of_memory(e: BaseException) -> bool:
    """CUDA OOM in any of its spellings (torch.cuda.OutOfMemoryError, or a RuntimeError from an
    older path / another back-end that says so)."""
    try:
        import torch

        if isinstance(e, torch.cuda.OutOfMemoryError):
            return True
    except Exception:  # noqa: BLE001 - torch missing or odd build: fall back to the message
        pass
    return isinstance(e, (RuntimeError, MemoryError)) and "out of memory" in str(e).lower()


class Session:
    """Runs the show until quit, window close, Ctrl-C, `duration`, or the track's end.

    `source` has start(), stop(), clock(), .ring (latest(seconds) -> Window), .finished and
    optionally .error (set by its callback when the device disappears) and .stats.
    `tracker` has process(block, t) -> Features and tap(t). `understanding` has step(window) ->
    Conditioning, or is None (the renderer gets conditioning=None). `display` is a
    `live.display.Display`.
    """

    def __init__(
        self,
        source: Any,
        tracker: Any,
        renderer: Any,
        preset: Any,
        display: Any,
        understanding: Any = None,
        config: SessionConfig | None = None,
        preset_path: str | Path | None = None,
        step_down: StepDown | None = None,
        rebuild: Rebuild | None = None,
        compositor: Compositor | None = None,
        direction: Any = None,  # directing (issue 17): a live.schedule.runtime.ShowDirection
    ) -> None:
        self.source = source
        self.tracker = tracker
        self.renderer = renderer
        self.understanding = understanding
        self.preset = preset
        self.display = display
        self.config = config or SessionConfig()
        self.preset_path = Path(preset_path) if preset_path else None
        self.step_down = step_down
        self.rebuild = rebuild
        cfg = self.config
        self.compositor = compositor or Compositor(
            cfg.width, cfg.height, getattr(preset, "reactivity", None), _crossfade_ms(preset)
        )
        self.hud = Hud(visible=cfg.hud)
        self.state = HudState(
            preset=getattr(preset, "name", ""),
            renderer=getattr(renderer, "name", type(renderer).__name__),
            renderer_reason=cfg.renderer_reason,
        )
        self.report = SessionReport()
        self.direction = direction  # directing (issue 17)
        self._directed_preset: Any = None
        if direction is not None:
            direction.attach(understanding)

        self.features = LatestSlot[Features]()
        self.conditioning = LatestSlot[Conditioning]()
        self.frames = LatestSlot[tuple[Frame, pygame.Surface]]()

        self._stop = threading.Event()
        self._tracker_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._watcher: Any = None
        self._pending_preset: tuple[Any, Path | None] | None = None
        self._preset_lock = threading.Lock()
        self._render_times: deque[float] = deque(maxlen=30)
        self._latencies: list[float] = []
        self._frozen = False
        self._blackout = False
        self._screenshot_requested = False
        self._started_at = 0.0
        self._source_lost = False
        self._last_feature_t: float | None = None
        self._skips = 0  # times the feature thread fell a whole ring behind

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._started_at = time.monotonic()
        self.display.open()
        self.source.start()
        for name, target in (("features", self._feature_loop), ("render", self._render_loop)):
            self._spawn(name, target)
        if self.understanding is not None:
            self._spawn("conditioning", self._conditioning_loop)
        if self.config.hot_reload and self.preset_path is not None:
            self._watch(self.preset_path)
        if self.direction is not None and self.config.hot_reload:  # directing (issue 17)
            self.direction.watch(self.state.set_error)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        t = threading.Thread(target=target, name=f"beatcanvas-{name}", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        """Ends everything within about half a second: workers are daemons, each joined briefly;
        one stuck in a long render is left to die with the process."""
        self._stop.set()
        for slot in (self.features, self.conditioning, self.frames):
            slot.close()
        if self._watcher is not None:
            self._watcher.stop(timeout=0.2)
        if self.direction is not None:  # directing (issue 17)
            self.direction.stop()
        deadline = time.monotonic() + 0.5
        for t in self._threads:
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
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def run(self) -> SessionReport:
        """Start, run the display loop on this (main) thread until the show ends, stop."""
        self.start()
        try:
            self._display_loop()
        except KeyboardInterrupt:
            self.report.interrupted = True
        finally:
            self.stop()
            self._finish_report()
        return self.report

    def request_stop(self) -> None:
        self._stop.set()

    # -- preset -----------------------------------------------------------------------------------

    def _watch(self, path: Path) -> None:
        from live.preset_watch import PresetWatcher

        if self._watcher is not None:
            self._watcher.stop(timeout=0.2)
        self._watcher = PresetWatcher(path, self.set_preset, self._preset_error)
        self._watcher.start()

    def _preset_error(self, message: str) -> None:
        self.state.set_error(message)

    def set_preset(self, preset: Any, path: Path | None = None) -> None:
        """Apply a preset from any thread; the display loop takes it on its next frame."""
        with self._preset_lock:
            self._pending_preset = (preset, path)

    def _apply_pending_preset(self) -> None:
        with self._preset_lock:
            pending, self._pending_preset = self._pending_preset, None
        if pending is None:
            return
        preset, path = pending
        old = self.preset
        self.preset = preset
        self.compositor.configure(getattr(preset, "reactivity", None), _crossfade_ms(preset))
        if self.direction is not None:  # directing (issue 17): the schedule now directs this preset
            self.direction.set_base(preset)
        self.state.preset = getattr(preset, "name", "")
        self.state.message = ""
        if path is not None and path != self.preset_path:
            self.preset_path = path
            if self.config.hot_reload:
                self._watch(path)
        changed = [g for g in ("model", "conditioning") if getattr(old, g, None) != getattr(preset, g, None)]
        if changed:
            for obj in (self.understanding, self.renderer):
                apply = getattr(obj, "apply_preset", None)
                if apply is not None:
                    try:
                        apply(preset)
                    except Exception as e:  # noqa: BLE001
                        self.state.set_error(f"applying preset: {e}")
            if self.rebuild is not None and "model" in changed:
                self._rebuild_wanted = preset
        log.info("preset %s applied", getattr(preset, "name", "?"))

    _rebuild_wanted: Any = None

    def switch_preset(self, step: int | None = None, slot: int | None = None) -> None:
        """←/→ and 0–9: load another preset from the library (errors go to the HUD)."""
        try:
            from live.presets.library import list_presets, load_preset

            infos = [i for i in list_presets() if getattr(i, "error", None) is None]
            if not infos:
                raise BeatcanvasError("no presets found")
            names = [i.name for i in infos]
            if slot is not None:
                index = (slot - 1) % 10
                if index >= len(infos):
                    self.state.set_error(f"preset slot {slot} is empty ({len(infos)} presets)")
                    return
            else:
                cur = getattr(self.preset, "name", "")
                index = (names.index(cur) + (step or 1)) % len(infos) if cur in names else 0
            info = infos[index]
            self.set_preset(load_preset(info.path), Path(info.path))
        except BeatcanvasError as e:
            self.state.set_error(str(e))

    # -- audio → features -------------------------------------------------------------------------

    def _feature_loop(self) -> None:
        cfg = self.config
        sr = getattr(self.tracker, "sample_rate", 48_000)
        next_reopen = 0.0
        while not self._stop.is_set():
            try:
                err = getattr(self.source, "error", None)
                if err:
                    raise BeatcanvasError(str(err))
                if not cfg.stop_when_finished and getattr(self.source, "finished", False):
                    # a live input whose stream stopped by itself: the device went away
                    raise BeatcanvasError("the audio input stopped (device unplugged?)")
                if self._source_lost:  # it came back
                    self._source_lost = False
                    self.state.message = ""
                    log.info("audio input is back")
                self._pull_features(sr)
            except Exception as e:  # noqa: BLE001 - a lost device must not end the show
                now = time.monotonic()
                if not self._source_lost:
                    self._source_lost = True
                    log.warning("audio input lost: %s", e)
                    self.state.set_error(f"audio input lost: {e}")
                    self.state.message = "audio input lost; reopening…"
                if now >= next_reopen:
                    next_reopen = now + cfg.reopen_every_s
                    self._reopen_source()
            self._stop.wait(cfg.feature_period_s)

    def _reopen_source(self) -> None:
        try:
            try:
                self.source.stop()
            except Exception:  # noqa: BLE001 - it is already broken
                pass
            self.source.start()
            self.report.reopens += 1
            self._last_feature_t = None
            log.info("audio input reopened")
        except Exception as e:  # noqa: BLE001
            log.info("reopen failed: %s", e)

    def _pull_features(self, sr: int) -> None:
        """Feed every sample written since the last call to the tracker; if we fell more than a
        ring's length behind (overflow), skip to the newest audio."""
        ring = self.source.ring
        clock = float(self.source.clock())
        last = self._last_feature_t
        want = 0.1 if last is None else min(10.0, max(0.02, clock - last + 0.05))
        window = ring.latest(want)
        if last is not None:
            gap = window.t_end - last
            if gap > window.duration + 1e-6:
                if want < 10.0:
                    window = ring.latest(min(10.0, gap + 0.05))
                    gap = window.t_end - last
                if gap > window.duration + 1e-6:
                    self._skips += 1
                    log.warning("features fell %.1f s behind the audio; skipping ahead", gap)
            n = int(round(min(gap, window.duration) * sr))
        else:
            n = len(window.samples)
        if n <= 0:
            return
        block = np.asarray(window.samples[-n:], dtype=np.float32)
        with self._tracker_lock:
            feats = self.tracker.process(block, window.t_end)
        self._last_feature_t = window.t_end
        if self.direction is not None:  # directing (issue 17): live input grows the bar grid
            self.direction.observe(feats)
        self.features.put(feats)
        self.report.overflows = self._skips + int(_stat(self.source, "overflows") or 0)

    # -- conditioning ----------------------------------------------------------------------------

    def _conditioning_loop(self) -> None:
        cfg = self.config
        backoff = 0.0
        while not self._stop.is_set():
            t0 = time.monotonic()
            understanding = self.understanding
            try:
                window = self.source.ring.latest(10.0)
                cond = understanding.step(window)
                self.conditioning.put(cond)
                self.report.conditioning_steps += 1
                labels = getattr(cond, "labels", None) or {}
                self.state.labels = sorted(labels.items(), key=lambda kv: -kv[1])[:3]
                backoff = 0.0
            except Exception as e:  # noqa: BLE001
                self.report.conditioning_errors += 1
                backoff = min(cfg.backoff_max_s, max(cfg.backoff_s, backoff * 2))
                log.warning("conditioning failed (retry in %.2f s): %s", backoff, e)
                self.state.set_error(f"conditioning: {e}")
            wait = max(cfg.hop_s - (time.monotonic() - t0), backoff)
            self._stop.wait(wait)

    # -- rendering --------------------------------------------------------------------------------

    def _render_loop(self) -> None:
        cfg = self.config
        backoff = 0.0
        features_seen = 0
        min_gap = 1.0 / max(1e-3, min(cfg.max_render_fps, cfg.max_fps))
        last_render = 0.0
        while not self._stop.is_set():
            wait = last_render + min_gap - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                break
            last_render = time.monotonic()
            if self._rebuild_wanted is not None and self.rebuild is not None:
                self._do_rebuild()
            # Render from the newest of everything; wait briefly for fresh features so a fast
            # renderer does not spin on unchanged input.
            got = self.features.wait_newer(features_seen, timeout=0.1)
            if self._stop.is_set():
                break
            if got is None:
                continue
            features_seen = got[0]
            features = got[1]
            cond = self.conditioning.get()[1]
            renderer = self.renderer
            try:
                t = float(self.source.clock())
            except Exception:  # noqa: BLE001 - a lost source; render on its features' time
                t = features.t
            try:
                if self.direction is not None:  # directing (issue 17): schedule + lyrics, exact per render
                    cond = self.direction.condition(cond, self.direction.at(t))
                frame = renderer.render(cond, features, t)
                surface = self.compositor.prepare(frame)  # the costly scale, off the display loop
            except Exception as e:  # noqa: BLE001 - the show goes on
                self.report.render_errors += 1
                if is_out_of_memory(e):
                    self._out_of_memory(renderer, e)
                else:
                    log.warning("render failed: %s", e, exc_info=log.isEnabledFor(logging.DEBUG))
                    self.state.set_error(f"render: {e}")
                backoff = min(cfg.backoff_max_s, max(cfg.backoff_s, backoff * 2))
                self._stop.wait(backoff)
                continue
            backoff = 0.0
            self.frames.put((frame, surface))
            self.report.frames_rendered += 1
            self._render_times.append(time.monotonic())
            self.state.frames_rendered = self.report.frames_rendered

    def _out_of_memory(self, renderer: Any, e: BaseException) -> None:
        log.warning("out of memory in %s: %s", getattr(renderer, "name", "renderer"), e)
        allowed = bool(getattr(getattr(self.preset, "model", None), "allow_downscale", True))
        smaller = None
        if allowed and self.step_down is not None:
            try:
                smaller = self.step_down(renderer, self.preset)
            except Exception as e2:  # noqa: BLE001
                log.warning("stepping down failed: %s", e2)
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:  # noqa: BLE001
            pass
        if smaller is not None:
            self.renderer = smaller
            self.state.renderer = getattr(smaller, "name", self.state.renderer)
            what = f"{getattr(smaller, 'width', '?')}x{getattr(smaller, 'height', '?')}"
            steps = getattr(smaller, "steps", None)
            if steps is not None:
                what += f", {steps} steps"
            self.state.message = f"GPU out of memory: stepped down to {what}"
        elif not allowed:
            self.state.message = "GPU out of memory: the preset forbids stepping down (model.allow_downscale)"
        else:
            self.state.message = "GPU out of memory: cannot step down further; retrying"
        self.state.set_error("CUDA out of memory")

    def _do_rebuild(self) -> None:
        preset, self._rebuild_wanted = self._rebuild_wanted, None
        self.state.message = f"loading models for preset {getattr(preset, 'name', '')}…"
        try:
            renderer, understanding = self.rebuild(preset)
        except Exception as e:  # noqa: BLE001 - keep the old models
            self.state.message = ""
            self.state.set_error(f"could not switch models: {e}")
            return
        self.renderer = renderer
        self.understanding = understanding
        if self.direction is not None and understanding is not None:  # directing (issue 17)
            self.direction.attach(understanding)
        self.state.renderer = getattr(renderer, "name", "")
        self.state.message = ""
        if understanding is not None and not any(t.name == "beatcanvas-conditioning" for t in self._threads):
            self._spawn("conditioning", self._conditioning_loop)

    # -- display ----------------------------------------------------------------------------------

    def _display_loop(self) -> None:
        cfg = self.config
        clock = pygame.time.Clock()
        frame_seen = 0
        fps_ema = 0.0
        last = time.monotonic()
        while not self._stop.is_set():
            for event in self.display.events():
                self.display.handle(event)
                action = action_for(event)
                if action is not None:
                    self._act(action)
            self._apply_pending_preset()
            self._direct()  # directing (issue 17)

            now = time.monotonic()
            if not self._frozen:
                got = self.frames.get_newer(frame_seen)
                if got is not None:
                    frame_seen = got[0]
                    self.compositor.push(got[1][1], now)
                    self.report.frames_shown += 1
            features = self.features.get()[1]
            picture = self.compositor.compose(features, now)
            if self._blackout:
                picture.fill((0, 0, 0))
            if self._screenshot_requested:
                self._screenshot_requested = False
                self._save_screenshot(picture)
            self._update_state(features, fps_ema)
            self.hud.draw(picture, self.state)
            self.display.present(picture)
            self.report.display_frames += 1
            self._measure_latency(features)

            clock.tick(cfg.max_fps)
            t = time.monotonic()
            dt, last = t - last, t
            if dt > 0:
                fps_ema = 1.0 / dt if fps_ema == 0 else 0.9 * fps_ema + 0.1 / dt
            if self._should_end(t):
                break

    def _direct(self) -> None:
        """Directing (issue 17): the schedule's compositor knobs and the HUD's lyric and cue, at the
        playback (or input) clock; errors go to the HUD."""
        if self.direction is None:
            return
        try:
            d = self.direction.at(float(self.source.clock()))
        except Exception as e:  # noqa: BLE001 - a lost source or a bad state must not stop the show
            self.state.set_error(f"schedule: {e}")
            return
        if d.preset is not self._directed_preset:
            self._directed_preset = d.preset
            self.compositor.configure(d.preset.reactivity, d.preset.motion.crossfade_ms)
        self.state.lyric, self.state.cue = d.sung, d.cue

    def _should_end(self, now: float) -> bool:
        cfg = self.config
        if cfg.duration is not None and now - self._started_at >= cfg.duration:
            return True
        return bool(cfg.stop_when_finished and getattr(self.source, "finished", False))

    def _measure_latency(self, features: Features | None) -> None:
        if features is None or self._source_lost:
            return
        try:
            lat = (float(self.source.clock()) - features.t) * 1000.0
        except Exception:  # noqa: BLE001
            return
        self._latencies.append(lat)
        if len(self._latencies) > 20_000:
            del self._latencies[:10_000]
        self.state.latency_ms = lat if self.state.latency_ms is None else 0.9 * self.state.latency_ms + 0.1 * lat

    def _update_state(self, features: Features | None, fps: float) -> None:
        s = self.state
        s.display_fps = fps
        times = self._render_times
        if len(times) >= 2 and times[-1] > times[0]:
            s.render_fps = (len(times) - 1) / (times[-1] - times[0])
        if times and time.monotonic() - times[-1] > 5.0:
            s.render_fps = 0.0 if len(times) < 2 else min(s.render_fps, 1.0 / (time.monotonic() - times[-1]))
        if features is not None:
            s.bpm = features.tempo_bpm
            s.beat = features.beat or features.beat_phase < 0.12
            s.valence, s.arousal = features.valence, features.arousal
        s.frozen = self._frozen

    def _act(self, action: Action) -> None:
        name = action.name
        if name == "quit":
            self._stop.set()
        elif name == "fullscreen":
            self.display.toggle_fullscreen()
        elif name == "hud":
            self.hud.visible = not self.hud.visible
        elif name == "help":
            self.hud.show_help = not self.hud.show_help
        elif name == "freeze":
            self._frozen = not self._frozen
        elif name == "blackout":
            self._blackout = not self._blackout
        elif name == "prev_preset":
            self.switch_preset(step=-1)
        elif name == "next_preset":
            self.switch_preset(step=+1)
        elif name == "slot" and action.slot is not None:
            self.switch_preset(slot=action.slot)
        elif name == "tap":
            try:
                with self._tracker_lock:
                    self.tracker.tap(float(self.source.clock()))
            except Exception as e:  # noqa: BLE001
                self.state.set_error(f"tap: {e}")
        elif name == "screenshot":
            self._screenshot_requested = True

    def _save_screenshot(self, picture: pygame.Surface) -> None:
        folder = self.config.screenshots_dir
        try:
            folder.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = folder / f"beatcanvas-{stamp}-{len(self.report.screenshots):03d}.png"
            pygame.image.save(picture, str(path))
            self.report.screenshots.append(path)
            self.state.message = f"screenshot: {path}"
            log.info("screenshot saved to %s", path)
        except (OSError, pygame.error) as e:
            self.state.set_error(f"screenshot failed: {e}")

    def _finish_report(self) -> None:
        r = self.report
        r.seconds = time.monotonic() - self._started_at
        r.display_fps = r.display_frames / r.seconds if r.seconds > 0 else 0.0
        if self._latencies:
            lat = np.asarray(self._latencies)
            r.latency_ms_median = float(np.median(lat))
            r.latency_ms_p95 = float(np.percentile(lat, 95))
        r.last_error = self.state.error


def _crossfade_ms(preset: Any) -> float:
    return float(getattr(getattr(preset, "motion", None), "crossfade_ms", 400.0))


def _stat(source: Any, key: str) -> float | None:
    stats = getattr(source, "stats", None)
    if stats is None:
        return None
    value = stats.get(key) if isinstance(stats, dict) else getattr(stats, key, None)
    return value if isinstance(value, (int, float)) else None
