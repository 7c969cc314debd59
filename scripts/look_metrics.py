"""Measure an export of the weights-free look the way issue 20 states it. Writes JSON.

    python scripts/look_metrics.py --seconds 60 --frames 30 --out bench/results/look-metrics.json

Exports the demo track (or --track) at 1280x720 with the default preset's weights-free look
(`beatcanvas export`'s code path: shader renderer + GPU compositor where OpenGL works, else numpy),
then reports on `--frames` frames spread evenly over the span: the median variance of the image
Laplacian (crisp structure; the numpy look scored 0.47), the most full-frame flashes in any second
(over every frame), the darkest frame's mean, and the share of near-white pixels. Saves a few
frames as JPEGs with --jpegs DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pygame  # noqa: E402


def laplacian_variance(rgb: np.ndarray) -> float:
    g = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4 * g[1:-1, 1:-1]
    return float(lap.var())


def load(path: Path) -> np.ndarray:
    surf = pygame.image.load(str(path))
    w, h = surf.get_size()
    return np.frombuffer(pygame.image.tobytes(surf, "RGB"), np.uint8).reshape(h, w, 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--track", type=Path, default=None, help="audio file (default: the 60 s demo track)")
    ap.add_argument("--seconds", type=float, default=60.0, help="demo track length")
    ap.add_argument("--start", type=float, default=0.0)
    ap.add_argument("--end", type=float, default=None)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--renderer", default="procedural")
    ap.add_argument("--frames", type=int, default=30, help="frames the Laplacian median is taken over")
    ap.add_argument("--jpegs", type=Path, default=None, help="save 3 evenly spaced frames here as JPEG")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from engine.audio.demo import ensure_demo_track
    from live.cli import main as cli
    from live.screen.flash import max_flashes_per_second, mean_luminance

    track = args.track or ensure_demo_track(args.seconds)
    work = Path(tempfile.mkdtemp(prefix="look-"))
    cmd = ["export", str(track), "--out", str(work), "--fps", str(args.fps), "--size", args.size,
           "--renderer", args.renderer, "--start", str(args.start)] + (["--end", str(args.end)] if args.end else [])
    t0 = time.perf_counter()
    rc = cli(cmd)
    elapsed = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"export failed ({rc})")
    manifest = json.loads((work / "manifest.json").read_text())
    paths = sorted(work.glob("frame_*.png"))
    picked = [paths[int(i)] for i in np.linspace(0, len(paths) - 1, min(args.frames, len(paths)))]
    laps = [laplacian_variance(load(p)) for p in picked]
    lums, darkest, white = [], 255.0, []
    for p in paths:
        img = load(p)
        lums.append(mean_luminance(img))
        darkest = min(darkest, float(img.mean()))
        white.append(float((img.min(axis=2) > 235).mean()))
    result = {
        "track": str(track), "size": args.size, "fps": args.fps, "frames": len(paths),
        "renderer": manifest["settings"]["renderer"], "export_seconds": round(elapsed, 1),
        "export_fps": round(len(paths) / elapsed, 2),
        "laplacian_variance_median": round(float(np.median(laps)), 2),
        "laplacian_variance_min": round(float(np.min(laps)), 2),
        "max_flashes_in_any_second": max_flashes_per_second(lums, args.fps),
        "first_frame_mean": round(float(load(paths[0]).mean()), 2),
        "darkest_frame_mean": round(darkest, 2),
        "near_white_pixel_share_max": round(max(white), 4),
        "mean_luminance_range": [round(min(lums), 3), round(max(lums), 3)],
    }
    if args.jpegs:
        args.jpegs.mkdir(parents=True, exist_ok=True)
        for k, p in enumerate(picked[len(picked) // 6 :: max(1, len(picked) // 3)][:3]):
            dest = args.jpegs / f"look-{k + 1}.jpg"
            pygame.image.save(pygame.image.load(str(p)), str(dest))
            result.setdefault("jpegs", []).append(str(dest))
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
