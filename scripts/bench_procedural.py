"""Benchmark: the weights-free renderers (and renderer + compositor) frames per second. Writes JSON.

    python scripts/bench_procedural.py                      # 1280x720, JSON to stdout
    python scripts/bench_procedural.py --frames 600 --out bench_procedural.json
    python scripts/bench_procedural.py --shader-only --sizes 1280x720,1920x1080,3840x2160

Shader path (`shader` in the JSON, one entry per --sizes): the GLSL renderer alone with one
read-back per frame (what export and the live render worker do), the renderer without read-back
(GPU time when the picture stays on the GPU), and the GPU compositor's compose. On a software
rasteriser (llvmpipe) these are CPU numbers; the JSON names the GL device.

Numpy path:
Each display frame is a fresh render of an energetic, beat-heavy feature stream (the most expensive
case: all field layers, the beat ring and the high-band shimmer are on), pushed into
`live.screen.compositor.Compositor` and composed, as the live display loop does when the procedural renderer
runs. Timed: the renderer alone; renderer + compositor in one thread with `render()` (full-size frame,
bilinear upscale in the renderer) and `render_small()` (internal-resolution frame, the compositor's
smoothscale upscales), with and without the default crossfade; and "pipelined", the live arrangement
(render worker thread + display loop), whose `display_fps` is the number that matters.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from engine.render.procedural import ProceduralRenderer  # noqa: E402
from engine.types import Features, Frame  # noqa: E402


def features_at(i: int, fps: float) -> Features:
    t = i / fps
    return Features(
        t=t, rms=0.3, onset=0.5 + 0.5 * np.sin(t * 3.1), low=1.4 + 0.3 * np.sin(t * 2.0), mid=1.1,
        high=1.5 + 0.2 * np.sin(t * 5.0), beat=i % 29 == 0, beat_phase=(i % 29) / 29, tempo_bpm=124.0,
        valence=0.6 * np.sin(t * 0.3), arousal=0.8,
    )


def summarize(samples: list[float], cpu_s: float | None = None) -> dict:
    """Wall-clock stats; `cpu_s` (process CPU seconds over the same frames) gives `cpu_ms_per_frame`,
    which other engineers' jobs on the shared cores barely move: 1000 / it is the uncontended fps of
    a single-threaded loop."""
    ms = sorted(s * 1000 for s in samples)
    mean = statistics.fmean(ms)
    out = {
        "frames": len(ms),
        "mean_ms": round(mean, 3),
        "median_ms": round(ms[len(ms) // 2], 3),
        "p95_ms": round(ms[int(len(ms) * 0.95) - 1], 3),
        "fps_mean": round(1000.0 / mean, 1),
    }
    if cpu_s is not None:
        out["cpu_ms_per_frame"] = round(cpu_s * 1000 / len(ms), 3)
    return out


def time_loop(step, frames: int, warmup: int = 10) -> dict:
    for i in range(warmup):
        step(i)
    out = []
    c0 = time.process_time()
    for i in range(warmup, warmup + frames):
        t0 = time.perf_counter()
        step(i)
        out.append(time.perf_counter() - t0)
    return summarize(out, time.process_time() - c0)


def pipelined(w: int, h: int, scale: int, fps: float, seconds: float, compositor_cls) -> dict:
    """The live arrangement: a render worker thread renders (and `prepare`s) frames, paced to the
    display rate `fps` (rendering faster only steals the display's core), into a latest-value slot;
    the display loop (this thread) pushes the newest one and composes. This is the number that
    matters live; it only beats the serial loop where the C loops release the GIL."""
    import threading

    comp = compositor_cls(w, h, crossfade_ms=0.0)  # each procedural frame already follows the last
    r = ProceduralRenderer(w, h, scale=scale)
    lock, slot, stop = threading.Lock(), [None], threading.Event()
    rendered = [0]
    t0, c0 = time.perf_counter(), time.process_time()

    def worker() -> None:
        while not stop.is_set():
            t = time.perf_counter() - t0
            ahead = rendered[0] / fps - t
            if ahead > 0:
                time.sleep(ahead)
                continue
            surf = comp.prepare(r.render(None, features_at(int(t * fps), fps), t))
            with lock:
                slot[0] = surf
            rendered[0] += 1

    th = threading.Thread(target=worker, daemon=True)
    th.start()
    shown, fresh, times = 0, 0, []
    while (now := time.perf_counter() - t0) < seconds:
        a = time.perf_counter()
        with lock:
            surf, slot[0] = slot[0], None
        if surf is not None:
            comp.push(surf, now)
            fresh += 1
        comp.compose(features_at(int(now * fps), fps), now)
        times.append(time.perf_counter() - a)
        shown += 1
    stop.set()
    th.join()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "cores_busy": round(cpu / elapsed, 2),  # both threads: < 2 means the shared cores were the limit
        "cpu_ms_per_display_frame": round(cpu * 1000 / max(shown, 1), 3),
        "seconds": round(elapsed, 2),
        "display_fps": round(shown / elapsed, 1),
        "render_fps": round(rendered[0] / elapsed, 1),
        "fresh_frame_share": round(fresh / max(shown, 1), 3),
        "display_frame": summarize(times),
    }


def bench_shader(w: int, h: int, fps: float, frames: int) -> dict:
    """The shader renderer and the GPU compositor at w x h (see the module docstring)."""
    from engine.render.shader import ShaderRenderer, gl_unavailable

    why = gl_unavailable()
    if why is not None:
        return {"skipped": why}
    from live.screen.gl_compositor import GLCompositor

    r = ShaderRenderer(w, h)
    comp = GLCompositor(w, h, context=r.context)
    out = {"device": r.context.info["GL_RENDERER"], "gl_version": r.context.info["GL_VERSION"]}
    out["render_with_readback"] = time_loop(lambda i: r.render(None, features_at(i, fps), i / fps), frames, 5)

    def gpu_only(i: int) -> None:
        r.render_texture(None, features_at(i, fps), i / fps)
        r.context.finish()  # wait for the GPU, or we would time only the command submission

    out["render_gpu_only"] = time_loop(gpu_only, frames, 5)
    comp.push(r.render(None, features_at(0, fps), 0.0), 0.0)
    out["compositor_compose"] = time_loop(lambda i: comp.compose(features_at(i, fps), i / fps), frames, 5)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--scale", type=int, default=4, help="internal resolution divisor")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--fps", type=float, default=60.0, help="simulated display rate (sets t per frame)")
    ap.add_argument("--seconds", type=float, default=5.0, help="duration of the pipelined run")
    ap.add_argument("--out", type=Path, default=None, help="write JSON here (default: stdout)")
    ap.add_argument("--sizes", default="1280x720,1920x1080", help="shader path sizes, comma-separated")
    ap.add_argument("--shader-frames", type=int, default=60)
    ap.add_argument("--shader-only", action="store_true", help="skip the numpy path")
    args = ap.parse_args()
    w, h, fps = args.width, args.height, args.fps
    shader = {size: bench_shader(*map(int, size.split("x")), fps, args.shader_frames) for size in args.sizes.split(",")}
    if args.shader_only:
        text = json.dumps({"bench": "procedural-shader", "shader": shader}, indent=2)
        if args.out:
            args.out.write_text(text + "\n")
        print(text)
        return

    import torch

    result: dict = {
        "bench": "procedural",
        "width": w,
        "height": h,
        "scale": args.scale,
        "internal_size": list(ProceduralRenderer(w, h, scale=args.scale).internal_size),
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "numpy": np.__version__,
        # Shared CPUs: a load average above the core count means these numbers are pessimistic.
        "loadavg_1m_at_start": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }

    result["shader"] = shader
    r = ProceduralRenderer(w, h, scale=args.scale)
    result["renderer_render"] = (
        time_loop(lambda i: r.render(None, features_at(i, fps), i / fps), args.frames)
    )
    r.reset(0)
    result["renderer_render_small"] = (
        time_loop(lambda i: r.render_small(None, features_at(i, fps), i / fps), args.frames)
    )

    try:
        from live.screen.compositor import Compositor
    except ImportError as e:
        result["compositor"] = f"not available: {e}"
    else:
        # A renderer that keeps up with the display needs no crossfade (each frame follows the last);
        # the default 400 ms one keeps every display frame mid-fade, which costs an extra alpha blit.
        variants = (
            ("with_compositor_render", False, 0.0),
            ("with_compositor_render_small", True, 0.0),
            ("with_compositor_render_crossfade_400ms", False, 400.0),
        )
        for label, small, crossfade_ms in variants:
            r.reset(0)
            comp = Compositor(w, h, crossfade_ms=crossfade_ms)

            def step(i: int, small: bool = small, comp=comp) -> None:
                f, t = features_at(i, fps), i / fps
                if small:
                    frame = Frame(image=r.render_small(None, f, t), t=t, renderer=r.name)
                else:
                    frame = r.render(None, f, t)
                comp.push(frame, t)
                comp.compose(f, t)

            result[label] = time_loop(step, args.frames)
        result["pipelined"] = pipelined(w, h, args.scale, fps, args.seconds, Compositor)
        comp = Compositor(w, h)
        comp.push(r.render(None, features_at(0, fps), 0.0), 0.0)
        result["compositor_only"] = (
            time_loop(lambda i: comp.compose(features_at(i, fps), i / fps), args.frames)
        )

    if hasattr(os, "getloadavg"):
        result["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
