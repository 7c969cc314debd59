#!/usr/bin/env python
"""Train the beat/downbeat TCN (engine/audio/beatnet) on data from scripts/make_beat_data.py.

    scripts/train_beats.py --data /work/beatdata/train --variant causal --minutes 40 --seed 0 \
        --out engine/audio/beatnet/weights/causal.safetensors

Deterministic for a seed and thread count (torch threads: --threads, default 1). Random 12 s crops,
batches of 16, AdamW with a cosine learning rate over the time budget, BCE on beat and downbeat
targets widened to ±1 frame (0.5). Every epoch the weights are written (atomically) to --out, so a run
cut short still leaves weights; the lowest-validation-loss weights are kept (5 % of pieces held out).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.audio.beatnet.model import BeatNet, load_weights, n_params, save_weights  # noqa: E402
from engine.audio.beatnet.net import NetConfig, label_frame  # noqa: E402

CROP = 1200  # frames (12 s)
BATCH = 16


def load(data: Path, skip: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each piece after the first `skip` (by name): features (frames × N_INPUT float16) and targets
    (frames × 2 float32). Training re-reads the folder every epoch, so it may start while
    make_beat_data.py is still writing; the newest file may be half written and waits for the next read)."""
    out = []
    files = sorted(data.glob("piece_*.safetensors"))[:-1]  # the newest may be half written
    for f in files[skip:]:
        d = load_file(str(f))
        x = d["x"]
        y = np.zeros((len(x), 2), dtype=np.float32)
        for col, key in ((0, "beats"), (1, "downbeats")):
            idx = label_frame(d[key])
            for off, val in ((-1, 0.5), (1, 0.5), (0, 1.0)):
                j = idx + off
                j = j[(j >= 0) & (j < len(x))]
                y[j, col] = np.maximum(y[j, col], val)
        out.append((x, y))
    return out


def batch(pieces: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for _ in range(BATCH):
        x, y = pieces[int(rng.integers(len(pieces)))]
        if len(x) <= CROP:
            pad = CROP - len(x)
            x, y = np.pad(x, ((0, pad), (0, 0))), np.pad(y, ((0, pad), (0, 0)))
        else:
            s = int(rng.integers(0, len(x) - CROP))
            x, y = x[s : s + CROP], y[s : s + CROP]
        xs.append(x.astype(np.float32))
        ys.append(y)
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def val_loss(net: BeatNet, pieces: list[tuple[np.ndarray, np.ndarray]], pos_weight: torch.Tensor) -> float:
    net.eval()
    total, n = 0.0, 0
    with torch.inference_mode():
        for x, y in pieces:
            logits = net(torch.from_numpy(x.astype(np.float32))[None])[0]
            total += float(torch.nn.functional.binary_cross_entropy_with_logits(
                logits, torch.from_numpy(y), pos_weight=pos_weight, reduction="sum"))
            n += len(x)
    net.train()
    return total / max(1, n)


def main() -> None:
    ap = argparse.ArgumentParser(description="train the beat/downbeat TCN")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--variant", choices=["causal", "offline"], default="causal")
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--layers", type=int, default=11)
    ap.add_argument("--minutes", type=float, default=30.0, help="wall-time budget")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--init", type=Path, default=None, help="start from these weights (fine-tuning)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--downbeat-weight", type=float, default=12.0, help="BCE positive weight of downbeat frames")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    pieces = load(args.data)
    if len(pieces) < 4:
        sys.exit(f"train_beats: only {len(pieces)} pieces in {args.data}: run scripts/make_beat_data.py first")
    val = [p for i, p in enumerate(pieces) if i % 20 == 0]  # every 20th piece validates
    train = [p for i, p in enumerate(pieces) if i % 20]
    frames = sum(len(x) for x, _ in train)
    cfg = NetConfig(variant=args.variant, channels=args.channels, layers=args.layers)
    net = BeatNet(cfg)
    if args.init is not None:
        net.load_state_dict(load_weights(args.init).state_dict())
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    pos_weight = torch.tensor([4.0, args.downbeat_weight])
    steps_per_epoch = max(1, frames // (BATCH * CROP))
    budget = args.minutes * 60
    t0 = time.time()
    best = math.inf
    step, epoch = 0, 0
    log: list[dict] = []
    print(f"{cfg}: {n_params(net)} parameters; {len(train)} pieces ({frames / 360000:.2f} h), {len(val)} for validation",
          flush=True)
    net.train()
    while time.time() - t0 < budget:
        for _ in range(steps_per_epoch):
            frac = min(1.0, (time.time() - t0) / budget)
            for g in opt.param_groups:
                g["lr"] = args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac)))
            x, y = batch(train, rng)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), y, pos_weight=pos_weight)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            step += 1
            if time.time() - t0 >= budget:
                break
        epoch += 1
        for i, p in enumerate(load(args.data, skip=len(pieces)), start=len(pieces)):  # pieces written since
            pieces.append(p)
            (val if i % 20 == 0 else train).append(p)
            best = math.inf if i % 20 == 0 else best  # another validation set: losses do not compare
        frames = sum(len(x) for x, _ in train)
        steps_per_epoch = max(1, frames // (BATCH * CROP))
        v = val_loss(net, val, pos_weight)
        log.append({"epoch": epoch, "step": step, "pieces": len(pieces), "val_loss": round(v, 5), "train_loss": round(float(loss), 5),
                    "minutes": round((time.time() - t0) / 60, 2)})
        print(json.dumps(log[-1]), flush=True)
        if v < best:
            best = v
            card = {"data": str(args.data), "seed": args.seed, "init": str(args.init or ""), "lr": args.lr,
                    "downbeat_weight": args.downbeat_weight, "epoch": epoch, "steps": step,
                    "val_loss": round(v, 5), "params": n_params(net), "train_hours": round(frames / 360000, 3)}
            save_weights(net, args.out, card)
    print(f"done: best validation loss {best:.5f}, {step} steps, {(time.time() - t0) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
