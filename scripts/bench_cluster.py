#!/usr/bin/env python
"""Chunked export on this machine: frames/s with 1 process and with N local Ray workers (procedural
renderer), what the chunks' warm-ups cost, and how visible the seams are (a benchmark, not a test).

    python scripts/bench_cluster.py --workers 2 --json bench/results/cluster-cpu.json

Reported:
- `frames_per_s`: the demo track exported at --size/--fps in one process (`workers_1`) and on N
  Ray workers (`workers_N`, Ray start-up and model loading included), and their ratio;
- `warmup`: the frames rendered but not written per frame written, and the measured cost of 10 s
  chunks against one chunk (same process, same settings);
- `seams`: the mean absolute change across each chunk boundary against the 99th percentile of the
  changes inside chunks, on the demo track, for the procedural renderer and (with --sdxl) the tiny SDXL.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from engine.audio.beatnet.choice import analyze_track_beats  # noqa: E402
from engine.audio.demo import ensure_demo_track  # noqa: E402
from live.export.run import export_stages  # noqa: E402
from live.export.chunks import plan_chunks, warmup  # noqa: E402
from live.export.plan import ExportSettings, plan_export  # noqa: E402
from live.export.recipe import Recipe, build  # noqa: E402
from live.presets.schema import Preset  # noqa: E402
from live.session.show import ShowOptions, resolve  # noqa: E402


def recipe(track: Path, out: Path, renderer: str, size: tuple[int, int], fps: float, chunk_s: float) -> Recipe:
    opts = ShowOptions(renderer=renderer, profile="tiny", size=size, live=False, allow_cpu_diffusion=True, device="cpu")
    spec = resolve(Preset(name="bench"), opts)
    s = ExportSettings(track=track, out_dir=out, fps=fps, width=size[0], height=size[1], seed=spec.render.seed,
                       preset_name=spec.name, preset_hash=spec.preset_hash, profile=spec.profile,
                       reactivity=spec.compositor.reactivity, crossfade_ms=spec.compositor.crossfade_ms, chunk_s=chunk_s)
    return Recipe(s, spec)


def one_process(r: Recipe) -> float:
    start = time.perf_counter()
    built = build(r)
    export_stages(dataclasses.replace(r.settings, renderer=built.renderer, model_ids=built.model_ids), built.stages,
                  force=True)
    return time.perf_counter() - start


def cluster(r: Recipe, workers: int) -> float:
    import ray

    from live.export.cluster import run_cluster

    env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "SDL_VIDEODRIVER": "dummy"}
    start = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    try:
        run_cluster(r, workers, force=True)
    finally:
        ray.shutdown()
    return time.perf_counter() - start


def seams(r: Recipe) -> dict:
    from test_export_chunks import seam_metric

    one_process(r)
    s = r.settings
    n = plan_export(s).n_frames
    found, p99 = seam_metric(s.out_dir, n, s.fps, s.chunk_s, analyze_track_beats(s.track, s.beats)[0])
    return {"renderer": r.spec.render.kind, "size": f"{s.width}x{s.height}", "fps": s.fps,
            "seams": [round(x, 2) for x in found], "max_seam": round(max(found), 2), "p99_inside": round(p99, 2),
            "holds": max(found) <= p99}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--sdxl", action="store_true", help="also measure the seams of the tiny SDXL renderer")
    ap.add_argument("--json", help="write the result here")
    args = ap.parse_args()
    size = tuple(int(x) for x in args.size.split("x"))
    track = ensure_demo_track(60.0)
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    r10 = recipe(track, work / "one", "procedural", size, args.fps, 10.0)
    n = plan_export(r10.settings).n_frames
    chunks = plan_chunks(n, 0.0, args.fps, 10.0, analyze_track_beats(track)[0])
    extra = sum(c.first - warmup(c, 0.0, args.fps).first_frame for c in chunks)
    t1 = one_process(r10)
    t_one_chunk = one_process(recipe(track, work / "whole", "procedural", size, args.fps, 0.0))
    tn = cluster(dataclasses.replace(r10, settings=dataclasses.replace(r10.settings, out_dir=work / "n")), args.workers)
    result = {
        "benchmark": "cluster export", "track": "demo 60 s", "renderer": "procedural", "size": args.size,
        "fps": args.fps, "frames": n, "chunks": len(chunks), "chunk_s": 10.0,
        "frames_per_s": {"workers_1": round(n / t1, 1), f"workers_{args.workers}": round(n / tn, 1),
                         "speed_up": round(t1 / tn, 2)},
        "warmup": {"frames_rendered_not_written_per_frame": round(extra / n, 3),
                   "one_chunk_s": round(t_one_chunk, 2), "ten_s_chunks_s": round(t1, 2),
                   "overhead_percent": round(100 * (t1 - t_one_chunk) / t_one_chunk, 1)},
        "seams": [seams(recipe(track, work / "seams", "procedural", (160, 90), 30.0, 10.0))],
        "cpus": os.cpu_count(), "load_average_1min": os.getloadavg()[0], "python": platform.python_version(),
        "command": "python scripts/bench_cluster.py " + " ".join(sys.argv[1:]),
    }
    if args.sdxl:
        result["seams"].append(seams(recipe(track, work / "seams-sdxl", "sdxl", (64, 64), 8.0, 10.0)))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
