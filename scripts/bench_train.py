#!/usr/bin/env python
"""Benchmark: what one training step, one augmentation and one CLAP encode cost, so an epoch can be
predicted before a run. Writes JSON:

    python scripts/bench_train.py --profile tiny --device cpu [--batch-size 64] [--steps 20]
    python scripts/bench_train.py --profile random-full --device cuda [--dtype bf16]   # on a GPU

The head step uses the real `head_loss` with random targets (speed does not depend on the values).
random-full reads the full-size widths (768/1280, pooled 1280) and CLAP's 512 from the shipped
configs; it never builds the text encoders (their outputs are cached before training anyway).

Epoch time ≈ ceil(items / batch) × step_s  [+ items × (augment_s + clap_s) for an audio manifest].
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.understanding.heads.transformer import HeadConfig, TransformerHead  # noqa: E402
from engine.train.loss import LossConfig, head_loss  # noqa: E402


def head_config(profile: str, layers: int, heads: int) -> HeadConfig:
    from engine.models.profiles import load_config

    if profile == "tiny":
        return HeadConfig.for_profile(profile, 16, layers=layers, heads=min(heads, 4))
    return HeadConfig.for_profile(profile, load_config("clap")["projection_dim"], layers=layers, heads=heads)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_steps(cfg: HeadConfig, device: torch.device, dtype, batch: int, negatives: int, steps: int) -> dict:
    torch.manual_seed(0)
    head = TransformerHead(cfg).to(device).train()
    opt = torch.optim.Adam(head.parameters(), lr=1e-4)
    d, p = cfg.prompt_dim, cfg.pooled_dim
    x = torch.randn(batch, cfg.audio_dim, device=device)
    pos_t, neg_t = torch.randn(batch, d, device=device), torch.randn(batch, negatives, d, device=device)
    pos_p, neg_p = torch.randn(batch, p, device=device), torch.randn(batch, negatives, p, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(steps + 3):
        sync(device)
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            pe, pooled = head(x)
            out = head_loss(pe, pooled, pos_t, neg_t, pos_p, neg_p, LossConfig())
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        sync(device)
        if i >= 3:  # warm-up
            times.append(time.perf_counter() - t0)
    n_params = sum(q.numel() for q in head.parameters())
    return {
        "params": n_params,
        "step_s_median": float(np.median(times)),
        "step_s_min": float(np.min(times)),
        "flop_per_step_estimate": 6 * n_params * batch * cfg.tokens,  # 6·N·tokens (fwd+bwd), attention excluded
        "peak_cuda_memory_gb": torch.cuda.max_memory_allocated() / 1e9 if device.type == "cuda" else None,
    }


def bench_audio(profile: str, device: torch.device, clips: int) -> dict:
    from engine.understanding.clap import ClapEncoder
    from engine.models.profiles import build_clap
    from engine.train.augment import augment

    rng = np.random.default_rng(0)
    song = (0.1 * rng.standard_normal(48_000 * 108)).astype(np.float32)  # middle 3/5 of a 3-minute song
    t0 = time.perf_counter()
    views = [augment(song, np.random.default_rng([0, 0, i])) for i in range(clips)]
    aug = (time.perf_counter() - t0) / clips
    enc = ClapEncoder(build_clap(profile, device=device), device=device)
    enc.encode_audio(np.stack(views[:1]))
    sync(device)
    t0 = time.perf_counter()
    enc.encode_audio(np.stack(views), batch_size=clips)
    sync(device)
    return {"augment_s_per_clip_one_core": aug, "clap_s_per_clip": (time.perf_counter() - t0) / clips}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="tiny", choices=["tiny", "random-full"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--negatives", type=int, default=20)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--audio-clips", type=int, default=4, help="0 skips the augment/CLAP timing")
    ap.add_argument("--items", type=int, default=20000, help="epoch size used for the epoch estimate")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--out", default="bench/results/train.json")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    cfg = head_config(a.profile, a.layers, a.heads)
    res = {
        "profile": a.profile, "device": str(device), "dtype": a.dtype, "batch_size": a.batch_size,
        "negatives": a.negatives, "head": {"widths": cfg.widths, "layers": cfg.layers, "heads": cfg.heads},
        "torch": torch.__version__, "machine": platform.machine(), "threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
    }
    res.update(bench_steps(cfg, device, torch.bfloat16 if a.dtype == "bf16" else None, a.batch_size, a.negatives, a.steps))
    steps_per_epoch = math.ceil(a.items / a.batch_size)
    res["epoch_estimate"] = {"items": a.items, "steps": steps_per_epoch,
                             "text_distill_s": steps_per_epoch * res["step_s_median"]}
    if a.audio_clips:
        res.update(bench_audio(a.profile, device, a.audio_clips))
        per_item = res["augment_s_per_clip_one_core"] + res["clap_s_per_clip"]
        res["epoch_estimate"]["audio_manifest_s"] = res["epoch_estimate"]["text_distill_s"] + a.items * per_item
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
