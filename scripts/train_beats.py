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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.audio.beatnet.model import BeatNet, load_weights, n_params, save_weights  # noqa: E402
from engine.audio.beatnet.features import FPS  # noqa: E402
from engine.audio.beatnet.net import NetConfig, label_frame  # noqa: E402

CROP = 1200  # frames (12 s)
BATCH = 16


HELDOUT_BAND = (104.0, 112.0)  # base tempos the training data leaves out (make_beat_data.py): stretching keeps out too


@dataclass(frozen=True)
class Piece:
    x: np.ndarray  # frames × N_INPUT features (float16)
    y: np.ndarray  # frames × 2 targets (beat, downbeat)
    beats: np.ndarray  # label frame positions (fractional) of the beats
    downbeats: np.ndarray
    bpm: float  # the piece's base tempo


def targets(n: int, beats: np.ndarray, downbeats: np.ndarray) -> np.ndarray:
    """frames × 2 targets: 1 on each label frame, 0.5 on its neighbours."""
    y = np.zeros((n, 2), dtype=np.float32)
    for col, pos in ((0, beats), (1, downbeats)):
        idx = np.round(pos).astype(np.int64)
        for off, val in ((-1, 0.5), (1, 0.5), (0, 1.0)):
            j = idx + off
            j = j[(j >= 0) & (j < n)]
            y[j, col] = np.maximum(y[j, col], val)
    return y


def load(data: Path, skip: int = 0) -> list[Piece]:
    """Each piece after the first `skip` (by name): features (frames × N_INPUT float16), targets
    (frames × 2 float32) and labels. Training re-reads the folder every epoch, so it may start while
    make_beat_data.py is still writing; the newest file may be half written and waits for the next read)."""
    out = []
    files = sorted(data.glob("piece_*.safetensors"))[:-1]  # the newest may be half written
    for f in files[skip:]:
        with safe_open(str(f), framework="np") as fh:
            d = {k: fh.get_tensor(k) for k in fh.keys()}
            meta = json.loads((fh.metadata() or {}).get("meta", "{}"))
        x = d["x"]
        beats = label_frame(d["beats"]).astype(np.float64)
        downbeats = label_frame(d["downbeats"]).astype(np.float64)
        out.append(Piece(x, targets(len(x), beats, downbeats), beats, downbeats, float(meta.get("bpm", 0.0))))
    return out


def _factor(p: Piece, stretch: float, rng: np.random.Generator) -> float:
    """A random tempo factor within ±`stretch` (log-uniform) that keeps the base tempo out of the held-out band."""
    if stretch <= 0 or rng.random() < 0.3:
        return 1.0
    for _ in range(4):
        f = float(np.exp(rng.uniform(-np.log1p(stretch), np.log1p(stretch))))
        if not HELDOUT_BAND[0] <= p.bpm * f < HELDOUT_BAND[1]:
            return f
    return 1.0


def crop(p: Piece, rng: np.random.Generator, stretch: float = 0.0, size: int = CROP) -> tuple[np.ndarray, np.ndarray]:
    """A random `size`-frame excerpt (features, targets); with `stretch`, played faster or slower by a
    random factor f (features linearly interpolated at frames s + k·f, labels moved to match). A piece
    shorter than that comes whole, padded with silence (as a track's ends are in one offline pass)."""
    f = _factor(p, stretch, rng)
    span = int(np.ceil(size * f)) + 2
    s = int(rng.integers(0, len(p.x) - span)) if len(p.x) > span else 0
    if f == 1.0:
        x, y = p.x[s : s + size].astype(np.float32), p.y[s : s + size]
    else:
        n = min(size, int((len(p.x) - 1 - s) / f) + 1)  # frames that stay inside the piece
        pos = s + np.arange(n) * f
        i = pos.astype(np.int64)
        w = (pos - i).astype(np.float32)[:, None]
        x = p.x[i].astype(np.float32) * (1 - w) + p.x[np.minimum(i + 1, len(p.x) - 1)].astype(np.float32) * w
        y = targets(n, (p.beats - s) / f, (p.downbeats - s) / f)
    return np.pad(x, ((0, size - len(x)), (0, 0))), np.pad(y, ((0, size - len(y)), (0, 0)))


def batch(pieces: list[Piece], rng: np.random.Generator, stretch: float = 0.0,
          size: int = CROP) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*(crop(pieces[int(rng.integers(len(pieces)))], rng, stretch, size) for _ in range(BATCH)))
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def val_loss(net: BeatNet, pieces: list[Piece], pos_weight: torch.Tensor) -> float:
    net.eval()
    total, n = 0.0, 0
    with torch.inference_mode():
        for x, y in ((p.x, p.y) for p in pieces):
            logits = net(torch.from_numpy(x.astype(np.float32))[None])[0]
            total += float(torch.nn.functional.binary_cross_entropy_with_logits(
                logits, torch.from_numpy(y), pos_weight=pos_weight, reduction="sum"))
            n += len(x)
    net.train()
    return total / max(1, n)


