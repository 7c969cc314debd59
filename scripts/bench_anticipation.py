#!/usr/bin/env python
"""Benchmark: does the show anticipate the music? → bench/results/anticipation.json

    python scripts/bench_anticipation.py [--out bench/results/anticipation.json] [--frames-dir DIR]

1. Change-onset error in export: 150 BPM accented clicks (downbeats known exactly), a schedule of 8
   seed changes each asked 0.31 s after a downbeat with `quantize = "downbeat"`; the numpy and the
   shader renderer (when an OpenGL context can be made) with an artificial render latency of 0, 80 and
   200 ms, latency compensation on and off. The error is |frame where the pixels jump − frame nearest
   the true downbeat| at 30 fps, median and worst over the 8 changes.
2. The demo track's drop (engine/audio/demo.py): a seed change asked 0.4 s before the drop's bar line,
   `quantize = "beat"`, shader renderer if available else numpy, 200 ms latency; the error, and the
   three frames around the onset written to --frames-dir to look at.
2b. The demo track's drop prepared by its build (`export --drops`, engine/directing/drops.py): numpy
   renderer, 0/80/200 ms latency; the first frame that differs from the normal path's vs the frame
   nearest the drop (36.774 s), and the build's lead (s before the drop it was prepared).
3. Live (headless, the session's real loops on the stepped clock of live/session/clock.py that the
   source, the renderer's delay and the display share, so the figures do not depend on the machine's
   load; renders delayed 80–200 ms, 30 fps display), compensation on and off: onset − true downbeat of
   3 scheduled changes; a → switch with a 0.6 s soft cut quantised to the downbeat (when the picture is
   half the new look, and when the cut began, against the downbeat and the downbeat − 0.3 s); an OSC
   cue `/beatcanvas/cue/preset blue downbeat` (first frame of the new look − its downbeat); a build→drop
   track (first frame of the drop look − the drop's downbeat) and the same build fizzling (frames of
   the drop look shown: must be 0).
4. Recall: an A B A B track (major chords / noise bursts, 10 s each), a new seed per section; the share
   of moments in each returning section whose frame is nearer (luminance correlation) to its first
   occurrence than to the other section, with `recall` 1 and 0.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the live part drives the session with the tests' fake source

from engine.audio.demo import demo_sections, write_demo_track  # noqa: E402
from engine.audio.rhythms import SR, clicks  # noqa: E402
from engine.render.shader import gl_unavailable  # noqa: E402
from live.export.files import frame_path  # noqa: E402
from live.export.landing import errors, export_changes, export_recall  # noqa: E402


def renderers() -> list[str]:
    return ["numpy"] + (["shader"] if gl_unavailable() is None else [])


def export_errors(tmp: Path) -> list[dict]:
    r = clicks(150.0, 16.0, accent=2.0)
    track = tmp / "clicks.wav"
    sf.write(track, r.samples, SR)
    rows = []
    for kind in renderers():
        for latency_ms in (0, 80, 200):
            for compensate in (True, False):
                out = tmp / f"{kind}-{latency_ms}-{compensate}"
                t0 = time.perf_counter()
                onsets, expected, logged = export_changes(track, r.downbeats, out, kind, latency_ms / 1000,
                                                          compensate=compensate)
                rows.append({"renderer": kind, "latency_ms": latency_ms, "compensate": compensate,
                             **errors(onsets, expected), "changes": len(expected),
                             "log_agrees": [c["appeared_frame"] for c in logged] == onsets,
                             "seconds": round(time.perf_counter() - t0, 2)})
                print(rows[-1], flush=True)
                shutil.rmtree(out)
    return rows


def demo_drop(tmp: Path, frames_dir: Path | None) -> dict:
    track = write_demo_track(tmp / "demo.wav")
    drop = next(s.start for s in demo_sections() if s.name == "drop")
    kind = renderers()[-1]
    out = tmp / "drop"
    # One change, asked 0.4 s before the drop's bar line: it must land on it (the truth is the demo's own
    # grid). quantize = "beat": the offline tracker finds no downbeats in the demo (confidence 0), and
    # bars counted from its first beat put the bar line a beat after the drop.
    truth = np.array([drop - 2 * 1.9355, drop - 0.4 - 0.31, drop, drop + 1.9355])
    onsets, expected, logged = export_changes(track, truth, out, kind, 0.2, changes=1, size=256, quantize="beat")
    result = {"renderer": kind, "latency_ms": 200, "quantize": "beat", "drop_s": round(drop, 3), "expected_frame": expected[0],
              "onset_frame": onsets[0], "logged": logged}
    if frames_dir is not None:
        frames_dir.mkdir(parents=True, exist_ok=True)
        for i in (onsets[0] - 1, onsets[0], onsets[0] + 1):
            shutil.copy(frame_path(out, i), frames_dir / f"drop-{kind}-frame{i}.png")
        result["frames"] = sorted(p.name for p in frames_dir.glob("drop-*.png"))
    return result


def prepared_drop(tmp: Path) -> list[dict]:
    from live.export.landing import export_drop, first_difference, logged_drops

    track, drop, start, end = write_demo_track(tmp / "demo.wav"), 36.774, 33.0, 39.0
    rows = []
    for latency_ms in (0, 80, 200):
        on, off = tmp / f"cue-{latency_ms}", tmp / f"plain-{latency_ms}"
        export_drop(track, on, "numpy", latency_ms / 1000, start, end)
        export_drop(track, off, "numpy", latency_ms / 1000, start, end, drops=False)
        log = logged_drops(on)
        rows.append({"renderer": "numpy", "latency_ms": latency_ms, "expected_frame": int(round((drop - start) * 30)),
                     "first_drop_frame": first_difference(on, off, 0, int((end - start) * 30)),
                     "states": [d["state"] for d in log],
                     "prepared_s_before": round(drop - log[0]["build_t"], 3) if log else None})
        print(rows[-1], flush=True)
    return rows


def live_errors(tmp: Path) -> dict:
    import pytest  # noqa: F401 - the tests' helpers import it

    from test_anticipation import live_drop, live_onsets, live_soft_cut, live_switch

    out = {}
    for anticipate in (True, False):
        d = tmp / f"live-{anticipate}"
        d.mkdir()
        errs, frame = live_onsets(d, anticipate)
        out["on" if anticipate else "off"] = {"onset_minus_downbeat_ms": [round(e * 1000, 1) for e in errs],
                                             "median_ms": round(float(np.median(errs)) * 1000, 1),
                                             "display_frame_ms": round(frame * 1000, 1)}
        print(out, flush=True)
    out["soft_cut"], out["cue"], out["drop"] = {}, {}, {}
    for anticipate in (True, False):
        key = "on" if anticipate else "off"
        downbeat, half, began = live_soft_cut(mkdir(tmp / f"cut-{key}"), anticipate)
        out["soft_cut"][key] = {"half_minus_downbeat_ms": round((half - downbeat) * 1000, 1),
                                "began_minus_downbeat_less_half_cut_ms": round((began - downbeat + 0.3) * 1000, 1)}
        _, _, seen, intended = live_switch(mkdir(tmp / f"cue-{key}"), anticipate, {"quantize": "off", "switch": "immediate"},
                                           cues=[(3.1, ("blue", "downbeat"))])
        out["cue"][key] = {"first_frame_minus_downbeat_ms": round((next(t for t, b in seen if b > 0.5) - intended) * 1000, 1)}
        downbeat, _, shown = live_drop(mkdir(tmp / f"drop-{key}"), True, anticipate)
        out["drop"][key] = {"first_frame_minus_downbeat_ms": round((next(t for t, m in shown if m) - downbeat) * 1000, 1)}
        print(out, flush=True)
    _, session, shown = live_drop(mkdir(tmp / "fizzle"), False)
    out["drop"]["fizzle"] = {"drop_frames_shown": sum(m for _, m in shown), "log": [s for _, s in session.report.drops]}
    print(out, flush=True)
    return out


def mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def recall_effect(tmp: Path) -> list[dict]:
    from audio_synth import noise_bursts, progression

    a, b = progression(False, bars=2, chord_s=1.25)[: 10 * SR], noise_bursts(10.0, seed=1)
    track = tmp / "abab.wav"
    sf.write(track, np.concatenate([a, b, a, b]), SR)
    rows = []
    for kind in renderers():
        for recall in (1.0, 0.0):
            letters, (share_a, share_b) = export_recall(track, tmp / f"recall-{kind}-{recall}", kind, recall)
            rows.append({"renderer": kind, "recall": recall, "letters": list(letters),
                         "second_A_nearer_first_A": share_a, "second_B_nearer_first_B": share_b})
            print(rows[-1], flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/anticipation.json")
    ap.add_argument("--frames-dir", type=Path, default=None, help="write the three frames around the demo's drop here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        result = {
            "command": "python scripts/bench_anticipation.py",
            "machine": {"platform": platform.platform(), "python": platform.python_version()},
            "export_change_onsets": export_errors(tmp),
            "demo_drop": demo_drop(tmp, args.frames_dir),
            "prepared_drop": prepared_drop(tmp),
            "live_change_onsets": live_errors(tmp),
            "recall": recall_effect(tmp),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
