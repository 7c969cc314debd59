"""The stage benchmark behind `beatcanvas bench` and scripts/bench (scripts/gpu_proof runs it per case).

Times each stage of the flow on one profile / device / back-end and returns a JSON-ready dict that
records everything needed to reproduce and compare the numbers: the settings (and the command line
that gives them), the device name, library versions, peak GPU memory and host RSS.

Stages (milliseconds, median over `iters` after `warmup` runs; CUDA events on a GPU):
- `clap_encode`: the CLAP audio encoder on one 10 s window (`ClapEncoder.encode_audio`);
- `clap_head`: `Understanding.step(window)`, i.e. CLAP + head + smoothing — what each hop costs;
- `unet_step`: one UNet evaluation at the batch a frame uses (K for the stream batch);
- `decode`: latents → uint8 pixels on the render device (TAESDXL, or the full VAE);
- `to_host`: the uint8 frame copied to host memory;
- `end_to_end`: one frame, conditioning to pixels in host memory, waiting for it (the latency).

Throughput (`throughput`): `frames` frames rendered back to back the way the live render worker does
(CUDA graphs, asynchronous readback, stream batch or transition batches as set), one synchronisation at
the end: images per second including readback, and the per-frame GPU time from CUDA events. With
`with_understanding`, the same while a thread runs `Understanding.step` continuously on its own
low-priority stream (engine/streams.py), to show what the conditioning worker costs the picture.
Speed does not depend on weight values, so `random-full` measures the real architecture.
"""

from __future__ import annotations

import logging
import os
import platform
import resource
import statistics
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Callable, get_args

import numpy as np
import torch

from engine.errors import BeatcanvasError
from engine.models.profiles import as_profile
from engine.render.sdxl import Decoder

if TYPE_CHECKING:
    from engine.render.graphs import FrameProgram
    from engine.render.sdxl import SDXLRenderer
    from engine.types import Conditioning, Window
    from engine.understanding.pipeline import Understanding

log = logging.getLogger(__name__)

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