def widen(small: BeatNet, net: BeatNet) -> None:
    """Load `small`'s weights into the wider `net` so that it computes exactly what `small` does: the
    old residual channels keep their weights and ignore the new ones (zero blocks), the new channels
    keep their random initialisation and write nothing into the old channels or the output yet.
    Every weight still gets a gradient, so training grows the new channels from there."""
    c = small.cfg.channels
    with torch.no_grad():
        for name, new in net.state_dict().items():
            old = small.state_dict()[name]
            if new.shape == old.shape:
                new.copy_(old)
                continue
            if name.startswith("inp."):
                new[:c] = old  # new rows (new channels) stay random
            elif name.startswith("out."):
                new[:, :c] = old
                new[:, c:] = 0.0
            else:  # a block's conv or mix: (out, in, kernel) or (out,)
                if new.dim() == 1:
                    new[:c] = old
                else:
                    new[:c, :c] = old
                    new[:c, c:] = 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description="train the beat/downbeat TCN")
    ap.add_argument("--data", type=Path, nargs="+", required=True,
                    help="one or more folders from make_beat_data.py (every 20th piece of each validates)")
    ap.add_argument("--variant", choices=["causal", "offline"], default="causal")
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--layers", type=int, default=11)
    ap.add_argument("--minutes", type=float, default=30.0, help="wall-time budget")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--init", type=Path, default=None,
                    help="start from these weights (fine-tuning); a narrower net is widened to --channels first")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--stretch", type=float, default=0.0,
                    help="tempo augmentation: 70 %% of crops played up to this much faster or slower (e.g. 0.2)")
    ap.add_argument("--crop-seconds", type=float, default=CROP / FPS,
                    help="length of the training excerpts; longer ones let the offline net use its ~20 s of context")
    ap.add_argument("--downbeat-weight", type=float, default=12.0, help="BCE positive weight of downbeat frames")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    per_dir = [load(d) for d in args.data]
    if sum(len(p) for p in per_dir) < 4:
        sys.exit(f"train_beats: too few pieces in {args.data}: run scripts/make_beat_data.py first")
    val = [p for pieces in per_dir for i, p in enumerate(pieces) if i % 20 == 0]  # every 20th piece validates
    train = [p for pieces in per_dir for i, p in enumerate(pieces) if i % 20]
    frames = sum(len(p.x) for p in train)
    cfg = NetConfig(variant=args.variant, channels=args.channels, layers=args.layers)
    net = BeatNet(cfg)
    if args.init is not None:
        small = load_weights(args.init)
        if small.cfg.channels == cfg.channels:
            net.load_state_dict(small.state_dict())
        elif small.cfg.channels < cfg.channels and small.cfg.layers == cfg.layers and small.cfg.variant == cfg.variant:
            widen(small, net)  # a wider net that starts out computing what the --init one does
        else:
            sys.exit(f"train_beats: --init {args.init} ({small.cfg}) cannot start a {cfg} net")
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    pos_weight = torch.tensor([4.0, args.downbeat_weight])
    size = int(round(args.crop_seconds * FPS))
    steps_per_epoch = max(1, frames // (BATCH * size))
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
            x, y = batch(train, rng, args.stretch, size)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), y, pos_weight=pos_weight)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            step += 1
            if time.time() - t0 >= budget:
                break
        epoch += 1
        for d, pieces in zip(args.data, per_dir):
            for i, p in enumerate(load(d, skip=len(pieces)), start=len(pieces)):  # pieces written since
                pieces.append(p)
                (val if i % 20 == 0 else train).append(p)
                best = math.inf if i % 20 == 0 else best  # another validation set: losses do not compare
        frames = sum(len(p.x) for p in train)
        steps_per_epoch = max(1, frames // (BATCH * size))
        v = val_loss(net, val, pos_weight)
        log.append({"epoch": epoch, "step": step, "pieces": len(train) + len(val), "val_loss": round(v, 5),
                    "train_loss": round(float(loss.detach()), 5),
                    "minutes": round((time.time() - t0) / 60, 2)})
        print(json.dumps(log[-1]), flush=True)
        if v < best:
            best = v
            card = {"data": " ".join(map(str, args.data)), "seed": args.seed, "init": str(args.init or ""), "lr": args.lr,
                    "downbeat_weight": args.downbeat_weight, "stretch": args.stretch, "crop_seconds": args.crop_seconds, "epoch": epoch, "steps": step,
                    "val_loss": round(v, 5), "params": n_params(net), "train_hours": round(frames / 360000, 3)}
            save_weights(net, args.out, card)
    print(f"done: best validation loss {best:.5f}, {step} steps, {(time.time() - t0) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
