#!/usr/bin/env python
"""Benchmark: FeatureTracker speed as a multiple of real time on one CPU core.

Synthesizes 60 s of music-like audio (drums + chords), pins the process to one core with one
BLAS/FFT thread, feeds 10 ms blocks exactly as a live source would, and writes JSON:

    python scripts/bench_features.py [--seconds 60] [--beats dsp|learned] [--out bench/results/features.json]

Goal: >= 50x real time with the beat tracker (issue 15), so a live session spends ~2 % of a core on
features; `--block 4800` shows the cost per hop when the feature thread catches up in long blocks.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.audio.beatnet.choice import live_tracker  # noqa: E402
from engine.audio.features import FeatureTracker  # noqa: E402
from engine.audio.demo import demo_track  # noqa: E402
from engine.types import SAMPLE_RATE  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--block", type=int, default=480, help="the tracker's hop (samples)")
    ap.add_argument("--feed", type=int, default=None, help="samples per process() call (default: one hop)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--beats", choices=["learned", "dsp"], default="dsp", help="the beat tracker the thread runs")
    ap.add_argument("--out", type=Path, default=Path("bench/results/features.json"))
    args = ap.parse_args()
    try:
        cpu = sorted(os.sched_getaffinity(0))[0]
        os.sched_setaffinity(0, {cpu})
        pinned = True
    except (AttributeError, OSError):
        pinned = False
    load_before = round(os.getloadavg()[0], 2)
    x = demo_track(args.seconds)
    feed = args.feed or args.block
    blocks = [x[i : i + feed] for i in range(0, len(x) - feed + 1, feed)]
    times = []
    for _ in range(args.repeats):
        beats, choice = live_tracker(args.beats)
        tr = FeatureTracker(SAMPLE_RATE, args.block, beats=beats)
        t0 = time.perf_counter()
        for k, b in enumerate(blocks):
            tr.process(b, (k + 1) * feed / SAMPLE_RATE)
        times.append(time.perf_counter() - t0)
    best = min(times)
    audio_s = len(blocks) * feed / SAMPLE_RATE
    result = {
        "benchmark": "features",
        "audio_seconds": audio_s,
        "block_size": args.block,
        "samples_per_call": feed,
        "blocks": len(blocks),
        "wall_seconds_best": round(best, 4),
        "wall_seconds_all": [round(t, 4) for t in times],
        "realtime_multiple": round(audio_s / best, 1),
        "us_per_block": round(1e6 * best / len(blocks), 2),
        "goal_realtime_multiple": 50,
        "tempo_bpm_found": round(tr.tempo_bpm, 2),
        "beat_tracker": choice.used,
        "pinned_to_one_core": pinned,
        "load_average_1min": [load_before, round(os.getloadavg()[0], 2)],  # the machine is shared
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "command": f"python scripts/bench_features.py --seconds {args.seconds:g} --block {args.block}" + (f" --feed {feed}" if args.feed else "") + f" --beats {args.beats} --out {args.out}",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
