"""The stage benchmark behind `beatcanvas bench` and scripts/bench.

Times each stage of the flow on one profile / device / back-end, with warm-up and medians (CUDA-
synchronised on a GPU), and returns a JSON-ready dict that records everything needed to reproduce and
compare the numbers: the exact settings (and the command line that gives them), the device name,
library versions, peak GPU memory and host RSS.

Stages (milliseconds, median over `iters` after `warmup` runs):
- `clap_encode`: the CLAP audio encoder on one 10 s window (`ClapEncoder.encode_audio`);
- `clap_head`: `Understanding.step(window)`, i.e. CLAP + head + smoothing — what each hop costs;
- `unet_step`: one UNet evaluation (batch `batch`; doubled internally when guidance is on);
- `decode`: latents → uint8 pixels on the render device (TAESDXL, or the full VAE);
- `to_host`: the uint8 frame copied to host memory;
- `end_to_end`: one frame from a ready conditioning to pixels in host memory (what the render loop
  does per frame; understanding runs in its own loop, in parallel).
Speed does not depend on weight values, so `random-full` measures the real architecture.
"""

from __future__ import annotations

import logging
import os
import platform
import resource
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch

from engine.errors import BeatcanvasError

log = logging.getLogger(__name__)

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


@dataclass(frozen=True)
class BenchSettings:
    profile: str = "tiny"
    device: str = "cpu"
    backend: str = "auto"
    size: int = 512
    steps: int = 1
    batch: int = 1
    dtype: str = "auto"  # auto: fp16 on CUDA, fp32 on CPU
    model: str = "sdxl-turbo"
    decoder: str = "taesd"
    head: str = "zeroshot"
    warmup: int = 2
    iters: int = 5

    def resolved_dtype(self) -> str:
        if self.dtype == "auto":
            return "fp16" if self.device.startswith("cuda") else "fp32"
        if self.dtype not in DTYPES:
            raise BeatcanvasError(f"unknown dtype '{self.dtype}': choose one of auto, {', '.join(DTYPES)}")
        return self.dtype

    def command(self) -> str:
        """The command line that reproduces these settings exactly."""
        return (
            f"beatcanvas bench --profile {self.profile} --device {self.device} --backend {self.backend} "
            f"--size {self.size} --steps {self.steps} --batch {self.batch} --dtype {self.dtype} "
            f"--model {self.model} --decoder {self.decoder} --head {self.head} "
            f"--warmup {self.warmup} --iters {self.iters}"
        )


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_stage(fn: Callable[[], object], device: torch.device, warmup: int, iters: int) -> dict:
    """Median / min / max wall time (ms) of `fn` after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(max(1, iters)):
        t0 = time.perf_counter()
        fn()
        synchronize(device)
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


def bench_window(seconds: float = 10.0):
    """A deterministic 10 s window of music-like audio (a chord with a pulse)."""
    from engine.types import SAMPLE_RATE, Window

    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    pulse = (np.sin(2 * np.pi * 2.0 * t) > 0.95).astype(np.float64)
    samples = (0.2 * chord + 0.3 * pulse * np.random.default_rng(0).standard_normal(t.size)).astype(np.float32)
    return Window(samples=samples, t_end=seconds)


def run_bench(settings: BenchSettings, progress: Callable[[str], None] | None = None) -> dict:
    """Build the profile's components, time every stage, and return the result dict."""
    from engine.profiles import build_clap, build_sdxl, build_text_encoders
    from engine.render.sdxl import SDXLRenderer
    from engine.understanding import build_understanding

    say = progress or (lambda msg: log.info("%s", msg))
    device = torch.device(settings.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BeatcanvasError("--device cuda but torch sees no CUDA GPU: use --device cpu or a CUDA build of torch")
    dtype_name = settings.resolved_dtype()
    dtype = DTYPES[dtype_name]
    if settings.size % 8 or settings.batch < 1 or settings.steps < 1:
        raise BeatcanvasError("--size must be a multiple of 8; --batch and --steps at least 1")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    t0 = time.perf_counter()
    say(f"building {settings.profile} components on {device} ({dtype_name})…")
    if settings.profile == "tiny" and device.type == "cpu" and dtype == torch.float32 and settings.model == "sdxl-turbo":
        from engine.profiles import build_tiny_all

        clap, text, sdxl = build_tiny_all()  # built once per process (shared with the tests)
    else:
        clap = build_clap(settings.profile, device=device, dtype=dtype)
        text = build_text_encoders(settings.profile, device=device, dtype=dtype, model=settings.model)
        sdxl = build_sdxl(settings.profile, settings.model, device=device, dtype=dtype, with_vae=settings.decoder == "vae")
    build_s = time.perf_counter() - t0

    notes: list[str] = []
    with tempfile.TemporaryDirectory() as cache_dir:
        understanding = build_understanding(
            settings.profile, head=settings.head, device=device, dtype=dtype, clap=clap, text=text,
            cache_dir=cache_dir, sdxl_model=settings.model,
        )
        window = bench_window()
        say("timing CLAP + head…")
        last: list = []
        stages = {
            "clap_encode": time_stage(lambda: understanding.encoder.encode_audio(window), device, settings.warmup, settings.iters),
            "clap_head": time_stage(lambda: last.append(understanding.step(window)), device, settings.warmup, settings.iters),
        }
        conditioning = last[-1]
    notes.append(
        f"clap_head = engine.understanding.Understanding.step ({settings.head} head; prompt encodings are "
        "LRU-cached, as they are live when the music is steady)"
    )

    say(f"preparing the renderer (backend {settings.backend})…")
    t1 = time.perf_counter()
    renderer = SDXLRenderer(
        sdxl, settings.size, settings.size, steps=settings.steps, decoder=settings.decoder,
        device=device, dtype=dtype, backend=settings.backend, progress=say,
    )
    batch = settings.batch
    with torch.inference_mode():
        embeds, pooled, time_ids = renderer.embeddings(conditioning, batch)
        _, noise = renderer.generator(0, batch)
        schedule = renderer._t2i
        latents = noise * schedule.init_sigma
        t, sigma = schedule.timesteps[0], schedule.sigmas[0]

        def frame():
            return renderer.to_host(renderer.decode(renderer.render_latents(conditioning, batch)))

        say("timing the first frame (includes compilation for compiled back-ends)…")
        first_frame_ms = time_stage(frame, device, 0, 1)["median_ms"]
        prepare_s = time.perf_counter() - t1
        say("timing UNet step, decode, to host, end to end…")
        stages["unet_step"] = time_stage(
            lambda: renderer.unet_step(latents, t, sigma, embeds, pooled, time_ids), device, settings.warmup, settings.iters
        )
        decoded = renderer.decode(latents)
        stages["decode"] = time_stage(lambda: renderer.decode(latents), device, settings.warmup, settings.iters)
        stages["to_host"] = time_stage(lambda: renderer.to_host(decoded), device, settings.warmup, settings.iters)
        stages["end_to_end"] = time_stage(frame, device, settings.warmup, settings.iters)

    if settings.warmup == 0:
        notes.append("warmup 0: each stage's first timed call includes first-call costs (lazy init, cold caches)")
    e2e = stages["end_to_end"]["median_ms"]
    result = {
        "command": settings.command(),
        "settings": {**asdict(settings), "dtype_resolved": dtype_name},
        "device": {"type": device.type, "name": device_name(device)},
        "versions": library_versions(),
        "backend": {"name": renderer.backend, "reason": renderer.backend_reason},
        "stages": stages,
        "images_per_s": round(1e3 * batch / e2e, 3) if e2e > 0 else None,
        "first_frame_ms": first_frame_ms,
        "build_s": round(build_s, 2),
        "prepare_s": round(prepare_s, 2),
        "peak_gpu_memory_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
        **host_rss(),
        "notes": notes,
        "timestamp_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return result
