"""Offline export: the live stages driven by a fixed clock, written to PNG frames (and an MP4).

Frame i is at t = start + i / fps. Before frame i is drawn, the audio up to sample round(t·48000)
has been fed — in the same ≤10 ms blocks the live feature thread sees — to the `FeatureTracker`
and the 10 s `RingBuffer` (live/hopclock.py's `AudioFeed`); the conditioning ran on every hop of the
`HopClock` ≤ t (its window is the 10 s ending there, zero-padded at the track start; its tempo the
tracker's); every K-th frame (`render_every`) is rendered and pushed to the `Compositor`, and every
frame is composed, exactly as the display loop would. Nothing waits on a wall clock, so every stage
runs to completion and two runs with one seed give byte-identical PNGs.

Beats come from the offline pass (`engine.audio.beatmap`, run over the track before the first
frame), not the live tracker: frame i is re-timed to the middle of its time on screen,
t + ½/fps (`live.pulse.PulseClock`), so the pulse peaks in the frame nearest each beat (≤ ½ frame).

The files (frames, `frames.jsonl`, `manifest.json`) and their checks are live/export_files.py.

Resume: rerunning the same export checks every logged frame against the size and CRC its log line
recorded, then replays every stateful stage — tracker, conditioning, renderer, compositor — from the
start, writing only the frames that are missing or damaged, so the result equals an uninterrupted
run. Renderers expose no state to save (`engine.render.base.Renderer` has only `render` and
`reset`), so the replay re-renders; cheap for the procedural renderer, the cost of the frames done
for SDXL. A changed setting that would change old frames is refused (or `force`); a shorter `--end`
trims the frames past it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import pygame

from engine.audio.beatmap import BeatMap, analyze_beats
from engine.audio.features import FeatureTracker
from engine.audio.io import iter_audio_blocks
from engine.errors import BeatcanvasError
from engine.files import file_error, remove_stale_temps
from engine.render.base import Renderer
from engine.types import SAMPLE_RATE, WINDOW_SECONDS, Conditioning, Features, Reconfigured, Window
from engine.understanding.pipeline import UnderstandingSettings
from live.compositor import Compositor
from live.export_files import FRAME_RE, FRAMES_LOG, OnDisk, frame_path, scan, write_manifest, write_png
from live.show import ShowSpec
from live.export_plan import FORMAT_VERSION, ExportPlan, ExportSettings, check_writable, check_resumable, fingerprint, plan_export
from live.pulse import PulseClock
from live.presets.schema import Preset
from live.schedule.runtime import Directed, ShowDirection
from live.hopclock import FEATURE_BLOCK, AudioFeed, HopClock
from live.ringbuffer import RingBuffer

log = logging.getLogger(__name__)

# With --start far into a track, the conditioning starts this long before `start` (not at 0): its
# smoother forgets its start within a few time constants, and a 3-hour set need not encode 2 h
# of hops to begin at 2:00:00. Features always run from 0: they are hundreds of times real time.
CONDITIONING_WARMUP_S = 30.0


@dataclass
class ExportResult:
    out_dir: Path
    n_frames: int
    resumed_from: int  # frames found valid on disk
    written: int  # frames written by this run
    complete: bool
    trimmed: int = 0  # frames past a shorter --end that were removed


@dataclass(frozen=True)
class Progress:
    """Handed to `on_progress` after every frame: `replaying` frames are fast-forward, not written."""

    index: int  # frames finished (0-based index + 1)
    total: int
    replaying: bool
    resumed_from: int


# --- the fixed-clock driver ------------------------------------------------------------------------


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


def run_export(
    settings: ExportSettings,
    renderer: Renderer,
    understanding: Understands | None = None,
    *,
    tracker_factory: Callable[[], FeatureTracker] | None = None,
    force: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    plan: ExportPlan | None = None,
    compositor: Any = None,
    beats: BeatMap | None = None,
    direction: ShowDirection | None = None,
    respec: Callable[[Preset], ShowSpec] | None = None,
) -> ExportResult:
    """Export `settings.track` to PNG frames in `settings.out_dir`, resuming if a matching export is
    there. `understanding` None: the renderer gets no conditioning, as a procedural show.
    `compositor`: a fresh `Compositor` or `GLCompositor` at the export size (default: the numpy one).
    `beats`: the track's BeatMap when the caller already has it (else it is analysed here).
    `direction`: the schedule and lyrics (--schedule/--lyrics), asked per frame on the fixed clock;
    `respec` resolves a scheduled preset as the stages were resolved (`live.show.resolve`), so each
    scheduled knob reaches the stage that owns it, as in `play`.

    KeyboardInterrupt (Ctrl-C) or any exception leaves every finished frame on disk and the log
    consistent; the same call later resumes. A full disk or another file error is one BeatcanvasError.
    """
    s = settings
    plan = plan or plan_export(s)
    out = Path(s.out_dir)
    check_writable(out)
    check_resumable(s, plan, force)
    disk, trimmed = _prepare(out, (s.width, s.height), plan.n_frames, force)
    manifest = _manifest(s, plan, disk.done)
    _save_manifest(out, manifest)
    if disk.done >= plan.n_frames:
        return _finish(out, manifest, ExportResult(out, plan.n_frames, disk.done, 0, True, trimmed))

    tracker = tracker_factory() if tracker_factory else FeatureTracker(SAMPLE_RATE, FEATURE_BLOCK)
    feed = AudioFeed(iter_audio_blocks(s.track, FEATURE_BLOCK, SAMPLE_RATE), RingBuffer(WINDOW_SECONDS, SAMPLE_RATE), tracker)
    hops = HopClock.starting_at(plan.start - CONDITIONING_WARMUP_S, s.hop_s)
    compositor = compositor or Compositor(s.width, s.height, s.reactivity, s.crossfade_ms, s.max_flashes_per_s)
    directing = _Directing(direction, respec, renderer, understanding, compositor) if direction else None
    frames = _Frames(s, plan, feed, hops, renderer, understanding, compositor, beats or analyze_beats(s.track),
                     directing)
    written = 0
    log_file = open(out / FRAMES_LOG, "ab")
    try:
        for i in range(plan.n_frames):
            picture, rec = frames.next(i)
            if i >= disk.logged or i in disk.bad:
                _write_frame(out, i, picture, rec, log_file if i >= disk.logged else None)
                written += 1
            if on_progress is not None:
                on_progress(Progress(i + 1, plan.n_frames, i < disk.logged and i not in disk.bad, disk.done))
    except BaseException as e:
        manifest.update(frames_done=disk.done + written, status="interrupted")
        log_file.close()
        feed.close()
        _save_manifest(out, manifest, quiet=True)
        if isinstance(e, OSError):
            raise file_error(e, out, "writing frames to") from e
        raise
    log_file.close()
    feed.close()
    return _finish(out, manifest, ExportResult(out, plan.n_frames, disk.done, written, True, trimmed))


class _Frames:
    """The stages of one export, stepped frame by frame on the fixed clock."""

    def __init__(self, s: ExportSettings, plan: ExportPlan, feed: AudioFeed, hops: HopClock, renderer: Renderer,
                 understanding: Understands | None, compositor: Any, beats: BeatMap,
                 directing: _Directing | None = None) -> None:
        self.s, self.plan, self.feed, self.hops = s, plan, feed, hops
        self.renderer, self.understanding, self.compositor, self.beats = renderer, understanding, compositor, beats
        self.directing = directing
        self.pulse = PulseClock(display_s=0.5 / s.fps)
        self.cond: Conditioning | None = None
        self.seed = s.seed
        renderer.reset(s.seed)

    def next(self, i: int) -> tuple[pygame.Surface, dict[str, Any]]:
        s = self.s
        t = self.plan.frame_time(i, s.fps)
        target = int(round(t * SAMPLE_RATE))
        directed = self.directing.at(t) if self.directing is not None else None  # before the hops it steers
        if self.understanding is not None:
            for hop in self.hops.due(target):  # every conditioning hop up to t, each on its own window
                window = self.feed.window_at(hop)
                self.cond = self.understanding.step(window, self.feed.features)
        self.feed.feed_to(target)
        feats = self.feed.take_features(t)
        exact = self.beats.grid_at(t + self.pulse.display_s)  # the offline beats, not the live tracker's
        feats = self.pulse.at(dataclasses.replace(feats, grid=exact, beat_confidence=exact.confidence), t)
        rendered = i % s.render_every == 0
        cond = self.cond
        if rendered:
            if self.directing is not None and directed is not None:
                cond = self.directing.mix(self.cond, directed)
            frame = self.renderer.render(cond, feats, t)
            self.seed = int(frame.seed)
            self.compositor.push(frame, t)
        picture = self.compositor.compose(feats, t)
        rec = {"i": i, "file": frame_path(s.out_dir, i).name, "t": round(t, 6), "rendered": rendered,
               "seed": self.seed, "features": _features_record(feats), "labels": _labels(self.cond)}
        if directed is not None:
            rec["lyric"] = directed.sung
            rec["prompt"] = cond.prompt if rendered and cond is not None else ""
        return picture, rec


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
        self.spec = respec(direction.base)  # what the stages were built from
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


def _prepare(out: Path, size: tuple[int, int], n_frames: int, force: bool) -> tuple[OnDisk, int]:
    """Check what is on disk and drop what the export will not keep: the log past the frames kept,
    PNGs past the last one wanted (a shorter --end), temp files of killed runs. (state, frames trimmed)"""
    disk = OnDisk(0, 0, frozenset()) if force else scan(out, size, n_frames)
    try:
        with open(out / FRAMES_LOG, "ab") as f:
            f.truncate(disk.log_bytes)
        trimmed = 0
        for p in out.iterdir():
            m = FRAME_RE.match(p.name)
            if m and int(m.group(1)) > disk.logged:
                trimmed += int(m.group(1)) > n_frames
                p.unlink()
        remove_stale_temps(out)
    except OSError as e:
        raise file_error(e, out, "tidying") from e
    if trimmed:
        log.info("removed %d frames past the new end", trimmed)
    return disk, trimmed


def _write_frame(out: Path, i: int, picture: pygame.Surface, rec: dict[str, Any], log_file: BinaryIO | None) -> None:
    """The PNG first, then (for a new frame) its log line: a line always names a whole file."""
    written = write_png(picture, frame_path(out, i))
    if log_file is not None:
        rec.update(bytes=written.bytes, crc=written.crc)
        log_file.write((json.dumps(rec, sort_keys=True) + "\n").encode())
        log_file.flush()


def _manifest(s: ExportSettings, plan: ExportPlan, done: int) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "fingerprint": fingerprint(s, plan),
        "settings": {
            "track": str(Path(s.track).resolve()), "fps": s.fps, "width": s.width, "height": s.height,
            "start": plan.start, "end": plan.end, "render_every": s.render_every, "seed": s.seed, "hop_s": s.hop_s,
            "preset": s.preset_name, "renderer": s.renderer, "profile": s.profile, "crossfade_ms": s.crossfade_ms,
        },
        "preset_hash": s.preset_hash,
        "model_ids": dict(s.model_ids),
        "n_frames": plan.n_frames,
        "frames_done": done,
        "frame_pattern": "frame_%06d.png",
        "frames_log": FRAMES_LOG,
        "status": "running",
    }


def _save_manifest(out: Path, manifest: dict[str, Any], quiet: bool = False) -> None:
    try:
        write_manifest(out, manifest)
    except OSError as e:
        if quiet:  # already failing: the log and the frames still say how far it got
            log.warning("could not update %s: %s", out, e)
            return
        raise file_error(e, out, "writing the manifest in") from e


def _finish(out: Path, manifest: dict[str, Any], result: ExportResult) -> ExportResult:
    manifest.update(frames_done=result.n_frames, status="complete")
    _save_manifest(out, manifest)
    return result
