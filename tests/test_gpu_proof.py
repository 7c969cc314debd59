"""scripts/gpu_proof --dry-run: the GPU proof script itself, on the CPU with the tiny profile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_dry_run_writes_one_json_per_case_and_a_summary(tmp_path):
    """The whole harness end to end on the CPU with the tiny profile: every field the GPU run reports."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_proof"), "--dry-run", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    rows = summary["rows"]
    assert [r["status"] for r in rows] == ["ok", "ok"]
    for r in rows:
        case = json.loads((tmp_path / f"{r['case']}.json").read_text())
        assert summary["cases"][r["case"]] == case  # one JSON holds everything
        assert r["distinct_img_s"] == case["throughput"]["distinct_images_per_s"] > 0  # readback included
        assert r["unet_ms"] > 0 and r["decode_ms"] > 0 and r["end_to_end_ms"] > 0
        assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"]  # frame times with CLAP + head every 0.5 s
        assert case["frame_times"]["hop_s"] == 0.5
        assert case["unet_flops"]["gflop_per_call"] > 0 and r["to_first_frame_s"] > 0
        assert case["command"].startswith("beatcanvas bench --profile tiny --device cpu")
    stream = json.loads((tmp_path / "tiny-lightning-2step-eager-streambatch.json").read_text())
    assert stream["stream_batch_active"] and "unet_step_stream_batch" in stream["stages"]
    assert {g["goal"].split()[0] for g in summary["goals"]} >= {"turbo512-1step-eager-graphs", "warm-cache"}
    assert all(g["met"] is None for g in summary["goals"] if g["goal"].startswith(("turbo", "lightning", "warm")) and "p99" not in g["goal"])
    table = (tmp_path / "summary.md").read_text()
    assert table.count("| tiny-") == 2 and "distinct_img_s" in table


def test_gpu_matrix_fits_the_device_budget_and_covers_every_back_end():
    """The case list a device run gets: eager / graphs / inductor cold and warm / FP8, 512² 1-step,
    1024² 1-step and 2-step, with budgets whose headline cases fit in 8 minutes."""
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.SourceFileLoader("gpu_proof", str(ROOT / "scripts" / "gpu_proof"))
    spec = importlib.util.spec_from_loader("gpu_proof", loader)
    proof = importlib.util.module_from_spec(spec)
    sys.modules["gpu_proof"] = proof  # its dataclasses look their module up
    try:
        loader.exec_module(proof)
    finally:
        del sys.modules["gpu_proof"]
    cases = proof.gpu_cases(100)
    names = " ".join(c.name for c in cases)
    for part in ("turbo512-1step", "turbo1024-1step", "lightning1024-2step", "eager-graphs", "eager-nographs",
                 "inductor-graphs-cold", "inductor-graphs-warm", "fp8", "streambatch"):
        assert part in names
    assert [c.cache for c in cases if "inductor" in c.name][:2] == ["cold", "warm"]
    assert sum(c.budget_s for c in cases[:6]) <= 600  # the goals, inductor cold/warm and FP8 come first
    assert all(g[0] in {c.name for c in cases} for g in proof.GOALS)


def test_budget_too_small_skips_cases_and_says_so(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_proof"), "--dry-run", "--budget", "1", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1  # nothing measured
    rows = json.loads((tmp_path / "summary.json").read_text())["rows"]
    assert all(r["status"].startswith("skipped") and "budget" in r["status"] for r in rows)
