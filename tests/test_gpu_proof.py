"""scripts/gpu_proof --dry-run: the GPU proof script itself, on the CPU with the tiny profile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_dry_run_writes_one_json_per_case_and_a_summary(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_proof"), "--dry-run", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    rows = summary["rows"]
    assert [r["status"] for r in rows] == ["ok", "ok"]
    for r in rows:
        case = json.loads((tmp_path / f"{r['case']}.json").read_text())
        assert r["img_s"] == case["images_per_s"] > 0  # throughput, readback included
        assert r["unet_ms"] > 0 and r["decode_ms"] > 0 and r["end_to_end_ms"] > 0
        assert case["command"].startswith("beatcanvas bench --profile tiny --device cpu")
    stream = json.loads((tmp_path / "tiny-lightning-2step-streambatch.json").read_text())
    assert stream["stream_batch_active"] and "unet_step_stream_batch" in stream["stages"]
    transitions = json.loads((tmp_path / "tiny-turbo-1step-transitions4.json").read_text())
    assert transitions["transition_frames_active"] == 4
    table = (tmp_path / "summary.md").read_text()
    assert table.count("| tiny-") == 2 and "img_s" in table


def test_budget_too_small_skips_cases_and_says_so(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_proof"), "--dry-run", "--budget", "1", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1  # nothing measured
    rows = json.loads((tmp_path / "summary.json").read_text())["rows"]
    assert all(r["status"].startswith("skipped") and "budget" in r["status"] for r in rows)
