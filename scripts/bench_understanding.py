"""Benchmark: CLAP encode + head time per 10 s window, full-size architecture with random weights.

    python scripts/bench_understanding.py [--profile random-full] [--device cpu] [--runs 5] \
        [--no-zeroshot] [--out bench_understanding.json]

Times (median of --runs after one warm-up): the mel front end, the CLAP audio tower, the transformer
head, and the zero-shot head with the prompt cache warm (the live case: prompts repeat) and cold
(two CLIP text encoders for the top prompts). Speed does not depend on the weight values.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, runs: int, device: str) -> dict:
    fn()  # warm-up
    _sync(device)
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        ts.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(ts), "min_s": min(ts), "runs": runs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="random-full", choices=["tiny", "random-full", "real"])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default=None, choices=[None, "float32", "float16", "bfloat16"])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-zeroshot", action="store_true", help="skip building SDXL's text encoders")
    ap.add_argument("--out", type=Path, default=Path("bench_understanding.json"))
    args = ap.parse_args()

    from engine.understanding.clap import ClapEncoder
    from engine.understanding.heads.transformer import HeadConfig, TransformerHead
    from engine.models.profiles import build_clap, build_text_encoders
    from engine.types import Window

    dtype = getattr(torch, args.dtype) if args.dtype else None
    result: dict = {
        "profile": args.profile, "device": args.device, "dtype": args.dtype or "float32",
        "torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
    }
    t0 = time.perf_counter()
    enc = ClapEncoder(build_clap(args.profile, device=args.device, dtype=dtype), device=args.device, dtype=dtype)
    result["build_clap_s"] = time.perf_counter() - t0
    window = Window((0.2 * np.random.default_rng(0).standard_normal(480_000)).astype(np.float32), t_end=10.0)

    result["mel"] = timed(lambda: enc.features(window), args.runs, args.device)
    result["clap_encode"] = timed(lambda: enc.encode_audio(window), args.runs, args.device)
    emb = enc.encode_audio(window)

    torch.manual_seed(0)
    head = TransformerHead(HeadConfig.for_profile(args.profile, enc.embed_dim, heads=4 if args.profile == "tiny" else 8))
    head = (head.to(device=args.device, dtype=dtype) if dtype else head.to(args.device)).eval()
    result["transformer_head"] = timed(lambda: head.condition(emb), args.runs, args.device)
    result["clap_plus_transformer_head_s"] = result["clap_encode"]["median_s"] + result["transformer_head"]["median_s"]

    if not args.no_zeroshot:
        from engine.understanding.heads.zeroshot import ZeroShotHead
        from engine.understanding.prompt_encoding import PromptEncoder

        t0 = time.perf_counter()
        text = build_text_encoders(args.profile, device=args.device, dtype=dtype)
        prompts = PromptEncoder(text)
        with tempfile.TemporaryDirectory() as cache:
            zs = ZeroShotHead(enc, prompts, cache_dir=cache)
        result["build_zeroshot_s"] = time.perf_counter() - t0
        result["zeroshot_head_cached"] = timed(lambda: zs.condition(emb), args.runs, args.device)

        def cold():
            prompts.clear()
            zs.condition(emb)

        result["zeroshot_head_uncached"] = timed(cold, args.runs, args.device)
        result["clap_plus_zeroshot_cached_s"] = result["clap_encode"]["median_s"] + result["zeroshot_head_cached"]["median_s"]
    result["goal_s"] = 0.25
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
