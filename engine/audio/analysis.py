"""Whole-track feature analysis, streamed: what `beatcanvas analyze` writes.

The track is decoded block by block and fed to one FeatureTracker (the live features) and one
BeatAnalyzer (the offline beat pass, which may look ahead: `engine.audio.beatmap`), so a 3-hour
mix costs a few tens of MB. Output format (also the JSON of `beatcanvas analyze --json`):

    {"tempo_bpm": float, "beats": [seconds, ...], "beat_confidence": [0..1 per beat],
     "downbeats": [seconds, ...], "downbeat_confidence": 0..1,
     "frames": [{"t", "rms", "onset", "low", "mid", "high", "arousal", "valence"}, ...]}

`downbeats` is empty when the music has no accent pattern to tell the bar by (confidence 0).

A frame summarises the `frame_every` seconds before its `t`: `rms` and the bands are averaged
over that span, `onset` is its strongest onset (so a 10 ms click between two frame times is not
lost), arousal/valence are the (already 2 s-smoothed) values at `t`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.audio.beatnet.choice import offline_analyzer
from engine.audio.features import FeatureTracker
from engine.audio.io import iter_audio_blocks, probe
from engine.types import SAMPLE_RATE



def analyze_track(
    path: str | Path,
    frame_every: float = 0.1,
    block_size: int = 480,
    on_progress: Callable[[float], None] | None = None,
    beats: str = "learned",
) -> dict[str, Any]:
    """Run the features over a whole file; returns the analyze JSON dict (plus `duration`). `beats`:
    the offline beat tracker (learned | dsp); the JSON says which ran (`beat_tracker`) and, when the
    learned one could not, why (`beat_tracker_note`)."""
    info = probe(path)
    tracker = FeatureTracker(SAMPLE_RATE, block_size)
    beat_pass, choice = offline_analyzer(beats)
    frames: list[dict[str, float]] = []
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
        beat_pass.feed(block)
        onset_max = max(onset_max, f.onset)
        acc += (f.rms * f.rms, f.low, f.mid, f.high)
        n_acc += 1
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
            onset_max, n_acc = 0.0, 0
            acc[:] = 0
            next_frame += frame_every
        if on_progress is not None and t - last_progress >= 1.0:
            on_progress(t)
            last_progress = t
    if on_progress is not None:
        on_progress(pos / SAMPLE_RATE)
    beat_map = beat_pass.finish()
    return {
        "beat_tracker": choice.used,
        **({"beat_tracker_note": choice.note} if choice.note else {}),
        "beats_per_bar": beat_map.beats_per_bar,
        "tempo_bpm": round(beat_map.tempo_bpm, 2),
        "beats": [round(float(b), 4) for b in beat_map.beats],
        "beat_confidence": [round(float(c), 3) for c in beat_map.confidence],
        "downbeats": [round(float(b), 4) for b in beat_map.downbeats],
        "downbeat_confidence": round(beat_map.downbeat_confidence, 3),
        "frames": frames,
        "duration": round(pos / SAMPLE_RATE, 4) if pos else info.duration,
    }
