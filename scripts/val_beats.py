#!/usr/bin/env python
"""Score beat-network weights on the validation pieces of training data (never the held-out set).

    scripts/val_beats.py --weights /work/beatdata/runs/offline-r4.safetensors \
        --data /work/beatdata/train /work/beatdata/train2 [--out bench/results/beats-val.json]

The validation pieces are those `scripts/train_beats.py` keeps out of training: every 20th piece of
each folder (`--every`). Each piece's stored features go through the network in one pass and the
offline decoder (`engine.audio.beatnet.offline.beatmap_of`, as `analyze` runs it); the scores are the
benchmark's (`scripts/bench_beats.py`: beat F at ±70 ms, CMLt, AMLt, downbeat F, tempo right,
beats in the first 5 s not scored) plus how often the decoded meter is the piece's. Use it to choose
between candidate weights or decoder settings; report the held-out set once, at the end.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from safetensors import safe_open  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_beats import _metrics  # noqa: E402

from engine.audio.beatnet.features import FPS  # noqa: E402
from engine.audio.beatnet.net import load_net  # noqa: E402
from engine.audio.beatnet.offline import beatmap_of  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--data", type=Path, nargs="+", required=True)
    ap.add_argument("--every", type=int, default=20, help="every N-th piece of each folder validates (as in training)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    net = load_net(args.weights)
    rows = []
    for folder in args.data:
        files = sorted(folder.glob("piece_*.safetensors"))
        for f in files[:: args.every]:
            with safe_open(str(f), framework="np") as fh:
                x, beats, downbeats = fh.get_tensor("x"), fh.get_tensor("beats"), fh.get_tensor("downbeats")
                meta = json.loads((fh.metadata() or {}).get("meta", "{}"))
            bm = beatmap_of(net.activations(x.astype(np.float32)), np.zeros(0), FPS)
            row = _metrics(beats, bm.beats, downbeats, bm.downbeats, bm.tempo_bpm)
            row["meter_ok"] = bm.beats_per_bar == meta.get("beats_per_bar")
            rows.append({"piece": f"{folder.name}/{f.stem} {meta.get('meter')} {meta.get('style')} {meta.get('bpm')}", **row})
    mean = {k: round(float(np.mean([r[k] for r in rows if k in r])), 3)
            for k in ("beat_f", "cmlt", "amlt", "downbeat_f", "tempo_ok", "meter_ok")}
    result = {"weights": str(args.weights), "pieces": len(rows), "mean": mean, "rows": rows,
              "command": " ".join(["python scripts/val_beats.py", *sys.argv[1:]])}
    print(json.dumps({k: result[k] for k in ("weights", "pieces", "mean")}))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
