"""How long the CLI takes to answer: `beatcanvas --help`, `presets list`, and a weights-free `play`
from the command to its first rendered frame on screen. Medians of N fresh processes, wall clock.

    python scripts/bench_startup.py                        # this checkout
    git worktree add /tmp/before 87213de
    python scripts/bench_startup.py --before /tmp/before   # that checkout too, same interpreter

Each run is a new interpreter started in the measured tree (its code imports, not this one's). The
first-frame run plays a generated 20 s WAV with SDL's dummy video driver, silently, with the default
renderer choice (`auto`: what a user without weights gets); a small start-up hook notes the first
`pygame.display.flip` after the compositor was handed a rendered frame and ends the process there.
The hook patches the compositors' `push` wherever that tree keeps them, so old and new layouts are
timed the same way. Writes bench/results/startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]

# Run in the measured tree before the CLI: marks the first flip after a rendered frame reached a compositor.
HOOK = r"""
import importlib, os, sys, time
import pygame

state = {"pushed": False}
for module, cls in (("live.screen.compositor", "Compositor"), ("live.screen.gl_compositor", "GLCompositor"),
                    ("live.compositor", "Compositor"), ("live.gl_compositor", "GLCompositor")):
    try:
        target = vars(importlib.import_module(module))[cls]
    except (ImportError, KeyError):
        continue
    def wrap(orig):
        def push(self, *args, **kwargs):
            state["pushed"] = True
            return orig(self, *args, **kwargs)
        return push
    target.push = wrap(target.push)

flip = pygame.display.flip
def first_flip():
    flip()
    if state["pushed"]:
        print(f"FIRST_FRAME {time.time():.6f}", file=sys.stderr, flush=True)
        os._exit(0)
pygame.display.flip = first_flip

from live.cli import main
sys.exit(main(sys.argv[1:]))
"""


def env_for(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy",
            "PYGAME_HIDE_SUPPORT_PROMPT": "1"}


def child_cpu_s() -> float:
    """CPU seconds (user + system) of the finished child processes so far: less hostage to a loaded
    machine than wall time."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def time_command(tree: Path, args: list[str]) -> tuple[float, float]:
    """(wall s, CPU s) of `beatcanvas ARGS…`."""
    t0, c0 = time.perf_counter(), child_cpu_s()
    done = subprocess.run([sys.executable, "-m", "live.cli", *args], cwd=tree, env=env_for(tree),
                          capture_output=True, text=True, timeout=300)
    dt, cpu = time.perf_counter() - t0, child_cpu_s() - c0
    if done.returncode != 0:
        raise SystemExit(f"{tree}: beatcanvas {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return dt, cpu


def time_first_frame(tree: Path, track: Path) -> tuple[float, str]:
    t0 = time.time()
    done = subprocess.run([sys.executable, "-c", HOOK, "play", str(track), "--duration", "60"], cwd=tree,
                          env=env_for(tree), capture_output=True, text=True, timeout=300)
    marks = [line for line in done.stderr.splitlines() if line.startswith("FIRST_FRAME ")]
    if not marks:
        raise SystemExit(f"{tree}: play showed no rendered frame:\n{done.stderr[-2000:]}")
    reason = next((line.strip() for line in done.stderr.splitlines() if "renderer" in line), "")
    return float(marks[0].split()[1]) - t0, reason


def measure(tree: Path, runs: int, track: Path) -> dict[str, object]:
    out: dict[str, object] = {"tree": str(tree)}
    for name, args in (("help", ["--help"]), ("presets_list", ["presets", "list"])):
        got = [time_command(tree, args) for _ in range(runs)]
        times, cpus = [t for t, _ in got], [c for _, c in got]
        out[name] = {"median_s": round(statistics.median(times), 3), "runs_s": [round(t, 3) for t in times],
                     "median_cpu_s": round(statistics.median(cpus), 3)}
        print(f"{tree}  {name:>13}: median {statistics.median(times):.2f} s (CPU {statistics.median(cpus):.2f} s)"
              f"  {[round(t, 2) for t in times]}")
    firsts = [time_first_frame(tree, track) for _ in range(runs)]
    times = [t for t, _ in firsts]
    out["first_frame"] = {"median_s": round(statistics.median(times), 3), "runs_s": [round(t, 3) for t in times],
                          "renderer": firsts[-1][1]}
    print(f"{tree}  {'first frame':>13}: median {statistics.median(times):.2f} s  {[round(t, 2) for t in times]}"
          f"  ({firsts[-1][1]})")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--before", type=Path, help="another checkout (e.g. a worktree of an older commit) to time too")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/startup.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        track = Path(tmp) / "track.wav"
        t = np.arange(48_000 * 20) / 48_000
        kick = np.sin(2 * np.pi * 60 * t) * np.exp(-((t % 0.5) * 20))  # 120 BPM
        sf.write(track, (0.5 * kick + 0.05 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 48_000)
        result: dict[str, object] = {
            "what": "wall seconds from the command to its answer; first_frame: to the first rendered frame on "
                    "screen of a weights-free `play` (SDL dummy driver, renderer auto); medians of fresh processes",
            "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                        "load_average": list(os.getloadavg())},
            "runs": args.runs,
        }
        if args.before is not None:
            result["before"] = measure(args.before.resolve(), args.runs, track)
        result["after"] = measure(ROOT, args.runs, track)
        result["load_average_after"] = list(os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
