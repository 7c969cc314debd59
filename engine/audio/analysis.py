"""Whole-track feature analysis, streamed: what `beatcanvas analyze` writes.

The track is decoded block by block and fed to one FeatureTracker, so a 3-hour mix costs the
same memory as a 3-minute song. Output format (also the JSON of `beatcanvas analyze --json`):

    {"tempo_bpm": float, "beats": [seconds, ...],
     "frames": [{"t", "rms", "onset", "low", "mid", "high", "arousal", "valence"}, ...]}

A frame summarises the `frame_every` seconds before its `t`: `rms` and the bands are averaged
over that span, `onset` is its strongest onset (so a 10 ms click between two frame times is not
lost), arousal/valence are the (already 2 s-smoothed) values at `t`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.audio.features import FeatureTracker
from engine.audio.io import iter_audio_blocks, probe
from engine.types import SAMPLE_RATE

WARMUP_S = 4.0  # the beat tracker needs a few seconds before its tempo means anything


def analyze_track(
    path: str | Path,
    frame_every: float = 0.1,
    block_size: int = 480,
    on_progress: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Run the features over a whole file; returns the analyze JSON dict (plus `duration`)."""
    info = probe(path)
    tracker = FeatureTracker(SAMPLE_RATE, block_size)
    frames: list[dict[str, float]] = []
    beats: list[float] = []
    tempi: list[float] = []
    next_frame = frame_every
    onset_max = 0.0
    acc = np.zeros(4)  # rms², low, mid, high summed over the frame's blocks
    n_acc = 0
    pos = 0
    last_progress = 0.0
    for block in iter_audio_blocks(path, block_size, SAMPLE_RATE):
        pos += len(block)
        t = pos / SAMPLE_RATE
        f = tracker.process(block, t)
        onset_max = max(onset_max, f.onset)
        acc += (f.rms * f.rms, f.low, f.mid, f.high)
        n_acc += 1
        if f.beat and tracker.last_beat_time is not None:
            beats.append(round(tracker.last_beat_time, 4))
        if t + 1e-9 >= next_frame:
            frames.append(
                {
                    "t": round(t, 4),
                    "rms": round(float(np.sqrt(acc[0] / n_acc)), 6),
                    "onset": round(onset_max, 4),
                    "low": round(float(acc[1] / n_acc), 4),
                    "mid": round(float(acc[2] / n_acc), 4),
                    "high": round(float(acc[3] / n_acc), 4),
                    "arousal": round(f.arousal, 4),
                    "valence": round(f.valence, 4),
                }
            )
            if t > WARMUP_S and tracker.tempo_confidence > 0.2:
                tempi.append(f.tempo_bpm)
            onset_max, n_acc = 0.0, 0
            acc[:] = 0
            next_frame += frame_every
        if on_progress is not None and t - last_progress >= 1.0:
            on_progress(t)
            last_progress = t
    if on_progress is not None:
        on_progress(pos / SAMPLE_RATE)
    tempo = float(np.median(tempi)) if tempi else float(tracker.tempo_bpm)
    return {
        "tempo_bpm": round(tempo, 2),
        "beats": beats,
        "frames": frames,
        "duration": round(pos / SAMPLE_RATE, 4) if pos else info.duration,
    }
