"""`beatcanvas bench` on the tiny profile: runs in CI time and records every stage."""

from __future__ import annotations

import json

import pytest

from engine.bench import BenchSettings, time_stage
from engine.errors import BeatcanvasError


def test_bench_tiny_cpu_writes_json_with_every_stage(tmp_path):
    from live.cli import main

    out = tmp_path / "out.json"
    args = ["bench", "--profile", "tiny", "--device", "cpu", "--size", "64", "--warmup", "0", "--iters", "1", "--frames", "4",
            "--frame-seconds", "0.5"]
    assert main([*args, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["stages"]) == {"clap_encode", "clap_head", "unet_step", "decode", "to_host", "end_to_end"}
    for name, stage in result["stages"].items():  # each stage was timed doing real work, once
        assert stage["n"] == 1 and stage["median_ms"] > 0, name
        assert stage["min_ms"] <= stage["median_ms"] <= stage["max_ms"], name
    assert result["command"].startswith("beatcanvas bench --profile tiny --device cpu")
    assert result["settings"]["size"] == 64 and result["settings"]["dtype_resolved"] == "fp32"
    assert result["backend"]["name"] == "eager" and result["backend"]["reason"]
    assert result["versions"]["torch"] and result["versions"]["diffusers"]
    assert result["device"]["type"] == "cpu" and result["device"]["name"]
    assert result["peak_gpu_memory_bytes"] is None and result["host_rss_bytes"] > 0
    assert result["images_per_s"] > 0 and result["throughput"]["frames"] == 4
    assert result["throughput"]["distinct_images_per_s"] > 0
    assert result["frame_times"]["p50_ms"] <= result["frame_times"]["p99_ms"]  # with CLAP + head every 0.5 s
    assert result["unet_flops"]["gflop_per_call"] > 0 and result["unet_flops"]["share_of_peak"] is None  # no GPU peak


def test_bench_rejects_cuda_without_gpu_and_bad_dtype():
    import torch

    from engine.bench import run_bench

    if not torch.cuda.is_available():
        with pytest.raises(BeatcanvasError, match="CUDA"):
            run_bench(BenchSettings(device="cuda"))
    with pytest.raises(BeatcanvasError, match="dtype"):
        BenchSettings(dtype="int4").resolved_dtype()


def test_time_stage_reports_the_median(monkeypatch):
    """A fake clock that the timed function advances: the figures are exact, whatever the machine does."""
    import types

    import engine.bench

    now = [100.0]
    monkeypatch.setattr(engine.bench, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))
    delays_ms = iter([500.0, 500.0, 30.0, 1.0, 2.0])  # two warm-up calls (not timed), then three timed

    def work() -> None:
        now[0] += next(delays_ms) / 1e3

    result = time_stage(work, __import__("torch").device("cpu"), warmup=2, iters=3)
    assert result == {"median_ms": 2.0, "min_ms": 1.0, "max_ms": 30.0, "n": 3}
