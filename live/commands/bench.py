"""`beatcanvas bench`: time every stage (CLAP + head, UNet step, decode, to host, end to end) → JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table


def bench(
    profile: str = typer.Option("tiny", "--profile", help="tiny | random-full (full-size, random weights) | real"),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda (or cuda:N)"),
    backend: str = typer.Option("auto", "--backend", help="auto | eager | inductor | tensorrt"),
    size: int = typer.Option(512, "--size", help="Image width and height in pixels (multiple of 8)."),
    steps: int = typer.Option(1, "--steps", help="UNet steps per frame."),
    dtype: str = typer.Option("auto", "--dtype", help="auto (fp16 on CUDA, fp32 on CPU) | fp16 | bf16 | fp32"),
    model: str = typer.Option("sdxl-turbo", "--model", help="sdxl-turbo | sdxl-lightning (its scheduler)"),
    decoder: str = typer.Option("taesd", "--decoder", help="taesd | vae"),
    head: str = typer.Option("zeroshot", "--head", help="zeroshot | transformer"),
    warmup: int = typer.Option(2, "--warmup", help="Untimed runs per stage."),
    iters: int = typer.Option(5, "--iters", help="Timed runs per stage (the median is reported)."),
    frames: int = typer.Option(60, "--frames", help="Throughput: frames rendered back to back, one sync (0 = skip)."),
    graphs: bool = typer.Option(True, "--graphs/--no-graphs", help="Capture the whole frame as a CUDA graph (CUDA)."),
    stream_batch: bool = typer.Option(False, "--stream-batch/--no-stream-batch", help="Multi-step: K frames in flight, one batched UNet call each."),
    transitions: int = typer.Option(1, "--transitions", help="1-step: in-between frames of a conditioning change rendered in one call."),
    with_understanding: bool = typer.Option(False, "--with-understanding", help="Throughput again with the conditioning worker running."),
    fp8: bool = typer.Option(False, "--fp8", help="The UNet's linear layers in float8 (torchao; CUDA, Hopper or newer)."),
    hop_s: float = typer.Option(0.5, "--hop-s", help="Frame-time percentiles with CLAP + head every HOP_S seconds (0 = skip)."),
    frame_seconds: float = typer.Option(3.0, "--frame-seconds", help="Frame-time percentiles: render for at least this long."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the full result to this JSON file."),
) -> None:
    """Time each stage with warm-up and medians; record device, versions, settings, peak memory."""
    from engine.bench import BenchSettings, run_bench  # torch and diffusers: only when benchmarking

    out = Console()
    settings = BenchSettings(
        profile=profile, device=device, backend=backend, size=size, steps=steps, dtype=dtype, model=model,
        decoder=decoder, head=head, warmup=warmup, iters=iters, frames=frames, graphs=graphs,
        stream_batch=stream_batch, transitions=transitions, with_understanding=with_understanding, fp8=fp8, hop_s=hop_s,
        frame_seconds=frame_seconds,
    )
    with out.status("benchmarking…") as status:
        result = run_bench(settings, progress=lambda msg: status.update(msg))
    table = Table(title=f"{settings.command()}", title_justify="left")
    table.add_column("stage", style="bold")
    table.add_column("median ms", justify="right")
    table.add_column("min ms", justify="right")
    for name, s in result["stages"].items():
        table.add_row(name, f"{s['median_ms']:.2f}", f"{s['min_ms']:.2f}")
    out.print(table)
    gpu = result["peak_gpu_memory_bytes"]
    out.print(
        f"{result['device']['name']} · backend {result['backend']['reason']}\n"
        f"{result['images_per_s']} images/s end to end (throughput) · {result['latency_images_per_s']} one at a time · peak GPU memory "
        f"{'n/a' if gpu is None else f'{gpu / 2**30:.2f} GiB'} · host RSS {result['host_rss_bytes'] / 2**30:.2f} GiB"
    )
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2) + "\n")
        out.print(f"wrote {json_path}")


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
