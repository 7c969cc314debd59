#!/usr/bin/env python
"""Benchmark: offline export throughput (frames/s, PNGs written) on this machine, as JSON.

Synthesizes a music-like track, builds the stages through live.session.factory exactly as
`beatcanvas export` does, and times `run_export` (model building excluded; PNG encoding, features,
conditioning and compositing included). Cases: the procedural renderer at 512x512 and 1280x720,
the procedural renderer with --render-every 4, and the tiny SDXL profile (tiny UNet + tiny CLAP
understanding) at 64x64. Also records the peak Python heap during the longest run (flat memory).

    python scripts/bench_export.py [--seconds 10] [--out bench/results/export.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.audio.demo import write_demo_track  # noqa: E402
from live.export.run import ExportSettings, run_export  # noqa: E402


def case(track: Path, work: Path, name: str, *, renderer: str, profile: str, size: tuple[int, int],
         fps: float, seconds: float, render_every: int = 1, trace: bool = False) -> dict:
    from live.session.factory import build_stages
    from live.presets.library import load_preset
    from live.session.show import ShowOptions, resolve

    w, h = size
    t0 = time.perf_counter()
    spec = resolve(load_preset("default"), ShowOptions(renderer=renderer, profile=profile, allow_cpu_diffusion=True,
                                                       size=size, seed=0))
    stages = build_stages(spec)
    build_s = time.perf_counter() - t0
    s = ExportSettings(
        track=track, out_dir=work / name, fps=fps, width=w, height=h, end=seconds, render_every=render_every,
        preset_hash=spec.preset_hash, renderer=stages.render.name, profile=profile, model_ids=stages.model_ids,
        reactivity=spec.compositor.reactivity, crossfade_ms=spec.compositor.crossfade_ms,
    )
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    r = run_export(s, stages.render, stages.understanding, force=True)
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] if trace else None
    if trace:
        tracemalloc.stop()
    out = {
        "case": name, "renderer": stages.render.name, "profile": profile, "size": f"{w}x{h}", "fps": fps,
        "render_every": render_every, "frames": r.n_frames, "seconds": round(dt, 3),
        "frames_per_s": round(r.n_frames / dt, 2), "x_realtime": round(r.n_frames / dt / fps, 3),
        "build_s": round(build_s, 2),
    }
    if peak is not None:
        out["peak_python_heap_mb"] = round(peak / 2**20, 1)
    print(json.dumps(out), file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the exported span")
    ap.add_argument("--tiny-seconds", type=float, default=2.0, help="span for the (slow) tiny SDXL case")
    ap.add_argument("--out", type=Path, default=Path("bench/results/export.json"))
    args = ap.parse_args()

    import torch

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        track = work / "track.wav"
        write_demo_track(track, seconds=max(args.seconds, args.tiny_seconds) + 0.5)
        results = [
            case(track, work, "procedural-512", renderer="procedural", profile="real", size=(512, 512),
                 fps=30, seconds=args.seconds, trace=True),
            case(track, work, "procedural-720p", renderer="procedural", profile="real", size=(1280, 720),
                 fps=30, seconds=args.seconds),
            case(track, work, "procedural-720p-every4", renderer="procedural", profile="real", size=(1280, 720),
                 fps=30, seconds=args.seconds, render_every=4),
            case(track, work, "tiny-sdxl-64", renderer="sdxl", profile="tiny", size=(64, 64),
                 fps=10, seconds=args.tiny_seconds),
        ]
    report = {
        "bench": "export",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
