"""Export's chunks: the timeline cut into pieces that can be rendered anywhere, in any order.

An export's frames are a function of its settings alone, never of how many workers made them or
where a run was resumed: the timeline is cut into chunks of about `chunk_s` seconds (each cut moved
to half a beat before the nearest downbeat, else beat, within half a chunk: the chunk opens on the
bar, and the seam falls between two beats, where the picture moves least),
and every chunk starts its stateful stages fresh from a warm-up before its first frame that is run
but not written:

- audio and features from `WARMUP_S + WINDOW_SECONDS` before the chunk (a seek, not a decode from 0),
  so the feature tracker has settled and the first conditioning hop sees a whole 10 s window;
- conditioning hops from `WARMUP_S` before it (the smoother forgets its start: 8 s is four of the
  default 2 s time constants);
- renderer and compositor frames from `RENDER_WARMUP_S` before it (the renderers' mood smoothing has a
  1.2–1.5 s time constant; feedback latents, crossfades and the flash limiter forget faster).

One process exporting alone uses exactly these chunks, so one worker and N workers write the same
bytes, and a resume restarts only the chunks that are not finished.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.audio.beatmap import BeatMap
from engine.types import WINDOW_SECONDS

WARMUP_S = 8.0  # conditioning hops run this long before a chunk's first frame
RENDER_WARMUP_S = 4.0  # frames rendered and composed (not written) before it
DEFAULT_CHUNK_S = 10.0


@dataclass(frozen=True)
class Chunk:
    index: int
    first: int  # the first frame index
    stop: int  # one past the last

    def __len__(self) -> int:
        return self.stop - self.first


@dataclass(frozen=True)
class Warmup:
    """Where a chunk's stages start (seconds), before its first frame at `t0`."""

    audio_s: float  # the feed seeks here
    hops_s: float  # the first conditioning hop at or after this
    first_frame: int  # the first frame index rendered (may be < chunk.first)


def plan_chunks(n_frames: int, start: float, fps: float, chunk_s: float, beats: BeatMap | None = None) -> tuple[Chunk, ...]:
    """The chunks of an export of `n_frames` from `start` at `fps`. `chunk_s` 0: one chunk."""
    if chunk_s <= 0 or chunk_s * fps >= n_frames:
        return (Chunk(0, 0, n_frames),)
    marks = _marks(beats)
    cuts = []
    for k in range(1, math.ceil(n_frames / (chunk_s * fps))):
        target = start + k * chunk_s
        t = _snap(target, marks, chunk_s / 2)
        cuts.append(min(n_frames, max(1, math.ceil((t - start) * fps - 1e-6))))
    edges = [0] + sorted(set(c for c in cuts if 0 < c < n_frames)) + [n_frames]
    return tuple(Chunk(i, a, b) for i, (a, b) in enumerate(zip(edges, edges[1:])))


def warmup(chunk: Chunk, start: float, fps: float) -> Warmup:
    t0 = start + chunk.first / fps
    if chunk.first == 0 and start == 0:
        return Warmup(0.0, 0.0, 0)
    hops = max(0.0, t0 - WARMUP_S)
    render_frames = int(round(RENDER_WARMUP_S * fps))
    first = max(chunk.first - render_frames, -int(math.floor(start * fps + 1e-9)))
    return Warmup(max(0.0, hops - WINDOW_SECONDS), hops, first)


def _marks(beats: BeatMap | None) -> tuple[np.ndarray, np.ndarray]:
    if beats is None or len(beats.beats) == 0:
        empty = np.zeros(0)
        return empty, empty
    return np.asarray(beats.downbeats, dtype=np.float64), np.asarray(beats.beats, dtype=np.float64)


def _snap(target: float, marks: tuple[np.ndarray, np.ndarray], reach: float) -> float:
    """Half a beat before the downbeat nearest `target` within `reach`, else before the nearest beat,
    else `target`."""
    beats = marks[1]
    for times in marks:
        if len(times):
            near = float(times[np.argmin(np.abs(times - target))])
            if abs(near - target) <= reach:
                before = beats[beats < near - 1e-6]
                return near - 0.5 * (near - before[-1]) if len(before) else near
    return target
