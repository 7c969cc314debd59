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
    for stage in result["stages"].values():
        assert stage["median_ms"] >= 0 and stage["n"] == 1
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


def test_time_stage_reports_the_median():
    delays = iter([0.0, 0.0, 0.03, 0.001, 0.002])
    import time

    result = time_stage(lambda: time.sleep(next(delays)), __import__("torch").device("cpu"), warmup=2, iters=3)
    assert result["n"] == 3 and 1.5 <= result["median_ms"] < 15 and result["max_ms"] >= 30
