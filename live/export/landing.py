"""Did the changes land on the beat? Reading an export back: where each new look first shows.

Two views of the same thing, which must agree:
- `logged_changes`: what `frames.jsonl` records for each change (its intended downbeat's frame and
  the frame where it appeared: live/export/frames.py);
- `look_onsets`: what the pixels say: near each expected frame, the frame that differs most from the
  one before it (a new look is a jump; the motion between two frames of one look is small).

Used by tests/test_anticipation.py and scripts/bench_anticipation.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pygame

from live.export.files import FRAMES_LOG, frame_path


def logged_changes(out: Path) -> list[dict[str, Any]]:
    """Every change an export logged, in frame order."""
    lines = (Path(out) / FRAMES_LOG).read_text().splitlines()
    return [c for line in lines for c in json.loads(line).get("changes", [])]


def read_frame(out: Path, i: int) -> np.ndarray:
    return pygame.surfarray.array3d(pygame.image.load(str(frame_path(out, i)))).astype(np.float32)


def frame_jumps(out: Path, first: int, stop: int) -> dict[int, float]:
    """Mean absolute pixel change from frame i-1 to frame i, for i in [first, stop)."""
    frames = {i: read_frame(out, i) for i in range(max(0, first - 1), stop) if frame_path(out, i).exists()}
    return {i: float(np.abs(frames[i] - frames[i - 1]).mean()) for i in range(max(1, first), stop)
            if i in frames and i - 1 in frames}


def look_onsets(out: Path, expected: Sequence[int], reach: int = 9) -> list[int]:
    """For each expected frame, the frame within ±`reach` where the picture jumps most."""
    onsets = []
    for e in expected:
        jumps = frame_jumps(out, e - reach, e + reach + 1)
        onsets.append(max(jumps, key=lambda i: jumps[i]) if jumps else e)
    return onsets


def errors(onsets: Sequence[int], expected: Sequence[int]) -> dict[str, float]:
    """Median and worst |onset − expected| in frames."""
    err = np.abs(np.asarray(onsets) - np.asarray(expected))
    return {"median_frames": float(np.median(err)) if len(err) else 0.0,
            "worst_frames": float(err.max()) if len(err) else 0.0}


def structure_distance(a: np.ndarray, b: np.ndarray) -> float:
    """0 (the same picture up to brightness and contrast) … 2: 1 − the correlation of the two frames'
    luminance, so a look that returns in another light still reads as the same picture."""
    ga, gb = (x[..., :3].mean(-1).ravel() for x in (a, b))
    ga, gb = ga - ga.mean(), gb - gb.mean()
    return float(1.0 - ga @ gb / max(float(np.linalg.norm(ga) * np.linalg.norm(gb)), 1e-9))


def recall_share(out: Path, first: float, other: float, again: float, span: float, fps: float, step_s: float = 0.5) -> float:
    """Share of moments o in a section that returns at `again` whose frame is nearer (structure_distance)
    to the frame at o of its first occurrence (at `first`) than to the frame at o of `other`."""
    offsets = np.arange(0.5, span - 0.25, step_s)
    wins = 0
    for o in offsets:
        a2, a1, b = (read_frame(out, int(round((s + o) * fps))) for s in (again, first, other))
        wins += structure_distance(a2, a1) < structure_distance(a2, b)
    return wins / len(offsets)


def export_changes(track: Path, truth_beats: Sequence[float], out: Path, kind: str, latency_s: float, *,
                   compensate: bool = True, quantize: str = "downbeat", changes: int = 8, offset_s: float = 0.31,
                   steps: int | None = None, fps: int = 30, size: int = 64,
                   still: bool = False) -> tuple[list[int], list[int], list[dict[str, Any]]]:
    """Export `track` with a schedule of `changes` seed changes, each asked for `offset_s` after a beat of
    `truth_beats` (so each waits for the next one when quantised) → (onset frames from the pixels,
    expected frames: the next beats', the changes logged). `still`: no zoom pulse or brightening from
    the compositor (the percussive stem's included), for a renderer whose new look moves the pixels less
    than an accented beat's kick does."""
    from engine.audio.beatmap import analyze_beats
    from engine.directing.grid import BarGrid
    from live.export.run import ExportSettings, run_export
    from live.presets.library import load_preset
    from live.presets.schema import Preset
    from live.schedule.runtime import ShowDirection
    from live.schedule.schema import parse_schedule
    from live.session.factory import build_stages
    from live.session.show import ShowOptions, resolve

    beats = analyze_beats(track)
    keys = "\n".join(f'[[key]]\nat = {b + offset_s:.3f}\nmotion.seed = {k + 1}\n'
                     for k, b in enumerate(truth_beats[1:changes + 1]))
    model = {"steps": steps} if steps else {}
    base = Preset.model_validate({"name": "base", "transitions": {"quantize": quantize}, "motion": {"crossfade_ms": 0},
                                  "model": model, "reactivity": {"beat_zoom": 0.0, "band_brightness": 0.0} if still else {}})
    schedule = parse_schedule('interpolate = "hold"\n' + keys, "show.toml", load_preset)
    direction = ShowDirection(base, schedule, grid=BarGrid.from_beatmap(beats))
    options = ShowOptions(renderer=kind, directed=True, size=(size, size), live=False, profile="tiny", device="cpu",
                          allow_cpu_diffusion=True)
    spec = resolve(base, options)
    stage = build_stages(spec).render
    settings = ExportSettings(track=track, out_dir=out, fps=fps, width=size, height=size, crossfade_ms=0, chunk_s=0,
                              reactivity=spec.compositor.reactivity, direction=direction.fingerprint(),
                              end=float(truth_beats[changes + 1]) + 0.5)
    run_export(settings, stage, None, direction=direction, respec=lambda p: resolve(p, options), latency_s=latency_s,
               compensate=compensate, beats=beats, force=True)
    expected = [int(round(b * fps)) for b in truth_beats[2:changes + 2]]
    return look_onsets(out, expected), expected, logged_changes(out)


def export_recall(track: Path, out: Path, kind: str, recall: float, section_s: float = 10.0,
                  fps: int = 10) -> tuple[tuple[str, ...], list[float]]:
    """Export an A B A B track (sections `section_s` long) with a new seed per section, as a user fills
    the `analyze --sections` skeleton, and `[transitions] recall`; → (the section letters found, for the
    second A and the second B: `recall_share` against the first occurrence and the other section)."""
    from live.export.run import ExportSettings, run_export
    from live.presets.schema import Preset
    from live.schedule.runtime import direction_for_track
    from live.session.factory import build_stages
    from live.session.show import ShowOptions, resolve

    out.mkdir(parents=True, exist_ok=True)
    schedule = out / "show.toml"
    schedule.write_text('interpolate = "hold"\n' + "".join(f"[[key]]\nsection = {k}\nmotion.seed = {11 * k}\n"
                                                            for k in range(1, 5)))
    base = Preset.model_validate({"name": "base", "transitions": {"recall": recall}})
    direction = direction_for_track(track, base, schedule_path=schedule)
    assert direction is not None  # it has a schedule
    options = ShowOptions(renderer=kind, directed=True, size=(64, 64), live=False)
    settings = ExportSettings(track=track, out_dir=out / "frames", fps=fps, width=64, height=64, chunk_s=0,
                              direction=direction.fingerprint())
    run_export(settings, build_stages(resolve(base, options)).render, None, direction=direction,
               respec=lambda p: resolve(p, options), force=True)
    s = section_s
    return direction.letters, [recall_share(out / "frames", 0.0, s, 2 * s, s, fps),
                               recall_share(out / "frames", s, 2 * s, 3 * s, s, fps)]


def logged_drops(out: Path) -> list[dict[str, Any]]:
    """Every drop cue state an export logged (prepared, used, discarded), in frame order."""
    lines = (Path(out) / FRAMES_LOG).read_text().splitlines()
    return [d for line in lines for d in json.loads(line).get("drops", [])]


def export_drop(track: Path, out: Path, kind: str, latency_s: float, start: float, end: float, *,
                drops: bool = True, fps: int = 30, size: int = 64) -> None:
    """Export `track` from `start` to `end` with drops prepared (`drops`) and renders reaching the
    screen `latency_s` after they start; read it back with `look_onsets` and `logged_drops`."""
    from live.export.run import ExportSettings, run_export
    from live.presets.schema import Preset
    from live.session.factory import build_stages
    from live.session.show import ShowOptions, resolve

    base = Preset.model_validate({"name": "base", "motion": {"crossfade_ms": 0}})
    options = ShowOptions(renderer=kind, size=(size, size), live=False, profile="tiny", device="cpu")
    settings = ExportSettings(track=track, out_dir=out, fps=fps, width=size, height=size, crossfade_ms=0, chunk_s=0,
                              start=start, end=end, drops=drops)
    run_export(settings, build_stages(resolve(base, options)).render, None, latency_s=latency_s, force=True)


def first_difference(out: Path, other: Path, first: int, stop: int) -> int | None:
    """The first frame in [first, stop) whose pixels differ between two exports (None: all equal)."""
    return next((i for i in range(first, stop) if not np.array_equal(read_frame(out, i), read_frame(other, i))), None)
