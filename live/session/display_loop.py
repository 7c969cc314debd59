"""The display loop (main thread): the newest frame and features in, a picture on the window out.

Per display frame: window events and keys, the pending preset change (live/session/router.py), the
render watchdog, then the compositor's picture with the HUD on top. Every one of those runs inside
the fault boundary, so a stage's exception costs at most one frame's work, never the loop: only
quit (Q, Esc, the window's close button), the duration or the end of the track ends it.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pygame

from engine.types import Features
from live.screen.compositor import Compositor
from live.screen.hud import Hud
from live.screen.keys import Action, action_for
from engine.directing.quantize import Queued, queued_text
from live.presets.schema import Preset
from live.schedule.runtime import ShowDirection
from live.screen.pulse import PulseClock
from live.session.anticipate import LiveDrop, Tag
from live.session.clock import Clock
from live.session.feature_loop import FeatureLoop
from live.session.render_loop import RenderLoop
from live.session.router import PresetRouter
from live.session.state import Board, SessionConfig
from live.session.stages import Output, Source, Tracker

log = logging.getLogger(__name__)


class DisplayLoop:
    def __init__(self, source: Source, tracker: Tracker, tracker_lock: threading.Lock, display: Output,
                 compositor: Compositor, board: Board, config: SessionConfig, router: PresetRouter,
                 render: RenderLoop, features: FeatureLoop, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.source, self.tracker, self.tracker_lock, self.display = source, tracker, tracker_lock, display
        self.compositor, self.board, self.config = compositor, board, config
        self.router, self.render, self.feature_loop = router, render, features
        self.hud = Hud(visible=config.hud)
        self.frozen = self.blackout = self.screenshot_requested = False
        self.latencies: list[float] = []
        self.started_at = self.clock.monotonic()
        self._frame_seen = 0
        self._directed_base: Preset | None = None  # the preset the schedule directs (--schedule)
        self._directed: Preset | None = None  # the scheduled knobs last routed
        self._held: tuple[pygame.Surface, int] | None = None  # a frame waiting for its change's time, its look
        self._look = 0  # how many scheduled changes the picture shows
        self._drop_seen = 0
        self._drop_frame: pygame.Surface | None = None  # a drop's look rendered ahead, until it is judged
        self._drop_cut: LiveDrop | None = None  # the drop last cut to
        self.pulse_clock = PulseClock(config.latency_ms / 1000.0, 1.0 / max(1.0, config.max_fps))

    def run(self) -> None:
        cfg, b = self.config, self.board
        fps_ema = 0.0
        last = self.clock.monotonic()
        while not b.stop.is_set():
            self._events()
            if b.rig is not None:
                with b.faults.guard("rig"):
                    self._drain_rig()
            now = self.clock.monotonic()
            with b.faults.guard("preset"):
                self.router.apply_pending(now)
            if b.direction is not None:
                with b.faults.guard("schedule"):
                    self._direct()
            self.render.watchdog(now)
            with b.faults.guard("display"):
                self._show(now, fps_ema)
            self.clock.tick(cfg.max_fps)
            t = self.clock.monotonic()
            dt, last = t - last, t
            b.report.longest_frame_gap_s = max(b.report.longest_frame_gap_s, dt)
            if dt > 0:
                fps_ema = 1.0 / dt if fps_ema == 0 else 0.9 * fps_ema + 0.1 / dt
            if self._should_end(t):
                break

    def _events(self) -> None:
        for event in self.display.events():
            with self.board.faults.guard("window"):
                self.display.handle(event)
            action = action_for(event)
            if action is not None:
                with self.board.faults.guard(action.name.replace("_", " ")):
                    self.act(action)

    def _show(self, now: float, fps: float) -> None:
        b = self.board
        if not self.frozen:
            self._take_frame(now)
            with b.faults.guard("drop"):
                self._take_drop(now)
        features = b.features.get()[1]
        seen = self._as_seen(features)
        picture = self.compositor.compose(seen, now)
        if self.blackout:
            picture.fill((0, 0, 0))
        if b.rig is not None:  # OSC out, NDI / Spout / Syphon: the picture without the HUD
            with b.faults.guard("video out"):
                b.rig.frame(picture, features, b.state)
        if self.screenshot_requested:
            self.screenshot_requested = False
            self._save_screenshot(picture)
        self._update_state(seen, fps, now)
        self.hud.draw(picture, b.state)
        self.display.present(picture)
        b.report.display_frames += 1
        if b.report.first_frame_s is None and b.report.frames_shown:
            b.report.first_frame_s = self.clock.monotonic() - self.started_at
            log.info("first rendered frame on screen %.2f s after the display loop started", b.report.first_frame_s)
        self._measure_latency(features)

    def _take_frame(self, now: float) -> None:
        """The newest render to the compositor; one that brings a scheduled change waits for its time."""
        b, a = self.board, self.board.anticipation
        got = b.frames.get_newer(self._frame_seen)
        clock = float(self.source.clock())
        if got is not None:
            self._frame_seen = got[0]
            tag = a.arrived(got[1][0], clock)
            if not self._before_drop(tag, clock):
                self._held = (got[1][1], tag.look if tag is not None else self._look)
        if self._held is None:
            return
        surface, look = self._held
        if look > self._look and clock < a.due(look):
            return  # early: a render faster than the p95 latency
        self._held = None
        for k in range(self._look, look):  # a quantised switch's soft cut begins with its first frame
            fade = a.fade(k)
            if fade > 0:
                self.compositor.begin_cut(now, fade)
        self.compositor.push(surface, now)
        b.report.frames_shown += 1
        for k in range(self._look, look):
            b.report.change_onsets.append((a.intended(k), clock))
        self._look = max(self._look, look)

    def _before_drop(self, tag: Tag | None, clock: float) -> bool:
        """A frame of the normal look rendered before the drop that is on screen came: not shown."""
        d = self._drop_cut
        return (d is not None and tag is not None and not tag.drop and tag.started < d.decided
                and clock < d.at + d.bar_s)

    def _take_drop(self, now: float) -> None:
        """A build's drop rendered ahead (live/session/anticipate.py): cut to it on the first display
        frame the drop is heard in, at its downbeat; discard it if the drop fizzled."""
        b, a = self.board, self.board.anticipation
        got = b.held.get_newer(self._drop_seen)
        clock = float(self.source.clock())
        if got is not None:
            self._drop_seen = got[0]
            a.arrived(got[1][0], clock)
            self._drop_frame = got[1][1]
        d = a.drop
        if self._drop_frame is None or d is None or d.state == "pending":
            return
        if d.state == "fizzled":
            self._drop_frame = None
            b.report.drops.append((clock, "fizzled: held look discarded"))
            return
        if clock < d.at - a.half_frame:
            return
        self.compositor.push(self._drop_frame, now)
        self._drop_frame, self._drop_cut = None, d
        self._held = None
        b.report.frames_shown += 1
        b.report.drop_cuts.append((d.at, clock))

    def _as_seen(self, features: Features | None) -> Features | None:
        """The features re-timed to when this frame is seen and heard (live.screen.pulse.PulseClock)."""
        if features is None:
            return None
        try:
            clock = float(self.source.clock())
        except Exception:  # noqa: BLE001 - a lost source: show the features as they are
            return features
        return self.pulse_clock.at(features, clock, self.source.lead_s)

    def _calibrate(self) -> None:
        """L: one calibration tap, on the beat the performer hears."""
        features = self.board.features.get()[1]
        state = self.board.state
        if features is None or not features.grid.locked:
            state.message = "latency calibration needs a steady beat first"
            return
        offset = self.pulse_clock.calibrate_tap(features, float(self.source.clock()), self.source.lead_s)
        state.message = ("latency calibration: keep tapping on the beat you hear" if offset is None
                         else f"beat pulses now lead by {offset * 1000:+.0f} ms (L to re-measure)")
        if offset is not None:
            self.pulse_clock.reset_calibration()

    def _direct(self) -> None:
        """The schedule's knobs (routed to their stages), and the HUD's lyric and cue, at the playback
        (or input) clock."""
        direction = self.board.direction
        assert direction is not None
        base = self.router.preset
        if base is not self._directed_base:  # a preset switch or edit: the schedule now directs that one
            self._directed_base = base
            direction.set_base(base)
        a, clock = self.board.anticipation, float(self.source.clock())
        seen_at = a.routed_by(clock)  # what the renders routed now show (live/session/anticipate.py)
        d = direction.at(seen_at)
        with a.lock:
            if d.preset is not self._directed:
                self._directed = d.preset
                self.router.direct(d.preset)
            a.routed_look = a.look_at(seen_at)
        s = self.board.state
        s.lyric, s.cue = d.sung, d.cue
        s.show_t, s.sections, s.ahead = clock, direction.sections, direction.lyrics_ahead(clock)
        s.queued = self._queued(direction, clock)

    def _queued(self, direction: ShowDirection, clock: float) -> str:
        """The HUD's line for the next scheduled change and the beats until it lands."""
        ahead = [(t, what) for t, what in direction.changes() if t > clock]
        if not ahead:
            return ""
        t, what = ahead[0]
        return queued_text(Queued(what, clock, t), clock, direction.grid)

    def _drain_rig(self) -> None:
        """OSC / MIDI knobs and commands, applied through the preset router like any edit."""
        b, rig = self.board, self.board.rig
        assert rig is not None
        d = rig.drain(self.router.preset)
        if d.preset is not None:
            self.router.edited(d.preset, "OSC/MIDI")
        for c in d.commands:
            if c.name == "preset":
                self.router.switch_named(str(c.arg))
            elif c.name == "cue":  # on the next downbeat (or the boundary it names), rendered early
                self.router.switch_named(str(c.arg), quantize=c.quantize or "downbeat")
            elif c.name in ("freeze", "blackout", "hud") and isinstance(c.arg, bool):
                if c.name == "freeze":
                    self.frozen = c.arg
                elif c.name == "blackout":
                    self.blackout = c.arg
                else:
                    self.hud.visible = c.arg
            else:
                self.act(Action(c.name))
        for message in d.errors:
            b.state.set_error(message)
        if d.notices:
            b.state.message = d.notices[-1]
        b.state.rig = rig.status()

    def _should_end(self, now: float) -> bool:
        cfg = self.config
        if cfg.duration is not None and now - self.started_at >= cfg.duration:
            return True
        return bool(cfg.stop_when_finished and self.source.finished)

    def _measure_latency(self, features: Features | None) -> None:
        if features is None or self.feature_loop.lost:
            return
        try:
            lat = (float(self.source.clock()) - features.t) * 1000.0
        except Exception:  # noqa: BLE001 - a source going away: the feature loop reports it
            return
        self.latencies.append(lat)
        if len(self.latencies) > 20_000:
            del self.latencies[:10_000]
        s = self.board.state
        s.latency_ms = lat if s.latency_ms is None else 0.9 * s.latency_ms + 0.1 * lat

    def _update_state(self, features: Features | None, fps: float, now: float) -> None:
        s = self.board.state
        s.display_fps = fps
        s.render_fps = self.render.render_fps(now)
        if features is not None:
            s.bpm = features.tempo_bpm
            s.stems = features.stems.level
            s.beat = features.beat or features.beat_phase < 0.12
            s.valence, s.arousal = features.valence, features.arousal
        s.frozen = self.frozen

    def act(self, action: Action) -> None:
        """What a key asks for (live/screen/keys.py)."""
        name = action.name
        if name == "quit":
            self.board.stop.set()
        elif name == "fullscreen":
            self.display.toggle_fullscreen()
        elif name == "hud":
            self.hud.visible = not self.hud.visible
        elif name == "help":
            self.hud.show_help = not self.hud.show_help
        elif name == "freeze":
            self.frozen = not self.frozen
        elif name == "blackout":
            self.blackout = not self.blackout
        elif name in ("prev_preset", "next_preset"):
            self.router.switch(step=-1 if name == "prev_preset" else 1)
        elif name == "slot" and action.slot is not None:
            self.router.switch(slot=action.slot)
        elif name == "tap":
            with self.tracker_lock:
                self.tracker.tap(float(self.source.clock()))
            if self.board.rig is not None:  # tap sets Link's tempo when Link is on
                self.board.rig.tap(time.monotonic())
        elif name == "calibrate":
            self._calibrate()
        elif name == "learn" and self.board.rig is not None:  # M arms MIDI learn
            from live.control.knobs import Command

            self.board.rig.hub.put(Command("learn", None, "key"))
        elif name == "clear_taps":
            with self.tracker_lock:
                self.tracker.clear_taps()
            self.board.state.message = "tapped tempo released: following the detected beat"
        elif name == "screenshot":
            self.screenshot_requested = True

    def _save_screenshot(self, picture: pygame.Surface) -> None:
        b = self.board
        folder = self.config.screenshots_dir
        try:
            folder.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = folder / f"beatcanvas-{stamp}-{len(b.report.screenshots):03d}.png"
            pygame.image.save(picture, str(path))
            b.report.screenshots.append(path)
            b.state.message = f"screenshot: {path}"
            log.info("screenshot saved to %s", path)
        except (OSError, pygame.error) as e:
            b.state.set_error(f"screenshot failed: {e}")

    def finish(self) -> None:
        r = self.board.report
        r.seconds = self.clock.monotonic() - self.started_at
        r.display_fps = r.display_frames / r.seconds if r.seconds > 0 else 0.0
        if self.latencies:
            lat = np.asarray(self.latencies)
            r.latency_ms_median = float(np.median(lat))
            r.latency_ms_p95 = float(np.percentile(lat, 95))
        r.last_error = self.board.state.error
