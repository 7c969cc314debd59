"""One chunk of an export, frame by frame on the fixed clock (live/export/chunks.py says where each
chunk's stages start).

Before frame i is drawn, the audio up to sample round(t·48000) has been fed — in the same ≤10 ms
blocks the live feature thread sees — to the `FeatureTracker` and the 10 s `RingBuffer`
(live/audio/hopclock.py's `AudioFeed`); the conditioning ran on every hop of the `HopClock` ≤ t (its window
is the 10 s ending there; its tempo the tracker's); every K-th frame (`render_every`) is rendered and
pushed to the compositor, and every frame is composed, exactly as the display loop would. Nothing
waits on a wall clock, so a chunk's frames are a function of the settings alone.

Stems come from the offline separator (`engine.audio.stems.analyze_stems`, centred windows, one gain
for the track), looked up at each frame's time, so every chunk sees the same stems.
Beats come from the offline pass (`engine.audio.beatmap`, run over the whole track once), not the
live tracker: frame i is re-timed to the middle of its time on screen, t + ½/fps
(`live.screen.pulse.PulseClock`), so the pulse peaks in the frame nearest each beat (≤ ½ frame).

`Stages` are built once per process (or Ray worker) and reused for every chunk it renders: the
renderer and the understanding are reset at each chunk's warm-up, the tracker and the compositor
made fresh.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pygame

from engine.audio.beatmap import BeatMap
from engine.audio.features import FeatureTracker
from engine.audio.io import iter_audio_blocks
from engine.audio.stems import StemTrack
from engine.errors import BeatcanvasError
from engine.render.base import Renderer
from engine.render.stage import RenderStage
from engine.directing.drops import DROP_AROUSAL, DropCue, drop_changes, plan_drops, section_events
from engine.directing.grid import BarGrid
from engine.directing.quantize import LatencyMeter
from engine.types import SAMPLE_RATE, WINDOW_SECONDS, BeatGrid, Conditioning, Features, Frame, Reconfigured, Window
from engine.understanding.settings import UnderstandingSettings
from live.export.chunks import Chunk, warmup
from live.export.files import frame_path
from live.export.plan import ExportPlan, ExportSettings
from live.audio.hopclock import FEATURE_BLOCK, AudioFeed, HopClock
from live.presets.schema import Preset
from live.screen.pulse import PulseClock
from live.audio.ringbuffer import RingBuffer
from live.schedule.runtime import Directed, ShowDirection
from live.session.show import ShowSpec


def _labels(cond: Conditioning | None, top: int = 5) -> dict[str, float]:
    labels = cond.labels if cond is not None else {}
    best = sorted(labels.items(), key=lambda kv: -float(kv[1]))[:top]
    return {str(k): round(float(v), 4) for k, v in best}


def _features_record(f: Features) -> dict[str, Any]:
    """The scalars (the spectrum and waveform snapshots would make the log 20x bigger)."""
    skip = ("spectrum", "wave")
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in dataclasses.asdict(f).items() if k not in skip}



class Understands(Protocol):
    """What export needs of the understanding stage (the real one, or a test's stand-in)."""

    prompt_encoder: Any  # SDXL's text encoders, or None (a schedule's style and lyrics encode with them)

    def step(self, window: Window, features: Features | None = None) -> Conditioning: ...
    def configure(self, settings: UnderstandingSettings) -> Reconfigured: ...
    def reset(self) -> None: ...


class Composes(Protocol):
    """A compositor (live.screen.compositor.Compositor, or live.screen.gl_compositor.GLCompositor in a GL context)."""

    def push(self, frame: Any, now: float) -> None: ...
    def compose(self, features: Features | None, now: float) -> pygame.Surface: ...
    def configure(self, reactivity: Any, crossfade_ms: float, max_flashes_per_s: float | None = None) -> Reconfigured: ...
    def release(self) -> None: ...


@dataclass
class Stages:
    """What one process renders chunks with (built once; see the module docstring)."""

    renderer: Renderer | RenderStage
    understanding: Understands | None
    make_tracker: Callable[[], FeatureTracker]
    make_compositor: Callable[[], Composes]
    direction: ShowDirection | None = None
    respec: Callable[[Preset], ShowSpec] | None = None  # a scheduled preset, resolved as the stages were
    # Anticipation (engine/directing/quantize.py): a render's frame reaches the screen `latency_s` after
    # it starts (on the fixed clock; 0 = at once, as export always rendered: tests and benchmarks set
    # it to stand for a live renderer's latency), and `compensate` renders each frame for the moment it
    # will be seen (its start + the measured p95 latency), so a change lands on its own frame.
    latency_s: float = 0.0
    compensate: bool = True


Emit = Callable[[int, pygame.Surface, dict[str, Any]], None]


def render_chunk(s: ExportSettings, plan: ExportPlan, beats: BeatMap, chunk: Chunk, stages: Stages, emit: Emit,
                 wanted: Callable[[int], bool] = lambda i: True, seen: Callable[[int], None] = lambda i: None,
                 stems: StemTrack | None = None) -> None:
    """Run `chunk` from its warm-up and hand each of its wanted frames to `emit(i, picture, record)`;
    `seen(i)` after each of its frames (progress). `stems`: the track's offline stems (else the
    tracker's live ones)."""
    w = warmup(chunk, plan.start, s.fps)
    start = int(round(w.audio_s * SAMPLE_RATE))
    blocks = iter_audio_blocks(s.track, FEATURE_BLOCK, SAMPLE_RATE, start_s=start / SAMPLE_RATE)
    feed = AudioFeed(blocks, RingBuffer(WINDOW_SECONDS, SAMPLE_RATE), stages.make_tracker(), start=start)
    compositor = stages.make_compositor()
    if stages.understanding is not None:
        stages.understanding.reset()
    try:
        directing = None
        if stages.direction is not None:
            directing = _Directing(stages.direction, stages.respec, stages.renderer, stages.understanding, compositor)
        cues = plan_drops(section_events(s.track, beats), BarGrid.from_beatmap(beats)) if s.drops else []
        frames = _Frames(s, plan, feed, HopClock.starting_at(w.hops_s, s.hop_s), stages.renderer,
                         stages.understanding, compositor, beats, directing, stems,
                         _Latency(stages.latency_s, stages.compensate), cues)
        for i in range(w.first_frame, chunk.stop):
            picture, rec = frames.next(i)
            if i >= chunk.first:
                if wanted(i):
                    emit(i, picture, rec)
                seen(i)
    finally:
        feed.close()
        compositor.release()



class _Frames:
    """The stages of one export, stepped frame by frame on the fixed clock."""

    def __init__(self, s: ExportSettings, plan: ExportPlan, feed: AudioFeed, hops: HopClock,
                 renderer: Renderer | RenderStage, understanding: Understands | None, compositor: Any, beats: BeatMap,
                 directing: _Directing | None = None, stems: StemTrack | None = None,
                 latency: _Latency | None = None, cues: list[DropCue] | None = None) -> None:
        self.s, self.plan, self.feed, self.hops = s, plan, feed, hops
        self.stems = stems
        self._last_t: float | None = None
        self.renderer, self.understanding, self.compositor, self.beats = renderer, understanding, compositor, beats
        self.directing = directing
        self.latency = latency or _Latency()
        self.pulse = PulseClock(display_s=0.5 / s.fps)
        self.cond: Conditioning | None = None
        self.seed = s.seed
        renderer.reset(s.seed)
        self.meter = LatencyMeter()
        self.meter_key = (str(renderer.name), s.width, s.height)
        self.inflight: deque[_InFlight] = deque()  # renders started, not yet on screen
        self.changes = sorted((directing.direction.changes() if directing is not None else [])
                              + drop_changes(cues or []))
        self.change_times = [c[0] for c in self.changes]
        self.look = 0  # how many of the changes the picture on screen shows
        # Drops (engine/directing/drops.py): each build's cue is logged when prepared, and its look is
        # rendered from the render that will be seen at the drop's downbeat on, or discarded.
        self.cues = cues or []
        self.drop_times = [c.lands for c in self.cues if c.lands is not None]
        self.drops_rendered = 0
        self.cue_logged: set[tuple[int, str]] = set()

    def _fade_s(self) -> float:
        """Half the crossfade when changes are quantised (the fade is centred on the beat), else 0."""
        d = self.directing
        if d is None or d.direction.base.transitions.quantize == "off":
            return 0.0
        return 0.5 * d.spec.compositor.crossfade_ms / 1000.0

    def _lead(self) -> float:
        """How far ahead of its start a render's look is chosen: when its frame will be seen (the measured
        p95 latency, to the middle of its frame), and half of a quantised change's crossfade."""
        if not self.latency.compensate:
            return 0.0
        return self.meter.p95(self.meter_key) + 0.5 / self.s.fps + self._fade_s()

    def next(self, i: int) -> tuple[pygame.Surface, dict[str, Any]]:
        s = self.s
        t = self.plan.frame_time(i, s.fps)
        target = int(round(t * SAMPLE_RATE))
        seen_at = t + self._lead()  # this frame's render is seen then: it shows the direction of that moment
        directed = self.directing.at(seen_at) if self.directing is not None else None  # before the hops it steers
        if self.understanding is not None:
            for hop in self.hops.due(target):  # every conditioning hop up to t, each on its own window
                window = self.feed.window_at(hop)
                self.cond = self.understanding.step(window, self.feed.features)
        self.feed.feed_to(target)
        feats = self.feed.take_features(t)
        if self.stems is not None:  # the offline stems at t, onsets since the last frame
            feats = dataclasses.replace(feats, stems=self.stems.at(t, self._last_t))
        self._last_t = t
        shift = 0.0 if self.directing is None else self.directing.direction.recall_shift(seen_at)
        exact = _shifted(self.beats.grid_at(t + shift + self.pulse.display_s), -shift)  # the offline beats
        feats = self.pulse.at(dataclasses.replace(feats, grid=exact, beat_confidence=exact.confidence), t)
        rendered = i % s.render_every == 0
        cond = self.cond
        if rendered:
            if self.directing is not None and directed is not None:
                cond = self.directing.mix(self.cond, directed)
            heard, clock = (feats, t) if self.directing is None else self.directing.direction.recall_render(seen_at, feats)
            heard = self._drop_look(heard, seen_at)
            frame = self.renderer.render(cond, heard, clock - (seen_at - t))
            self.seed = int(frame.seed)
            look = bisect.bisect_right(self.change_times, seen_at)
            self.inflight.append(_InFlight(t + self.latency.seconds, t, frame, look))
        landed = self._deliver(i, t)
        picture = self.compositor.compose(feats, t)
        rec = {"i": i, "file": frame_path(s.out_dir, i).name, "t": round(t, 6), "rendered": rendered,
               "seed": self.seed, "features": _features_record(feats), "labels": _labels(self.cond)}
        if landed:
            rec["changes"] = landed
        drops = self._drop_log(i, t) + [{"state": "used", "intended_t": c["intended_t"],
                                         "appeared_frame": c["appeared_frame"]} for c in landed if c["what"] == "drop"]
        if drops:
            rec["drops"] = drops
        if directed is not None:
            rec["lyric"] = directed.sung
            rec["prompt"] = cond.prompt if rendered and cond is not None else ""
        return picture, rec


    def _drop_look(self, heard: Features, seen_at: float) -> Features:
        """A render seen at or after a drop's downbeat shows the drop look: the first one starts a new
        scene (a fresh seed: other motifs and field, the mood started at the drop's, an event "drop"),
        and for a bar the music is pushed toward high arousal."""
        n = bisect.bisect_right(self.drop_times, seen_at)
        if n == 0:
            return heard
        bar = 4 * (heard.grid.period if heard.grid.anchor is not None else 0.5)
        hot = seen_at - self.drop_times[n - 1] < bar
        first = n > self.drops_rendered
        if first:
            self.drops_rendered = n
            self.renderer.reset(self.s.seed + 7919 * n)
        if not hot:
            return heard
        return dataclasses.replace(heard, arousal=max(heard.arousal, DROP_AROUSAL),
                                   event="drop" if first else heard.event)

    def _drop_log(self, i: int, t: float) -> list[dict[str, Any]]:
        """Each cue once when prepared (the build: its predicted downbeat) and, for a drop that did not
        come, once when discarded (the end of its window)."""
        out: list[dict[str, Any]] = []
        fps = self.s.fps
        for k, c in enumerate(self.cues):
            if t >= c.prepared and (k, "prepared") not in self.cue_logged:
                self.cue_logged.add((k, "prepared"))
                out.append({"state": "prepared", "build_t": round(c.prepared, 6), "predicted_t": round(c.predicted, 6),
                            "predicted_frame": int(round((c.predicted - self.plan.start) * fps))})
            if c.lands is None and t >= c.decided and (k, "discarded") not in self.cue_logged:
                self.cue_logged.add((k, "discarded"))
                out.append({"state": "discarded", "predicted_t": round(c.predicted, 6)})
        return out

    def _deliver(self, i: int, t: float) -> list[dict[str, Any]]:
        """Renders whose latency has passed go to the compositor; each change a delivered frame is the
        first to show is logged: its intended time and frame, and the frame where it appeared (the
        middle of its crossfade)."""
        landed: list[dict[str, Any]] = []
        fps = self.s.fps
        while self.inflight and self.inflight[0].ready <= t + 1e-9:
            r = self.inflight.popleft()
            self.meter.add(self.meter_key, t - r.started)
            self.compositor.push(r.frame, t)
            for k in range(self.look, r.look):
                at, what = self.changes[k]
                landed.append({"what": what, "intended_t": round(at, 6),
                               "intended_frame": int(round((at - self.plan.start) * fps)),
                               "appeared_frame": i + int(math.ceil(self._fade_s() * fps - 1e-9)),
                               "lead_s": round(self.meter.p95(self.meter_key), 6)})
            self.look = max(self.look, r.look)
        return landed


@dataclass(frozen=True)
class _Latency:
    seconds: float = 0.0
    compensate: bool = True


@dataclass(frozen=True)
class _InFlight:
    ready: float  # on the fixed clock: when its frame reaches the screen
    started: float
    frame: Frame
    look: int  # how many of the direction's changes it shows


class _Directing:
    """A schedule and lyrics on export's fixed clock: each scheduled knob goes to the stage that owns
    it (as the live preset router routes it), and the director mixes style and lyric per frame."""

    def __init__(self, direction: ShowDirection, respec: Callable[[Preset], ShowSpec] | None, renderer: Any,
                 understanding: Understands | None, compositor: Any) -> None:
        if respec is None:
            raise ValueError("a directed export needs `respec` to resolve its scheduled presets")
        self.direction, self.respec = direction, respec
        self.renderer, self.understanding, self.compositor = renderer, understanding, compositor
        self.preset: Preset | None = None
        self.spec = respec(direction.base)  # what the stages were built from: a chunk starts there
        if isinstance(renderer, RenderStage):
            renderer.configure(self.spec.render)
        if understanding is not None:
            understanding.configure(self.spec.understanding)
        direction.attach(understanding)

    def at(self, t: float) -> Directed:
        d = self.direction.at(t)
        if d.preset is not self.preset:
            self.preset = d.preset
            self._route(self.respec(d.preset), t)
        return d

    def mix(self, music: Conditioning | None, d: Directed) -> Conditioning | None:
        return self.direction.condition(music, d)

    def _route(self, spec: ShowSpec, t: float) -> None:
        parts, old = spec.changed(self.spec), self.spec
        self.spec = spec
        if "compositor" in parts:
            c = spec.compositor
            self.compositor.configure(c.reactivity, c.crossfade_ms, c.max_flashes_per_s)
        rebuild: tuple[str, ...] = ()
        if "render" in parts:
            rebuild += self.renderer.configure(spec.render).rebuild
        if "understanding" in parts and self.understanding is not None:
            rebuild += self.understanding.configure(spec.understanding).rebuild
        if rebuild:
            raise BeatcanvasError(
                f"the schedule changes {', '.join(rebuild)} at {t:.2f} s ({old.name} → {spec.name}), which needs "
                "other weights or shapes; an export keeps its models: set those in the preset, not the schedule")


def _shifted(grid: BeatGrid, by: float) -> BeatGrid:
    """`grid` with its beats `by` seconds later (a returning section's beats, read at its first time)."""
    return grid if by == 0.0 or grid.anchor is None else dataclasses.replace(grid, anchor=grid.anchor + by)
