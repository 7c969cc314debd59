"""Offline export: the live stages driven by a fixed clock, written to PNG frames (and an MP4).

Frame i is at t = start + i / fps. The timeline is cut into chunks (live/export/chunks.py), each
run from a warm-up of its own (live/export/frames.py), so the frames are a function of the settings
alone: one process (here) and N Ray workers (live/export/cluster.py) write the same bytes.

The files (frames, `frames.jsonl`, `manifest.json`) and their checks are live/export/files.py;
`ExportRun` owns them for a run: whoever renders a frame, the per-frame log is written here, in frame
order.

Resume: rerunning the same export checks every logged frame against the size and CRC its log line
recorded and re-runs only the chunks with a frame missing or damaged, writing only those frames, so
the result equals an uninterrupted run. A changed setting that would change old frames (the chunk
length included) is refused (or `force`); a shorter `--end` trims the frames past it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pygame

from engine.audio.beatmap import BeatMap
from engine.audio.beatnet.choice import analyze_track_beats
from engine.audio.stems import StemTrack, analyze_stems
from engine.audio.features import FeatureTracker
from engine.files import file_error, remove_stale_temps
from engine.render.base import Renderer
from engine.render.stage import RenderStage
from live.screen.compositor import Compositor
from live.export.chunks import Chunk, plan_chunks
from live.export.files import FRAME_RE, FRAMES_LOG, OnDisk, frame_path, scan, write_manifest, write_png
from live.export.frames import Composes, Stages, Understands, render_chunk
from live.export.plan import (
    FORMAT_VERSION, ExportPlan, ExportSettings, check_resumable, check_writable, fingerprint, plan_export,
)
from live.presets.schema import Preset
from live.schedule.runtime import ShowDirection
from live.session.show import ShowSpec

__all__ = ["ExportResult", "ExportRun", "ExportSettings", "Progress", "check_resumable", "export_stages", "frame_path",
           "plan_export", "run_export"]

log = logging.getLogger(__name__)


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


def run_export(
    settings: ExportSettings,
    renderer: Renderer | RenderStage,
    understanding: Understands | None = None,
    *,
    tracker_factory: Callable[[], FeatureTracker] | None = None,
    force: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    plan: ExportPlan | None = None,
    make_compositor: Callable[[], Composes] | None = None,
    beats: BeatMap | None = None,
    direction: ShowDirection | None = None,
    respec: Callable[[Preset], ShowSpec] | None = None,
    latency_s: float = 0.0,
    compensate: bool = True,
) -> ExportResult:
    """Export `settings.track` to PNG frames in `settings.out_dir` in this process, chunk after chunk,
    resuming if a matching export is there. `understanding` None: the renderer gets no conditioning,
    as a procedural show. `make_compositor`: a fresh compositor at the export size per chunk (default:
    the numpy one). `beats`: the track's BeatMap when the caller already has it. `direction`: the
    schedule and lyrics (--schedule/--lyrics), asked per frame on the fixed clock; `respec` resolves a
    scheduled preset as the stages were resolved (`live.session.show.resolve`). `latency_s`: a render's
    frame reaches the screen this long after it starts (benchmarks and tests stand in a live renderer's
    latency with it); `compensate` False renders for the moment it starts, not the one it is seen
    (the old way, for comparison). Ray workers: live/export/cluster.py.

    KeyboardInterrupt (Ctrl-C) or any exception leaves every finished frame on disk and the log
    consistent; the same call later resumes. A full disk or another file error is one BeatcanvasError.
    """
    s = settings
    stages = Stages(renderer, understanding, tracker_factory or FeatureTracker,
                    make_compositor or (lambda: Compositor(s.width, s.height, s.reactivity, s.crossfade_ms,
                                                           s.max_flashes_per_s)),
                    direction, respec, latency_s, compensate)
    return export_stages(settings, stages, force=force, on_progress=on_progress, plan=plan, beats=beats)


def export_stages(settings: ExportSettings, stages: Stages, *, force: bool = False, plan: ExportPlan | None = None,
                  on_progress: Callable[[Progress], None] | None = None, beats: BeatMap | None = None) -> ExportResult:
    """`run_export` with its stages already gathered (live/export/recipe.py builds them)."""
    run = ExportRun(settings, plan, force, beats, on_progress)
    if run.finished:
        return run.finish()
    with run:
        for chunk in run.todo():
            render_chunk(settings, run.plan, run.track_beats, chunk, stages, run.frame, run.wanted, run.seen,
                         stems=run.track_stems)
    return run.finish()


class ExportRun:
    """An export's files, owned by one process: the checks before the first frame, the PNGs and the
    per-frame log (always in frame order, so a resume finds a whole prefix), the manifest, progress."""

    def __init__(self, s: ExportSettings, plan: ExportPlan | None = None, force: bool = False,
                 beats: BeatMap | None = None, on_progress: Callable[[Progress], None] | None = None) -> None:
        self.s, self.plan, self.out = s, plan or plan_export(s), Path(s.out_dir)
        check_writable(self.out)
        check_resumable(s, self.plan, force)
        self.disk, self.trimmed = _prepare(self.out, (s.width, s.height), self.plan.n_frames, force)
        self.manifest = _manifest(s, self.plan, self.disk.done)
        _save_manifest(self.out, self.manifest)
        self.on_progress = on_progress
        self.written = 0
        self._log: BinaryIO | None = None
        self.beats = beats
        self._stems: StemTrack | None = None
        # Cut on the beats unless nothing is left to do (the analysis is the only cost of a finished run).
        self.chunks = plan_chunks(self.plan.n_frames, self.plan.start, s.fps, s.chunk_s,
                                  None if self.finished else self.track_beats)

    @property
    def track_stems(self) -> StemTrack:
        """The track's stems, offline (separated on the first call)."""
        if self._stems is None:
            self._stems = analyze_stems(self.s.track)
        return self._stems

    @property
    def track_beats(self) -> BeatMap:
        """The track's beats (analysed on the first call unless the caller gave them)."""
        if self.beats is None:
            self.beats, choice = analyze_track_beats(self.s.track, self.s.beats)
            if choice.note:
                log.warning(choice.note)
        return self.beats

    @property
    def finished(self) -> bool:
        return self.disk.done >= self.plan.n_frames

    def todo(self) -> list[Chunk]:
        """The chunks with a frame to write: past the logged prefix, or damaged on disk."""
        return [c for c in self.chunks if c.stop > self.disk.logged or any(c.first <= i < c.stop for i in self.disk.bad)]

    def wanted(self, i: int) -> bool:
        return i >= self.disk.logged or i in self.disk.bad

    def frame(self, i: int, picture: pygame.Surface, rec: dict[str, Any]) -> None:
        """A frame made here: the PNG, then (for a new frame) its log line."""
        written = write_png(picture, frame_path(self.out, i))
        self.record(i, {**rec, "bytes": written.bytes, "crc": written.crc})

    def record(self, i: int, rec: dict[str, Any]) -> None:
        """Frame i's PNG is in place (written here or by a worker): log it, if it is new."""
        if i >= self.disk.logged:
            assert self._log is not None, "ExportRun.record outside `with run:`"
            self._log.write((json.dumps(rec, sort_keys=True) + "\n").encode())
            self._log.flush()
        self.written += 1

    def seen(self, i: int) -> None:
        if self.on_progress is not None:
            self.on_progress(Progress(i + 1, self.plan.n_frames, not self.wanted(i), self.disk.done))

    def __enter__(self) -> ExportRun:
        self._log = open(self.out / FRAMES_LOG, "ab")
        return self

    def __exit__(self, kind: type[BaseException] | None, e: BaseException | None, tb: Any) -> None:
        assert self._log is not None
        self._log.close()
        if e is None:
            return
        self.manifest.update(frames_done=self.disk.done + self.written, status="interrupted")
        _save_manifest(self.out, self.manifest, quiet=True)
        if isinstance(e, OSError):
            raise file_error(e, self.out, "writing frames to") from e

    def finish(self) -> ExportResult:
        d = self.disk
        return _finish(self.out, self.manifest,
                       ExportResult(self.out, self.plan.n_frames, d.done, self.written, True, self.trimmed))


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