@dataclass(frozen=True)
class BenchSettings:
    profile: str = "tiny"
    device: str = "cpu"
    backend: str = "auto"
    size: int = 512
    steps: int = 1
    dtype: str = "auto"  # auto: fp16 on CUDA, fp32 on CPU
    model: str = "sdxl-turbo"
    decoder: str = "taesd"
    head: str = "zeroshot"
    warmup: int = 2
    iters: int = 5
    frames: int = 60  # throughput: frames rendered back to back (0 = skip)
    graphs: bool = True  # CUDA graphs of the whole frame (CUDA only)
    stream_batch: bool = False  # multi-step: K frames in flight, one batched UNet call per image
    transitions: int = 1  # 1-step: B in-between frames of each conditioning change in one call
    with_understanding: bool = False  # throughput again with the conditioning worker running flat out
    fp8: bool = False  # the UNet's linear layers in float8 (torchao; CUDA, Hopper or newer)
    hop_s: float = 0.5  # frame-time percentiles: CLAP + head run once per hop meanwhile (0 = skip)
    frame_seconds: float = 3.0  # … for at least this long

    def __post_init__(self) -> None:
        as_profile(self.profile)  # one-line errors before any model loads
        if self.decoder not in get_args(Decoder):
            raise BeatcanvasError(f"--decoder {self.decoder!r}: use {' or '.join(get_args(Decoder))}")

    @property
    def decoder_kind(self) -> Decoder:
        return "vae" if self.decoder == "vae" else "taesd"

    def resolved_dtype(self) -> str:
        if self.dtype == "auto":
            return "fp16" if self.device.startswith("cuda") else "fp32"
        if self.dtype not in DTYPES:
            raise BeatcanvasError(f"unknown dtype '{self.dtype}': choose one of auto, {', '.join(DTYPES)}")
        return self.dtype

    def command(self) -> str:
        """The command line that reproduces these settings exactly."""
        flags = [
            f"--profile {self.profile}", f"--device {self.device}", f"--backend {self.backend}",
            f"--size {self.size}", f"--steps {self.steps}", f"--dtype {self.dtype}", f"--model {self.model}",
            f"--decoder {self.decoder}", f"--head {self.head}", f"--warmup {self.warmup}", f"--iters {self.iters}",
            f"--frames {self.frames}", "--graphs" if self.graphs else "--no-graphs",
            "--stream-batch" if self.stream_batch else "--no-stream-batch", f"--transitions {self.transitions}",
        ]
        if self.with_understanding:
            flags.append("--with-understanding")
        if self.fp8:
            flags.append("--fp8")
        flags.append(f"--hop-s {self.hop_s} --frame-seconds {self.frame_seconds}")
        return "beatcanvas bench " + " ".join(flags)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_stage(fn: Callable[[], object], device: torch.device, warmup: int, iters: int) -> dict:
    """Median / min / max time (ms) of `fn` after `warmup` untimed calls: CUDA events around each call
    on a GPU (device time, no host-side noise), the wall clock with a sync elsewhere."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(max(1, iters)):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return {
        "median_ms": round(statistics.median(times), 3),
        "min_ms": round(min(times), 3),
        "max_ms": round(max(times), 3),
        "n": len(times),
    }


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model} ({os.cpu_count()} logical cores, torch threads {torch.get_num_threads()})"


def library_versions() -> dict[str, str | None]:
    import diffusers
    import transformers

    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
    }
    for name in ("torch_tensorrt", "tensorrt", "triton"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:  # absent or broken install: record that, do not fail the benchmark
            versions[name] = None
    return versions


def host_rss() -> dict[str, int]:
    """Current and peak resident set size of this process, in bytes."""
    current = 0
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    return {"host_rss_bytes": current, "host_peak_rss_bytes": peak}


def bench_window(seconds: float = 10.0) -> Window:
    """A deterministic 10 s window of music-like audio (a chord with a pulse)."""
    from engine.types import SAMPLE_RATE, Window

    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    pulse = (np.sin(2 * np.pi * 2.0 * t) > 0.95).astype(np.float64)
    samples = (0.2 * chord + 0.3 * pulse * np.random.default_rng(0).standard_normal(t.size)).astype(np.float32)
    return Window(samples=samples, t_end=seconds)


def stage_program(fn: Callable[[], torch.Tensor], renderer: SDXLRenderer) -> FrameProgram:
    """`fn` as the renderer would run it: a CUDA graph when the renderer uses graphs."""
    from engine.render.graphs import FrameProgram

    return FrameProgram(fn, renderer.device, use_graph=renderer.use_graphs, name="bench stage")


def distinct_conditionings(conditioning: Conditioning, n: int = 4) -> list:
    """`n` different conditionings around `conditioning` (new objects, as the conditioning worker
    hands over each hop) to drive the transition batches and a realistic upload rate."""
    from engine.types import Conditioning

    g = torch.Generator().manual_seed(1)
    out = []
    for _ in range(n):
        e, p = conditioning.prompt_embeds, conditioning.pooled_prompt_embeds
        out.append(Conditioning(e + 0.1 * torch.randn(e.shape, generator=g).to(e), p + 0.1 * torch.randn(p.shape, generator=g).to(p)))
    return out


def throughput(renderer: SDXLRenderer, conds: list, frames: int, every: int, device: torch.device) -> dict:
    """`frames` frames as the render worker makes them (a new conditioning every `every` frames), one
    synchronisation at the end: images/s including readback, and per-frame device time (CUDA events)."""
    warm = 2 * every if every <= frames else 3  # two full transitions, or a few frames
    for i in range(warm):
        renderer.render(conds[(i // every) % len(conds)])
    synchronize(device)
    t0 = time.perf_counter()
    reused = 0
    for i in range(frames):
        frame = renderer.render(conds[((warm + i) // every) % len(conds)])
        reused += frame.reused
    synchronize(device)
    wall = time.perf_counter() - t0
    in_betweens = frames - frames // renderer.transition_frames if renderer.transition_frames > 1 else 0
    return {
        "frames": frames,
        "images_per_s": round(frames / wall, 2),
        "distinct_images_per_s": round((frames - reused - in_betweens) / wall, 2),  # no in-betweens, no repeats
        "ms_per_image": round(wall * 1e3 / frames, 3),
        "reused_frames": reused,
    }


def throughput_with_understanding(renderer: SDXLRenderer, understanding: Understanding, window: Window, conds: list,
                                  frames: int, every: int, device: torch.device) -> dict:
    """Throughput while a thread runs `Understanding.step` back to back on a low-priority stream."""
    from engine.streams import BackgroundStream

    background, stop, hops = BackgroundStream(device), threading.Event(), []

    def work() -> None:
        with torch.inference_mode():
            while not stop.is_set():
                with background():
                    understanding.step(window)
                hops.append(time.perf_counter())

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        result = throughput(renderer, conds, frames, every, device)
    finally:
        stop.set()
        worker.join(timeout=120)
    span = hops[-1] - hops[0] if len(hops) > 1 else 0.0
    result["understanding_hops_per_s"] = round((len(hops) - 1) / span, 2) if span > 0 else 0.0
    return result


# Dense bf16/fp16 tensor-core peaks (TFLOP/s, no sparsity) from the vendors' data sheets, by GPU name.
PEAK_TFLOPS = {"H200": 989.0, "H100 80GB HBM3": 989.0, "H100 PCIe": 756.0, "H100 NVL": 835.0, "GH200": 989.0,
               "A100": 312.0, "L40S": 362.0, "RTX 4090": 165.0, "RTX 5090": 209.0, "B200": 2250.0}


def peak_tflops(name: str) -> float | None:
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def count_flops(fn: Callable[[], object]) -> int:
    """Floating-point operations of one call (torch's FlopCounterMode: matmuls, convolutions, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with FlopCounterMode(display=False) as counter:
            fn()
    except Exception as e:  # noqa: BLE001 - a counting failure must not cost the benchmark
        log.warning("FLOP count failed: %s", e)
        return 0
    return int(counter.get_total_flops())


def percentiles(values_ms: list[float]) -> dict:
    a = np.asarray(values_ms, dtype=np.float64)
    return {f"p{q}_ms": round(float(np.percentile(a, q)), 3) for q in (50, 95, 99)} | {
        "max_ms": round(float(a.max()), 3), "n": int(a.size)}


def frame_times_with_hops(renderer: SDXLRenderer, understanding: Understanding, window: Window, conds: list,
                          frames: int, seconds: float, hop_s: float, device: torch.device) -> dict:
    """Distinct frames back to back as the live render worker makes them while CLAP + head run once
    every `hop_s` on a low-priority stream (as live): p50/p95/p99 of the time between frames and the
    distinct images per second (no in-between or repeated frames are counted)."""
    from engine.streams import BackgroundStream

    background, stop, hops = BackgroundStream(device), threading.Event(), []

    def work() -> None:
        with torch.inference_mode():
            while not stop.wait(hop_s):
                with background():
                    understanding.step(window)
                    synchronize(device)  # the hop's result is read by the host (as live: labels, HUD)
                hops.append(time.perf_counter())

    for c in conds[:3]:  # warm
        renderer.render(c)
    synchronize(device)
    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    intervals, distinct = [], 0
    try:
        t0 = last = time.perf_counter()
        i = 0
        while i < frames or last - t0 < seconds:
            frame = renderer.render(conds[(i // 8) % len(conds)])  # a new conditioning every 8 frames
            now = time.perf_counter()
            intervals.append((now - last) * 1e3)
            distinct += not frame.reused
            last, i = now, i + 1
        synchronize(device)
        wall = time.perf_counter() - t0
    finally:
        stop.set()
        worker.join(timeout=120)
    return {**percentiles(intervals), "distinct_images_per_s": round(distinct / wall, 2), "hops": len(hops), "hop_s": hop_s}


def run_bench(settings: BenchSettings, progress: Callable[[str], None] | None = None) -> dict:
    """Build the profile's components, time every stage, and return the result dict."""
    from engine.models.profiles import build_clap, build_sdxl, build_text_encoders
    from engine.render.sdxl import SDXLRenderer
    from engine.understanding.pipeline import build_understanding

    say = progress or (lambda msg: log.info("%s", msg))
    device = torch.device(settings.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BeatcanvasError("--device cuda but torch sees no CUDA GPU: use --device cpu or a CUDA build of torch")
    dtype_name = settings.resolved_dtype()
    dtype = DTYPES[dtype_name]
    if settings.size % 8 or settings.steps < 1 or settings.transitions < 1 or settings.frames < 0:
        raise BeatcanvasError("--size must be a multiple of 8; --steps and --transitions at least 1; --frames ≥ 0")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        torch.backends.cudnn.benchmark = True

    t0 = time.perf_counter()
    say(f"building {settings.profile} components on {device} ({dtype_name})…")
    if settings.profile == "tiny" and device.type == "cpu" and dtype == torch.float32 and settings.model == "sdxl-turbo":
        from engine.models.profiles import build_tiny_all

        clap, text, sdxl = build_tiny_all()  # built once per process (shared with the tests)
    else:
        profile = as_profile(settings.profile)
        clap = build_clap(profile, device=device, dtype=dtype)
        text = build_text_encoders(profile, device=device, dtype=dtype, model=settings.model)
        sdxl = build_sdxl(profile, settings.model, device=device, dtype=dtype, with_vae=settings.decoder == "vae")
    build_s = time.perf_counter() - t0

    notes: list[str] = []
    cache_dir = tempfile.TemporaryDirectory()
    understanding = build_understanding(
        as_profile(settings.profile), head=settings.head, device=device, dtype=dtype, clap=clap, text=text,
        cache_dir=cache_dir.name, sdxl_model=settings.model,
    )
    window = bench_window()
    say("timing CLAP + head…")
    last: list = []
    with torch.inference_mode():
        stages = {
            "clap_encode": time_stage(lambda: understanding.encoder.encode_audio(window), device, settings.warmup, settings.iters),
            "clap_head": time_stage(lambda: last.append(understanding.step(window)), device, settings.warmup, settings.iters),
        }
    conditioning = last[-1]
    notes.append(
        f"clap_head = engine.understanding.pipeline.Understanding.step ({settings.head} head; prompt encodings are "
        "LRU-cached, as they are live when the music is steady)"
    )

    say(f"preparing the renderer (backend {settings.backend})…")
    t1 = time.perf_counter()
    make = lambda **kw: SDXLRenderer(  # noqa: E731
        sdxl, settings.size, settings.size, steps=settings.steps, decoder=settings.decoder_kind, device=device,
        dtype=dtype, backend=settings.backend, cuda_graphs=settings.graphs, progress=say, fp8=settings.fp8, **kw,
    )
    latency = make()  # one frame at a time, waiting for each: the latency path (export's)
    with torch.inference_mode():
        say("timing the first frame (includes compilation and graph capture)…")
        first_frame_ms = time_stage(lambda: latency.render(conditioning), device, 0, 1)["median_ms"]
        prepare_s = time.perf_counter() - t1
        to_first_frame_s = time.perf_counter() - t0
        say("timing UNet step, decode, to host, end to end…")
        inputs = latency.inputs(1)
        t0_step = torch.tensor(latency._t2i.steps[0].t, device=device)
        # Timed as the frame runs them: replayed CUDA graphs when graphs are on (eager kernel launches
        # from Python would time the CPU, not the GPU), plain calls otherwise.
        unet = stage_program(lambda: latency.unet_eps(inputs.noise, t0_step, inputs.embeds, inputs.pooled, inputs.time_ids), latency)
        decode = stage_program(lambda: latency.decode(inputs.prev), latency)
        with latency.on_render_stream():
            stages["unet_step"] = time_stage(unet, device, settings.warmup, settings.iters)
            stages["decode"] = time_stage(decode, device, settings.warmup, settings.iters)
        decoded = latency.decode(inputs.prev)
        stages["to_host"] = time_stage(lambda: latency.to_host(decoded), device, settings.warmup, settings.iters)
        stages["end_to_end"] = time_stage(lambda: latency.render(conditioning), device, settings.warmup, settings.iters)

    result_extra: dict = {"graphed": bool(latency._programs) and all(p.graphed for p in latency._programs.values())}
    with torch.inference_mode(), latency.on_render_stream():
        # Counted on the eager UNet (a compiled or FP8 one does the same work; the counter may not see it).
        flops = count_flops(lambda: sdxl.unet(inputs.noise, t0_step, encoder_hidden_states=inputs.embeds, return_dict=False,
                                              added_cond_kwargs={"text_embeds": inputs.pooled, "time_ids": inputs.time_ids}))
        unet_s = stages["unet_step"]["median_ms"] / 1e3
        peak = peak_tflops(device_name(device)) if device.type == "cuda" else None
        tflops = flops / unet_s / 1e12 if unet_s > 0 else 0.0  # (CFG off: one UNet row per frame)
        result_extra["unet_flops"] = {"gflop_per_call": round(flops / 1e9, 2), "tflop_s": round(tflops, 2),
                                      "peak_tflop_s": peak, "share_of_peak": round(tflops / peak, 4) if peak else None}
        if settings.fp8:  # the float8 UNet against the same UNet in the run's dtype (bf16), same inputs
            ref = sdxl.unet(inputs.noise, t0_step, encoder_hidden_states=inputs.embeds, return_dict=False,
                            added_cond_kwargs={"text_embeds": inputs.pooled, "time_ids": inputs.time_ids})[0].float()
            got = latency.unet_eps(inputs.noise, t0_step, inputs.embeds, inputs.pooled, inputs.time_ids).float()
            result_extra["fp8_unet_rel_error"] = round(float((got - ref).norm() / ref.norm().clamp_min(1e-12)), 5)
    if settings.frames:
        say(f"throughput: {settings.frames} frames back to back…")
        live = make(pipelined=True, stream_batch=settings.stream_batch, transition_frames=settings.transitions)
        conds = distinct_conditionings(conditioning)
        every = live.transition_frames if live.transition_frames > 1 else settings.frames + 1
        result_extra["stream_batch_active"] = live._stream is not None
        result_extra["transition_frames_active"] = live.transition_frames
        if live._stream is not None:
            st = live._stream
            x, t = torch.zeros_like(st.x), torch.tensor([s.t for s in live._t2i.steps], device=device)
            with torch.inference_mode(), live.on_render_stream():
                batched = stage_program(lambda: live.unet(x, t, encoder_hidden_states=st.embeds, return_dict=False,
                                                          added_cond_kwargs={"text_embeds": st.pooled, "time_ids": st.time_ids})[0], live)
                stages["unet_step_stream_batch"] = time_stage(batched, device, settings.warmup, settings.iters)
        result_extra["throughput"] = throughput(live, conds, settings.frames, every, device)
        if settings.hop_s > 0:
            say(f"frame times with CLAP + head every {settings.hop_s} s…")
            result_extra["frame_times"] = frame_times_with_hops(
                live, understanding, window, conds, settings.frames, settings.frame_seconds, settings.hop_s, device)
        if settings.with_understanding:
            say("throughput with the conditioning worker running…")
            result_extra["throughput_with_understanding"] = throughput_with_understanding(
                live, understanding, window, conds, settings.frames, every, device
            )
    cache_dir.cleanup()

    if settings.warmup == 0:
        notes.append("warmup 0: each stage's first timed call includes first-call costs (lazy init, cold caches)")
    e2e = stages["end_to_end"]["median_ms"]
    result = {
        "command": settings.command(),
        "settings": {**asdict(settings), "dtype_resolved": dtype_name},
        "device": {"type": device.type, "name": device_name(device)},
        "versions": library_versions(),
        "backend": {"name": latency.backend, "reason": latency.backend_reason},
        "stages": stages,
        "images_per_s": result_extra.get("throughput", {}).get("images_per_s") or (round(1e3 / e2e, 3) if e2e > 0 else None),
        "latency_images_per_s": round(1e3 / e2e, 3) if e2e > 0 else None,
        **result_extra,
        "first_frame_ms": first_frame_ms,
        "to_first_frame_s": round(to_first_frame_s, 2),  # models built, renderer prepared, first frame shown
        "build_s": round(build_s, 2),
        "prepare_s": round(prepare_s, 2),
        "peak_gpu_memory_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
        **host_rss(),
        "notes": notes,
        "timestamp_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return result
