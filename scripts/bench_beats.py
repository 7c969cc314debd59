#!/usr/bin/env python
"""Benchmark: beat and downbeat tracking on synthesised tracks with known beats → JSON.

    python scripts/bench_beats.py [--out bench/results/beats-cpu.json] [--heldout /work/beatdata/heldout]

Side by side in one run: the learned tracker (live: causal network + predicted grid; offline: offline
network + bar-pointer Viterbi), the DSP tracker (live and offline) and librosa's `beat_track` (an
optional bench dependency: skipped with a note when not installed), on (a) the held-out synthesized
set from `scripts/make_beat_data.py --split heldout --audio` (other soundfont, styles and tempos than
training) and (b) the synthetic set below. Per tracker and set: beat F (±70 ms), CMLt, AMLt
(mir_eval), downbeat F, tempo-octave accuracy and, live, the pulse error (|emitted predicted beat −
nearest true beat|, median, for beats within 70 ms). The per-track DSP section follows.

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
from engine.audio.beats import BeatTracker  # noqa: E402
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


def feed_live(x: np.ndarray, tr: FeatureTracker, tempo_after: float) -> tuple[list, list, list, float]:
    """Feed 10 ms blocks as a live source does: (beats, downbeats, tempo every 0.1 s after `tempo_after`, wall s)."""
    beats, downbeats, tempi = [], [], []
    t0 = time.perf_counter()
    for k in range(len(x) // 480):
        t = (k + 1) * 480 / SR
        feats = tr.process(x[k * 480 : (k + 1) * 480], t)
        if feats.beat:
            beats.append(tr.last_beat_time)
            if feats.downbeat:
                downbeats.append(tr.last_beat_time)
        if t > tempo_after and k % 10 == 0:
            tempi.append(feats.tempo_bpm)
    return beats, downbeats, tempi, time.perf_counter() - t0


def live(r: Rhythm) -> dict:
    x = r.samples
    beats, downbeats, tempi, wall = feed_live(x, FeatureTracker(SR, 480), r.music_start + 5.0)
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


# ---------------------------------------------------------------------------- side by side
def _metrics(ref: np.ndarray, est: np.ndarray, ref_db: np.ndarray, est_db: np.ndarray | None, tempo: float | None,
             skip: float = 5.0) -> dict:
    ref_s, est_s = ref[ref >= skip], est[est >= skip]
    cont = mir_eval.beat.continuity(ref_s, est_s) if len(ref_s) > 1 and len(est_s) > 1 else (0.0, 0.0, 0.0, 0.0)
    true_tempo = 60.0 / float(np.median(np.diff(ref))) if len(ref) > 1 else 0.0
    out = {"beat_f": float(mir_eval.beat.f_measure(ref_s, est_s)) if len(ref_s) else 0.0,
           "cmlt": float(cont[1]), "amlt": float(cont[3]),
           "tempo_ok": bool(tempo is not None and true_tempo > 0 and abs(tempo - true_tempo) / true_tempo < 0.04)}
    if est_db is not None and len(ref_db[ref_db >= skip]):
        out["downbeat_f"] = float(mir_eval.beat.f_measure(ref_db[ref_db >= skip], est_db[est_db >= skip]))
    return out


def run_live(x: np.ndarray, tracker: BeatTracker) -> tuple[np.ndarray, np.ndarray, float, float]:
    """`tracker` fed `x` in 10 ms blocks: (beats, downbeats, median tempo after 5 s, real-time multiple)."""
    beats, downbeats, tempi, wall = feed_live(x, FeatureTracker(SR, 480, beats=tracker), 5.0)
    return np.array(beats, dtype=float), np.array(downbeats, dtype=float), float(np.median(tempi)) if tempi else 0.0, len(x) / SR / wall


def pulse_errors(ref: np.ndarray, est: np.ndarray) -> list[float]:
    """|emitted beat − nearest true beat| (s) for each beat after 5 s that lands within 70 ms of one."""
    near = np.array([np.min(np.abs(ref - b)) for b in est[est >= 5.0]]) if len(ref) else np.zeros(0)
    return near[near < 0.07].tolist()


def _run_offline(x: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray, float, int]:
    from engine.audio.beatnet.choice import offline_analyzer

    a, _ = offline_analyzer(kind)
    for i in range(0, len(x), 4800):
        a.feed(x[i : i + 4800])
    bm = a.finish()
    return bm.beats, bm.downbeats, bm.tempo_bpm, bm.beats_per_bar


def _run_librosa(x: np.ndarray) -> tuple[np.ndarray, float]:
    import librosa

    y = librosa.resample(x, orig_sr=SR, target_sr=22050)
    tempo, frames = librosa.beat.beat_track(y=y, sr=22050)
    return librosa.frames_to_time(frames, sr=22050), float(np.atleast_1d(tempo)[0])


def side_by_side(pieces: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], librosa_ok: bool) -> dict:
    """pieces: (name, audio, true beats, true downbeats) → per tracker: mean metrics and per-piece rows."""
    from engine.audio.beatnet.choice import live_tracker

    out: dict = {}
    trackers = ["learned_live", "learned_offline", "dsp_live", "dsp_offline"] + (["librosa"] if librosa_ok else [])
    for name in trackers:
        rows, errs, speeds = [], [], []
        for title, x, ref, ref_db in pieces:
            if name.endswith("_live"):
                est, est_db, tempo, speed = run_live(x, live_tracker(name.split("_")[0])[0])
                speeds.append(speed)
                errs.extend(pulse_errors(ref, est))
                row = _metrics(ref, est, ref_db, est_db, tempo)
            elif name.endswith("_offline"):
                est, est_db, tempo, bpb = _run_offline(x, name.split("_")[0])
                row = _metrics(ref, est, ref_db, est_db, tempo)
                row["beats_per_bar"] = bpb
            else:
                est, tempo = _run_librosa(x)
                row = _metrics(ref, est, ref_db, None, tempo)
            rows.append({"piece": title, **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}})
        summary = {k: round(float(np.mean([r[k] for r in rows if k in r])), 3)
                   for k in ("beat_f", "cmlt", "amlt", "downbeat_f", "tempo_ok") if any(k in r for r in rows)}
        if errs:
            summary["live_pulse_error_median_ms"] = round(1000 * float(np.median(errs)), 1)
        if speeds:
            summary["realtime_multiple_median"] = round(float(np.median(speeds)), 1)
        out[name] = {"mean": summary, "pieces": rows}
        print(f"  {name:16s} {summary}", flush=True)
    return out


def heldout_pieces(folder: Path) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    import soundfile as sf
    from safetensors import safe_open

    out = []
    for wav in sorted(folder.glob("piece_*.wav")):
        audio, sr = sf.read(str(wav), dtype="float32")
        with safe_open(str(wav.with_suffix(".safetensors")), framework="np") as fh:
            beats, downbeats = fh.get_tensor("beats"), fh.get_tensor("downbeats")
            meta = json.loads((fh.metadata() or {}).get("meta", "{}"))
        assert sr == SR
        out.append((f"{wav.stem} {meta.get('meter')} {meta.get('style')} {meta.get('bpm')} {meta.get('curve')}", audio, beats, downbeats))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--out", type=Path, default=Path("bench/results/beats.json"))
    ap.add_argument("--heldout", type=Path, default=Path("/work/beatdata/heldout"))
    ap.add_argument("--max-heldout", type=int, default=0, help="only the first N held-out pieces (0: all)")
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        pinned = True
    except (AttributeError, OSError):
        pinned = False
    load_before = round(os.getloadavg()[0], 2)  # the machine is shared: say how busy it was
    try:
        import librosa  # noqa: F401

        librosa_ok, librosa_note = True, ""
    except ImportError:
        librosa_ok, librosa_note = False, "librosa not installed (pip install librosa): its column is skipped"
        print(librosa_note)
    compare: dict = {"librosa_note": librosa_note}
    held = heldout_pieces(args.heldout) if args.heldout.is_dir() else []
    if args.max_heldout:
        held = held[: args.max_heldout]
    if held:
        print(f"(a) held-out synthesized set: {len(held)} pieces from {args.heldout}")
        compare["heldout"] = side_by_side(held, librosa_ok)
    else:
        compare["heldout"] = f"no held-out set at {args.heldout}: run scripts/make_beat_data.py --split heldout --audio"
    print("(b) synthetic set (engine.audio.rhythms)")
    compare["synthetic"] = side_by_side([(label(r), r.samples, r.beats, r.downbeats) for r in tracks()], librosa_ok)
    rows = []
    for r in tracks():
        off, bm = offline(r)
        row = {"track": label(r), "live": live(r), "offline": off, "export_pulse_60fps": export_pulse_errors_ms(bm, r)}
        rows.append(row)
        lv = row["live"]
        print(f"{row['track']:40s} live F {lv['beat_f']} DB {lv['downbeat_f']} tempo {lv['tempo_bpm']} lock {lv['time_to_lock_s']} "
              f"x{lv['realtime_multiple']} | offline F {off['beat_f']} DB {off['downbeat_f']} | pulse {row['export_pulse_60fps']}")
    result = {
        "benchmark": "beats", "compare": compare, "tracks": rows,
        "median_live_beat_f": float(np.median([r["live"]["beat_f"] for r in rows])),
        "median_offline_beat_f": float(np.median([r["offline"]["beat_f"] for r in rows])),
        "live_tempo_octave_accuracy": float(np.mean([r["live"]["tempo_ok"] for r in rows])),
        "median_realtime_multiple": float(np.median([r["live"]["realtime_multiple"] for r in rows])),
        "export_pulse_60fps_median_ms": float(np.median([r["export_pulse_60fps"]["median_ms"] for r in rows])),
        "export_pulse_60fps_max_ms": float(max(r["export_pulse_60fps"]["max_ms"] for r in rows)),
        "export_pulse_60fps_missed": int(sum(r["export_pulse_60fps"]["missed"] for r in rows)),
        "load_average_1min": [load_before, round(os.getloadavg()[0], 2)],
        "pinned_to_one_core": pinned, "python": platform.python_version(), "numpy": np.__version__,
        "command": "python scripts/bench_beats.py --out " + str(args.out) + f" --heldout {args.heldout}",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("tracks", "compare")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
