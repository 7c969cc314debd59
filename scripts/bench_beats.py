#!/usr/bin/env python
"""Benchmark: beat and downbeat tracking on synthesised tracks with known beats → JSON.

    python scripts/bench_beats.py [--out bench/results/beats-cpu.json]

For each track (engine.audio.rhythms: click tracks 70–180 BPM, swing, a tempo ramp, syncopated
drums, a half-time breakdown, silence then music) it runs the live tracker (FeatureTracker, 10 ms
blocks, as a live source feeds it) and the offline pass, and reports:
- beat F-measure at ±70 ms (mir_eval; beats in the first 5 s and the last 0.5 s not scored),
- tempo octave accuracy (median tempo after lock within 4 % of the truth, not a multiple of it),
- downbeat F-measure, time to lock (music start → first of 8 correct beats in a row),
- the live tracker's speed as a multiple of real time on one pinned core,
- export pulse timing: |frame with the pulse peak − true beat| at 60 fps on the offline beats
  (median and worst per track; the real export's frames are checked in tests/test_beats.py).
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

import mir_eval  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.audio.beatmap import BeatAnalyzer  # noqa: E402
from engine.audio.features import FeatureTracker  # noqa: E402
from engine.audio.rhythms import SR, Rhythm, clicks, drums  # noqa: E402
from engine.types import Features  # noqa: E402
from live.screen.pulse import PulseClock, beat_pulse  # noqa: E402


def tracks() -> list[Rhythm]:
    out = [clicks(bpm, 30.0) for bpm in (70, 90, 120, 150, 180)]
    out += [
        clicks(120.0, 30.0, accent=2.0),
        drums("swing", 96.0, 30.0),
        drums("four", 100.0, 40.0, bpm_end=130.0),
        drums("syncopated", 124.0, 30.0),
        drums("syncopated", 170.0, 30.0),
        drums("four", 70.0, 30.0),
        drums("four", 124.0, 48.0, sections=[(0.0, "four"), (16.0, "halftime"), (32.0, "four")]),
        drums("four", 124.0, 30.0, start=6.0),
    ]
    return out


def label(r: Rhythm) -> str:
    bpm = f"{r.beats.size and 60 / np.diff(r.beats[:2])[0]:.0f}"
    ramp = f"→{60 / np.diff(r.beats[-2:])[0]:.0f}" if abs(np.diff(r.beats[:2])[0] - np.diff(r.beats[-2:])[0]) > 0.01 else ""
    start = f", silence {r.music_start:g} s" if r.music_start else ""
    return f"{r.name} {bpm}{ramp} BPM{start}"


def scored(b: np.ndarray, r: Rhythm) -> np.ndarray:
    return b[(b >= 5.0) & (b <= len(r.samples) / SR - 0.5)]


def f(ref: np.ndarray, est: np.ndarray, r: Rhythm) -> float | None:
    ref_s = scored(ref, r)
    return None if len(ref_s) == 0 else round(float(mir_eval.beat.f_measure(ref_s, scored(est, r))), 3)


def time_to_lock(beats: np.ndarray, r: Rhythm, run: int = 8) -> float | None:
    ok = np.array([np.min(np.abs(r.beats - b)) < 0.07 for b in beats])
    for i in range(len(beats) - run + 1):
        if ok[i : i + run].all():
            return round(float(beats[i] - r.music_start), 3)
    return None


def live(r: Rhythm) -> dict:
    tr = FeatureTracker(SR, 480)
    x, beats, downbeats, tempi = r.samples, [], [], []
    t0 = time.perf_counter()
    for k in range(len(x) // 480):
        t = (k + 1) * 480 / SR
        feats = tr.process(x[k * 480 : (k + 1) * 480], t)
        if feats.beat:
            beats.append(tr.last_beat_time)
            if feats.downbeat:
                downbeats.append(tr.last_beat_time)
        if t > r.music_start + 5.0 and k % 10 == 0:
            tempi.append(feats.tempo_bpm)
    wall = time.perf_counter() - t0
    b = np.array(beats)
    true = r.tempo_bpm
    return {
        "beat_f": f(r.beats, b, r), "downbeat_f": f(r.downbeats, np.array(downbeats), r),
        "tempo_bpm": round(float(np.median(tempi)), 2), "tempo_ok": bool(abs(np.median(tempi) - true) / true < 0.04),
        "time_to_lock_s": time_to_lock(b, r), "realtime_multiple": round(len(x) / SR / wall, 1),
    }


def offline(r: Rhythm) -> tuple[dict, object]:
    a = BeatAnalyzer(SR)
    for i in range(0, len(r.samples), 4800):
        a.feed(r.samples[i : i + 4800])
    bm = a.finish()
    res = {"beat_f": f(r.beats, bm.beats, r), "downbeat_f": f(r.downbeats, bm.downbeats, r),
           "tempo_bpm": round(bm.tempo_bpm, 2), "tempo_ok": bool(abs(bm.tempo_bpm - r.tempo_bpm) / r.tempo_bpm < 0.04)}
    return res, bm


def export_pulse_errors_ms(bm, r: Rhythm, fps: float = 60.0) -> dict:
    """|time of the frame where the pulse peaks − true beat| (ms) for every true beat, with export's
    re-timing (live.export.run: BeatMap.grid_at → PulseClock, half a frame ahead → beat_pulse) sampled
    at `fps`; a beat with no pulse peak within 100 ms counts as missed."""
    pulse = PulseClock(display_s=0.5 / fps)
    n = int(len(r.samples) / SR * fps)
    level = []
    for i in range(n):
        t = i / fps
        feats = pulse.at(Features(t=t, grid=bm.grid_at(t + pulse.display_s)), t)
        level.append(beat_pulse(feats))
    level = np.array(level)
    peaks = np.array([i / fps for i in range(1, n - 1) if level[i] > level[i - 1] and level[i] >= level[i + 1]])
    truth = r.beats[(r.beats > r.music_start + 0.1) & (r.beats < n / fps - 0.1)]
    err = np.array([np.min(np.abs(peaks - b)) if len(peaks) else np.inf for b in truth])
    hit = err < 0.1
    return {"median_ms": round(1000 * float(np.median(err[hit])), 1) if hit.any() else None,
            "max_ms": round(1000 * float(err[hit].max()), 1) if hit.any() else None,
            "missed": int((~hit).sum()), "beats": int(len(truth))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--out", type=Path, default=Path("bench/results/beats.json"))
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        pinned = True
    except (AttributeError, OSError):
        pinned = False
    load_before = round(os.getloadavg()[0], 2)  # the machine is shared: say how busy it was
    rows = []
    for r in tracks():
        off, bm = offline(r)
        row = {"track": label(r), "live": live(r), "offline": off, "export_pulse_60fps": export_pulse_errors_ms(bm, r)}
        rows.append(row)
        lv = row["live"]
        print(f"{row['track']:40s} live F {lv['beat_f']} DB {lv['downbeat_f']} tempo {lv['tempo_bpm']} lock {lv['time_to_lock_s']} "
              f"x{lv['realtime_multiple']} | offline F {off['beat_f']} DB {off['downbeat_f']} | pulse {row['export_pulse_60fps']}")
    result = {
        "benchmark": "beats", "tracks": rows,
        "median_live_beat_f": float(np.median([r["live"]["beat_f"] for r in rows])),
        "median_offline_beat_f": float(np.median([r["offline"]["beat_f"] for r in rows])),
        "live_tempo_octave_accuracy": float(np.mean([r["live"]["tempo_ok"] for r in rows])),
        "median_realtime_multiple": float(np.median([r["live"]["realtime_multiple"] for r in rows])),
        "export_pulse_60fps_median_ms": float(np.median([r["export_pulse_60fps"]["median_ms"] for r in rows])),
        "export_pulse_60fps_max_ms": float(max(r["export_pulse_60fps"]["max_ms"] for r in rows)),
        "export_pulse_60fps_missed": int(sum(r["export_pulse_60fps"]["missed"] for r in rows)),
        "load_average_1min": [load_before, round(os.getloadavg()[0], 2)],
        "pinned_to_one_core": pinned, "python": platform.python_version(), "numpy": np.__version__,
        "command": "python scripts/bench_beats.py --out " + str(args.out),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "tracks"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
