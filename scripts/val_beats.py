#!/usr/bin/env python
"""Score beat-network weights on the validation pieces of training data (never the held-out set).

    scripts/val_beats.py --weights /work/beatdata/runs/offline-r4.safetensors \
        --data /work/beatdata/train /work/beatdata/train2 [--out bench/results/beats-val.json]
    scripts/val_beats.py --live --weights engine/audio/beatnet/weights/causal.safetensors \
        --data /work/beatdata/val /work/beatdata/val2 --every 1

The validation pieces are those `scripts/train_beats.py` keeps out of training: every 20th piece of
each folder (`--every`). Each piece's stored features go through the network and the offline decoder
as `analyze` runs them (`engine.audio.beatnet.offline`: the mean of its tempo views, then `beatmap_of`); the scores are the
benchmark's (`scripts/bench_beats.py`: beat F at ±70 ms, CMLt, AMLt, downbeat F, tempo right,
beats in the first 5 s not scored) plus how often the decoded meter is the piece's. Use it to choose
between candidate weights or decoder settings; report the held-out set once, at the end.

`--live` scores causal weights as the show runs them instead: each piece's audio (the folders'
`piece_*.wav`, from `make_beat_data.py --audio`) fed in 10 ms blocks to the learned live tracker,
tempo read after 5 s, plus the median live pulse error (ms) of the beats within 70 ms of a true one.
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
from bench_beats import _metrics, heldout_pieces, pulse_errors, run_live  # noqa: E402

from engine.audio.beatnet.features import FPS  # noqa: E402
from engine.audio.beatnet.live import LearnedBeatTracker  # noqa: E402
from engine.audio.beatnet.net import Net, load_net  # noqa: E402
from engine.audio.beatnet.offline import beatmap_of, track_activations  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--data", type=Path, nargs="+", required=True)
    ap.add_argument("--every", type=int, default=20, help="every N-th piece of each folder validates (as in training)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--live", action="store_true", help="causal weights, run live on the pieces' audio")
    args = ap.parse_args()
    net = load_net(args.weights)
    rows = _live_rows(net, args) if args.live else _offline_rows(net, args)
    keys = ("beat_f", "cmlt", "amlt", "downbeat_f", "tempo_ok") + (() if args.live else ("meter_ok",))
    mean = {k: round(float(np.mean([r[k] for r in rows if k in r])), 3) for k in keys}
    if args.live:
        errs = [e for r in rows for e in r.pop("pulse_errors")]
        mean["pulse_err_ms"] = round(1000 * float(np.median(errs)), 1) if errs else None
    result = {"weights": str(args.weights), "live": args.live, "pieces": len(rows), "mean": mean, "rows": rows,
              "command": " ".join(["python scripts/val_beats.py", *sys.argv[1:]])}
    print(json.dumps({k: result[k] for k in ("weights", "live", "pieces", "mean")}))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


def _live_rows(net: Net, args: argparse.Namespace) -> list[dict]:
    rows = []
    for folder in args.data:
        for title, x, ref, ref_db in heldout_pieces(folder)[:: args.every]:
            est, est_db, tempo, _ = run_live(x, LearnedBeatTracker(net))
            row = _metrics(ref, est, ref_db, est_db, tempo)
            rows.append({"piece": f"{folder.name}/{title}", **row, "pulse_errors": pulse_errors(ref, est)})
    return rows


def _offline_rows(net: Net, args: argparse.Namespace) -> list[dict]:
    rows = []
    for folder in args.data:
        files = sorted(folder.glob("piece_*.safetensors"))
        for f in files[:: args.every]:
            with safe_open(str(f), framework="np") as fh:
                x, beats, downbeats = fh.get_tensor("x"), fh.get_tensor("beats"), fh.get_tensor("downbeats")
                meta = json.loads((fh.metadata() or {}).get("meta", "{}"))
            bm = beatmap_of(track_activations(net, x.astype(np.float32)), np.zeros(0), FPS)
            row = _metrics(beats, bm.beats, downbeats, bm.downbeats, bm.tempo_bpm)
            row["meter_ok"] = bm.beats_per_bar == meta.get("beats_per_bar")
            rows.append({"piece": f"{folder.name}/{f.stem} {meta.get('meter')} {meta.get('style')} {meta.get('bpm')}", **row})
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
