#!/usr/bin/env python
"""Benchmark: do live section letters agree with the offline pass? → bench/results/live-sections.json

    python scripts/bench_live_sections.py [--out bench/results/live-sections.json]

1. The demo track (engine/audio/demo.py, 60 s at 48 kHz, synthesized here), played twice in a row: the
   offline sections of one play (`find_sections`: start, letter) and, live (`LiveSections` fed 1024-
   sample blocks), each boundary (where, when found, the letter of the section that ended) and what
   the HUD says plays now ("new" or the letter of a return) every second.
2. The tests' A B A B A track (major chords / noise bursts, 10 s each): the same.
3. Cost: wall time of feeding the 120 s demo, median of 3 runs, per second of audio.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the A B A B track is the tests' synth

from engine.audio.demo import demo_sections, demo_track  # noqa: E402
from engine.audio.rhythms import SR  # noqa: E402
from engine.directing.live_sections import LiveSections  # noqa: E402
from engine.directing.sections import find_sections, section_features  # noqa: E402


def live(x: np.ndarray, sr: int, block: int = 1024) -> dict:
    s = LiveSections(sr)
    cuts, playing = [], {}
    for i in range(0, len(x), block):
        ended = s.feed(x[i : i + block])
        t = (i + block) / sr
        if ended:
            cuts.append({"start": round(s._time(s._base), 2), "found_at": round(t, 2), "ended": ended})
        second = int(t)
        if second not in playing:
            playing[second] = s.letter if s.returning else "new"
    return {"boundaries": cuts, "form": s.form, "playing_each_second": playing}


def offline(x: np.ndarray, sr: int) -> list[dict]:
    return [{"start": s.start, "letter": s.letter} for s in find_sections(section_features([x], sr))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "live-sections.json")
    args = ap.parse_args()
    sr = 48000
    once = demo_track(sample_rate=sr)
    twice = np.concatenate([once, once])
    from audio_synth import noise_bursts, progression

    a, b = progression(False, bars=2, chord_s=1.25)[: 10 * SR], noise_bursts(10.0, seed=1)[: 10 * SR]
    abab = np.concatenate([a, b, a, b, a]).astype(np.float32)
    costs = []
    for _ in range(3):
        t0 = time.perf_counter()
        live(twice, sr)
        costs.append((time.perf_counter() - t0) / (len(twice) / sr))
    result = {
        "machine": platform.machine(), "python": platform.python_version(),
        "demo": {"truth": [{"name": s.name, "start": round(s.start, 2)} for s in demo_sections()],
                 "offline_one_play": offline(once, sr), "live_two_plays": live(twice, sr)},
        "abab": {"truth_starts": [0, 10, 20, 30, 40], "offline": offline(abab, SR), "live": live(abab, SR)},
        "feed_cost_ms_per_audio_s_median": round(1000 * float(np.median(costs)), 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("feed_cost_ms_per_audio_s_median",)}))
    print("demo offline", result["demo"]["offline_one_play"])
    print("demo live", result["demo"]["live_two_plays"]["boundaries"])
    print("abab live", result["abab"]["live"]["boundaries"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
