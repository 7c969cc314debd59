#!/usr/bin/env python
"""Benchmark the live loop on this machine: display fps and audio-to-photon latency.

Runs a real Session (FileSource on a synthesized track, FeatureTracker, the chosen renderer, the
compositor, a window under SDL_VIDEODRIVER=dummy unless --window) and the compositor alone, and
writes JSON. Audio-to-photon latency = the source clock right after the flip minus the time of the
newest audio the shown picture's features came from (the output device's own latency, unknown
here, comes on top when a track plays through speakers).

    python scripts/bench_live.py --renderer procedural --seconds 10 --json bench_live.json
    python scripts/bench_live.py --renderer tiny --seconds 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def bench_compositor(width: int, height: int, seconds: float, render_fps: float) -> dict:
    """Compose as fast as possible with frames pushed at `render_fps` (prepared off-thread in the
    session; counted here)."""
    import numpy as np

    from engine.types import Features, Frame
    from live.screen.compositor import Compositor

    comp = Compositor(width, height)
    rng = np.random.default_rng(0)
    frames = [Frame(image=rng.integers(0, 255, (512, 512, 3), dtype=np.uint8)) for _ in range(4)]
    prepared = [comp.prepare(f) for f in frames]
    n, t0, next_push, times, cpu = 0, time.perf_counter(), 0.0, [], []
    while time.perf_counter() - t0 < seconds:
        now = time.perf_counter() - t0
        if now >= next_push:
            comp.push(prepared[n % 4], now)
            next_push += 1.0 / render_fps
        a, c = time.perf_counter(), time.thread_time()
        comp.compose(Features(t=now, beat=n % 30 == 0, beat_phase=(n % 30) / 30, low=1.4, mid=0.9, high=1.3, onset=0.6), now)
        times.append(time.perf_counter() - a)
        cpu.append(time.thread_time() - c)
        n += 1
    ms = np.asarray(times) * 1000
    t_prep = time.perf_counter()
    for f in frames * 5:
        comp.prepare(f)
    prep_ms = (time.perf_counter() - t_prep) / 20 * 1000
    return {
        "size": f"{width}x{height}", "render_fps_pushed": render_fps, "compose_fps": n / seconds,
        "compose_ms_median": float(np.median(ms)),
        # CPU time of the composing thread: what a frame costs on an idle core, load or not
        "compose_cpu_ms_median": float(np.median(np.asarray(cpu) * 1000)), "compose_ms_p95": float(np.percentile(ms, 95)),
        "prepare_ms_512_to_output": prep_ms,
    }


def bench_session(renderer: str, seconds: float, width: int, height: int, max_fps: float) -> dict:
    from engine.audio.features import FeatureTracker
    from engine.audio.demo import write_demo_track
    from live.screen.display import Display
    from live.presets.library import load_preset, preset_file
    from live.presets.playlist import ShowList
    from live.session.session import SessionConfig, build_session
    from live.session.show import ShowOptions
    from live.audio.sources import FileSource

    tmp = Path(tempfile.mkdtemp())
    track = write_demo_track(tmp / "bench.wav", max(seconds + 2, 10.0))
    preset = load_preset("default")
    if renderer == "tiny":
        opts = ShowOptions(renderer="sdxl", profile="tiny", size=(256, 256), live=True)
    else:
        opts = ShowOptions(renderer="procedural", canvas=(width, height), live=True)
    config = SessionConfig(width=width, height=height, duration=seconds, max_fps=max_fps,
                           screenshots_dir=tmp, hot_reload=False)
    t0 = time.perf_counter()
    session = build_session(FileSource(track, audio_out=False), FeatureTracker(),
                            ShowList((preset,), (preset_file("default"),), (0.0,)), opts,
                            Display(width, height, vsync=False), config)
    build_s = time.perf_counter() - t0
    cpu0 = time.process_time()
    r = session.run()
    cpu_s = time.process_time() - cpu0
    session.join_workers(5.0)
    return {
        "renderer": session.render_loop.stage.name, "reason": session.spec.reason,
        "build_s": build_s, "size": f"{width}x{height}", "frame_cap": max_fps, "seconds": r.seconds,
        "display_fps": r.display_fps, "render_fps": r.frames_rendered / r.seconds if r.seconds else 0.0,
        "frames_rendered": r.frames_rendered, "conditioning_steps": r.conditioning_steps,
        "latency_ms_median": r.latency_ms_median, "latency_ms_p95": r.latency_ms_p95,
        "render_errors": r.render_errors,
        # all threads' CPU seconds per wall second (2.0 = both cores of a 2-core machine busy)
        "cpu_cores_used": cpu_s / r.seconds if r.seconds else 0.0,
        "cpu_ms_per_display_frame": 1000 * cpu_s / max(1, r.display_frames),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--renderer", choices=("procedural", "tiny"), default="procedural")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--window", action="store_true", help="use a real window instead of the dummy driver")
    ap.add_argument("--json", type=Path, default=None, help="write the results here (also printed)")
    args = ap.parse_args()
    if not args.window:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    w, h = (int(x) for x in args.size.lower().split("x"))
    import pygame

    pygame.display.init()
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_at_start": os.getloadavg()},
        "compositor": bench_compositor(w, h, min(args.seconds, 5.0), render_fps=10.0),
        "session_capped_60": bench_session(args.renderer, args.seconds, w, h, 60.0),
        "session_uncapped": bench_session(args.renderer, min(args.seconds, 5.0), w, h, 1000.0),
    }
    result["machine"]["loadavg_at_end"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
