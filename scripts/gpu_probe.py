#!/usr/bin/env python3
"""First GPU probe: how fast is the full-size SDXL frame, and where does the time go?

Runs on a bare CUDA machine (random-full weights, nothing downloaded) and writes one JSON per section
into $OUT (or bench/results/), flushing after each case so a timeout still leaves data:

    PYTHONPATH=. python3 scripts/gpu_probe.py --out "$OUT"

Per (model, size, steps, dtype): per-stage medians with CUDA events, end to end with a sync per frame
(today's render loop), throughput with one sync per run, a CUDA graph of the whole frame (UNet steps
+ decode + uint8) with asynchronous readback into pinned buffers, and the graph at batch 2 and 4.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.bench import DTYPES, library_versions  # noqa: E402
from engine.models.profiles import build_sdxl  # noqa: E402
from engine.render.sdxl import SDXLRenderer  # noqa: E402
from engine.types import Conditioning  # noqa: E402


def events_ms(fn, iters: int, warmup: int = 3) -> dict:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return {"median_ms": round(statistics.median(times), 3), "min_ms": round(min(times), 3), "n": iters}


def wall_ms(fn, iters: int, warmup: int = 3) -> dict:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": round(statistics.median(times), 3), "min_ms": round(min(times), 3), "n": iters}


class Readback:
    """uint8 frames → pinned host buffers on a side stream, double buffered."""

    def __init__(self, shape, n=2):
        self.staging = [torch.empty(shape, dtype=torch.uint8, device="cuda") for _ in range(n)]
        self.host = [torch.empty(shape, dtype=torch.uint8, pin_memory=True) for _ in range(n)]
        self.done = [torch.cuda.Event() for _ in range(n)]
        self.stream = torch.cuda.Stream()
        self.i = 0

    def push(self, images: torch.Tensor) -> None:
        k = self.i % len(self.host)
        main = torch.cuda.current_stream()
        main.wait_event(self.done[k])  # the copy that used this slot two frames ago has finished
        self.staging[k].copy_(images)
        self.stream.wait_stream(main)
        with torch.cuda.stream(self.stream):
            self.host[k].copy_(self.staging[k], non_blocking=True)
            self.done[k].record()
        self.i += 1


def throughput(frame, n: int, batch: int, readback: Readback | None) -> dict:
    """`n` frames back to back, one sync at the end: images per second, wall clock."""
    for _ in range(3):
        out = frame()
        if readback:
            readback.push(out)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        out = frame()
        if readback:
            readback.push(out)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return {"images_per_s": round(n * batch / dt, 2), "ms_per_frame": round(dt * 1e3 / n, 3), "frames": n}


def graphed(fn, warmup: int = 3):
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = fn()
    return g, out


def static_frame(renderer: SDXLRenderer, cond: Conditioning, batch: int):
    """A frame whose inputs live in static buffers and whose schedule is folded into constants."""
    sched = renderer._t2i
    embeds, pooled, time_ids = (x.contiguous().clone() for x in renderer.embeddings(cond, batch))
    _, noise = renderer.generator(0, batch)
    noise = noise.clone()
    sigmas = sched.sigmas.tolist()
    ts = [sched.timesteps[i:i + 1].clone() for i in range(len(sched.timesteps))]
    init = sched.init_sigma

    def frame():
        latents = noise * init
        for i, t in enumerate(ts):
            s, s_next = sigmas[i], sigmas[i + 1]
            eps = renderer.unet_step(latents, t, s, embeds, pooled, time_ids)
            if sched.ancestral:
                up = (s_next**2 * (s**2 - s_next**2) / s**2) ** 0.5
                down = (s_next**2 - up**2) ** 0.5
                latents = (latents.float() + eps * (down - s)).to(eps.dtype)  # up > 0 only for >1 step
            else:
                latents = (latents.float() + eps * (s_next - s)).to(eps.dtype)
        return renderer.decode(latents)

    return frame, (embeds, pooled, time_ids, noise)


def random_conditioning(renderer: SDXLRenderer, seed=1) -> Conditioning:
    g = torch.Generator().manual_seed(seed)
    z = renderer.zero_conditioning()
    return Conditioning(torch.randn(z.prompt_embeds.shape, generator=g), torch.randn(z.pooled_prompt_embeds.shape, generator=g))


def run_case(model, size, steps, dtype_name, backend, n_frames, batches, out_dir: Path) -> dict:
    dtype = DTYPES[dtype_name]
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    comps = build_sdxl("random-full", model, device="cuda", dtype=dtype)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = SDXLRenderer(comps, size, size, steps=steps, device="cuda", dtype=dtype, backend=backend)
    cond = random_conditioning(r)
    res: dict = {
        "case": f"{model}-{size}-{steps}step-{dtype_name}-{backend}",
        "model": model, "size": size, "steps": steps, "dtype": dtype_name, "backend": backend,
        "device": torch.cuda.get_device_name(), "versions": library_versions(), "build_s": round(build_s, 2),
    }

    def save():
        res["peak_gpu_memory_bytes"] = torch.cuda.max_memory_allocated()
        (out_dir / f"probe-{res['case']}.json").write_text(json.dumps(res, indent=1))
        print(json.dumps({k: v for k, v in res.items() if k != "versions"}), flush=True)

    with torch.inference_mode():
        first = time.perf_counter()
        r.to_host(r.decode(r.render_latents(cond)))
        res["first_frame_s"] = round(time.perf_counter() - first, 2)
        res["prepare_s"] = round(time.perf_counter() - t0, 2)
        embeds, pooled, time_ids = r.embeddings(cond, 1)
        lat = torch.randn((1, *r.latent_shape), device="cuda", dtype=dtype)
        t, sigma = r._t2i.timesteps[0], r._t2i.sigmas[0]
        stages = {
            "unet_step": events_ms(lambda: r.unet_step(lat, t, sigma, embeds, pooled, time_ids), 20),
            "decode": events_ms(lambda: r.decode(lat), 20),
        }
        img = r.decode(lat)
        stages["to_host"] = wall_ms(lambda: r.to_host(img), 20)
        stages["end_to_end_sync_each"] = wall_ms(lambda: r.to_host(r.decode(r.render_latents(cond))), 20)
        res["stages"] = stages
        save()
        res["eager_throughput_one_sync"] = throughput(lambda: r.decode(r.render_latents(cond)), n_frames, 1, Readback(img.shape))
        save()
        graphs = {}
        for b in batches:
            try:
                frame, _ = static_frame(r, cond, b)
                eager_out = frame().clone()
                g, out = graphed(frame)
                g.replay()
                torch.cuda.synchronize()
                diff = (out.int() - eager_out.int()).abs().max().item()
                rb = Readback(out.shape)
                graphs[f"batch{b}"] = {
                    **throughput(lambda: (g.replay(), out)[1], n_frames, b, rb),
                    "max_abs_diff_vs_eager_uint8": diff,
                }
                del g, out, rb
            except Exception as e:  # OOM, or capture not possible with this back-end
                graphs[f"batch{b}"] = {"error": f"{type(e).__name__}: {e}"[:300]}
            torch.cuda.empty_cache()
            res["cuda_graph_readback"] = graphs
            save()
    return res


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT") or "bench/results")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--only", default=None, help="model:size:steps:dtype:backend, one case (used for subprocesses)")
    ap.add_argument("--inductor-timeout", type=int, default=300)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.only:
        m, s, st, d, b = args.only.split(":")
        if b == "inductor":  # CUDA graphs are captured by hand here, so inductor must not capture its own
            import engine.render.backends as backends

            backends.compile_inductor.__defaults__ = (os.environ.get("PROBE_INDUCTOR_MODE", "max-autotune-no-cudagraphs"), True)
        run_case(m, int(s), int(st), d, b, args.frames, (1, 2, 4), out)
        return 0
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    cases = [
        ("sdxl-turbo", 512, 1, "fp16"), ("sdxl-turbo", 512, 1, "bf16"),
        ("sdxl-lightning", 1024, 2, "fp16"), ("sdxl-lightning", 1024, 2, "bf16"),
    ]
    for m, s, st, d in cases:
        t0 = time.perf_counter()
        try:
            run_case(m, s, st, d, "eager", args.frames, (1, 2, 4), out)
        except Exception as e:  # record and go on: one broken case must not cost the others
            print(f"case {m} {s} {st} {d} eager failed: {type(e).__name__}: {e}", flush=True)
        print(f"case took {time.perf_counter() - t0:.1f} s", flush=True)
        torch.cuda.empty_cache()
    # inductor in a subprocess with a time limit: compile time is the unknown
    for spec in ("sdxl-turbo:512:1:fp16:inductor",):
        t0 = time.perf_counter()
        try:
            subprocess.run([sys.executable, __file__, "--out", str(out), "--frames", str(args.frames), "--only", spec],
                           timeout=args.inductor_timeout, check=False)
        except subprocess.TimeoutExpired:
            print(f"{spec}: did not finish in {args.inductor_timeout} s", flush=True)
        print(f"{spec} took {time.perf_counter() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
