#!/usr/bin/env python
"""Chaos harness (a benchmark, not a test): `play` with the tiny SDXL profile for N minutes while
random faults are thrown at it, then JSON with what happened.

Faults, one every `--every` seconds on average, drawn at random (seeded):
  render_raise, render_hang (longer than the watchdog's limit), render_nan (non-finite conditioning),
  conditioning_raise, nan_audio (a 50 ms NaN burst), device_loss (the input "unplugged" for a moment),
  preset_broken (a file from a corpus of broken TOML: wrong types, 10 000-deep nesting, empty, half
  written, a 30 MB file, unknown keys), preset_valid (a good edit that must apply), switch (←/→
  between the SDXL preset and the procedural `geometry`), resize (the window).

The show runs in a child process (`--child`), so "ended by itself" means the process really died;
the parent waits, then merges the child's JSON with the exit code. Reported: faults by kind, display
fps per second (min / median), the longest gap between two display frames, renders and fallbacks,
whether the process ended before its time, RSS at start and end.

    python scripts/chaos.py --minutes 10 --json bench/results/chaos-10min.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

KINDS = ("render_raise", "render_hang", "render_nan", "conditioning_raise", "nan_audio", "device_loss",
         "preset_broken", "preset_valid", "switch", "resize")
BROKEN = [
    '[model]\nmodel = ["sdxl-turbo"]\n',  # a list where a string is expected
    'model = ["x"]\n',  # a list where a table is expected
    "[motion]\nfeedback = " + "[" * 10_000 + "]" * 10_000 + "\n",  # nested 10 000 deep
    "",  # empty (a save in progress)
    '[conditioning]\nstyle = "half a line',  # half written
    "[reactivity]\nbeat_zoom = 'loud'\n",  # wrong type
    "[modle]\nsteps = 2\n",  # unknown section
    "[model]\nsteps = 99\nwidth = 3\n",  # out of range, twice
]
HUGE_MB = 30


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def valid_preset(i: int) -> str:
    return (f'name = "chaos"\n[model]\nrenderer = "sdxl"\nwidth = 256\nheight = 256\nsteps = 1\n'
            f'[conditioning]\nstyle = "edit {i}"\nsmoothing_s = {1 + i % 3}\n'
            f"[motion]\nfeedback = {0.1 * (i % 5):.1f}\ncrossfade_ms = {200 + 50 * (i % 4)}\n"
            f"[reactivity]\nbeat_zoom = {0.5 + 0.25 * (i % 5)}\n")


def write(path: Path, text: str) -> None:
    """As an editor that does not save atomically: in place, in two pieces."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(text[: len(text) // 2])
        f.flush()
        time.sleep(0.01)
        f.write(text[len(text) // 2:])


def write_huge(path: Path) -> None:
    """A HUGE_MB comment-only file, written a line at a time (building it in memory would grow this
    process's RSS, which the run measures)."""
    line = "# " + "x" * 98 + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write("# huge\n")
        for _ in range(HUGE_MB * 10_000):
            f.write(line)


class Injector:
    """The switches the wrappers read, and the chaos thread that flips them."""

    def __init__(self, seed: int, every: float, hang_s: float) -> None:
        self.rng = random.Random(seed)
        self.every, self.hang_s = every, hang_s
        self.render_fault: str | None = None
        self.conditioning_fault = False
        self.counts = {k: 0 for k in KINDS}
        self.valid_edits: list[tuple[float, float]] = []  # (when written, beat_zoom written)


def child(args: argparse.Namespace) -> int:
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    import numpy as np
    import pygame

    from engine.audio.demo import write_demo_track
    from engine.audio.features import FeatureTracker
    from engine.render.stage import RenderStage
    from engine.types import Conditioning, Reconfigured
    from live.screen.display import Display
    from live.session.factory import Builder
    from live.presets.library import load_preset, preset_file
    from live.presets.playlist import ShowList
    from live.presets.schema import read_preset_file
    from live.session.session import SessionConfig, build_session
    from live.session.show import ShowOptions
    from live.audio.sources import FileSource

    inj = Injector(args.seed, args.every, args.hang_s)
    kinds = tuple(k for k in args.kinds.split(",") if k)
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        raise SystemExit(f"--kinds: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(KINDS)}")
    work = Path(tempfile.mkdtemp(prefix="chaos-"))
    seconds = args.minutes * 60
    track = write_demo_track(work / "track.wav", seconds + 30)
    preset_path = work / "chaos.toml"
    preset_path.write_text(valid_preset(0))

    class ChaosStage(RenderStage):
        def __init__(self, inner: RenderStage) -> None:
            super().__init__(inner.spec)
            self.inner, self.renderer = inner, inner.renderer

        def render(self, cond, features, t):
            fault, inj.render_fault = inj.render_fault, None
            if fault == "render_raise":
                raise RuntimeError("chaos: render raised")
            if fault == "render_hang":
                time.sleep(inj.hang_s + 2.0)
            if fault == "render_nan" and cond is not None:
                cond = Conditioning(cond.prompt_embeds * float("nan"), cond.pooled_prompt_embeds, t=cond.t)
            return self.inner.render(cond, features, t)

        def configure(self, spec, negative=None) -> Reconfigured:
            result = self.inner.configure(spec, negative)
            self.spec = self.inner.spec
            return result

    class ChaosUnderstanding:
        def __init__(self, inner) -> None:
            self.inner = inner

        def step(self, window, features=None):
            if inj.conditioning_fault:
                inj.conditioning_fault = False
                raise RuntimeError("chaos: conditioning raised")
            return self.inner.step(window, features)

        def configure(self, settings):
            return self.inner.configure(settings)

        def negative_conditioning(self):
            return self.inner.negative_conditioning()

    class ChaosBuilder(Builder):
        def render_stage(self, spec, size=None, negative=None):
            return ChaosStage(super().render_stage(spec, size, negative))

        def understanding(self, spec):
            return ChaosUnderstanding(super().understanding(spec))

    class ChaosSource:
        """A track that can be "unplugged": `error` set, the first reopen fails, the next works."""

        def __init__(self, inner: FileSource) -> None:
            self.inner, self.error, self.fail_next_start = inner, None, False
            self.started = False

        ring = property(lambda self: self.inner.ring)
        stats = property(lambda self: self.inner.stats)
        finished = property(lambda self: self.inner.finished)
        lead_s = property(lambda self: self.inner.lead_s)
        live_input = property(lambda self: self.inner.live_input)

        def clock(self) -> float:
            return self.inner.clock()

        def start(self) -> None:
            if not self.started:
                self.started = True
                self.inner.start()
            elif self.fail_next_start:
                self.fail_next_start = False
                raise RuntimeError("chaos: device not found")
            self.error = None

        def stop(self) -> None:
            if self.error is None:
                self.inner.stop()

    source = ChaosSource(FileSource(track, audio_out=False))
    geometry = load_preset("geometry")
    show = ShowList((read_preset_file(preset_path), geometry), (preset_path, preset_file("geometry")), (0.0, 0.0))
    width, height = (int(x) for x in args.size.split("x"))
    options = ShowOptions(profile="tiny", canvas=(width, height), live=True)
    config = SessionConfig(width=width, height=height, duration=seconds, hang_s=args.hang_s, retry_s=5.0,
                           screenshots_dir=work, max_render_fps=args.render_fps)
    session = build_session(source, FeatureTracker(), show, options, Display(width, height, vsync=False), config,
                            builder=ChaosBuilder())
    fps_samples: list[float] = []
    rss_start = rss_mb()
    rss_every_30s: list[float] = []
    stop = threading.Event()

    def inject(kind: str, i: int) -> None:
        inj.counts[kind] += 1
        if kind in ("render_raise", "render_hang", "render_nan"):
            inj.render_fault = kind
        elif kind == "conditioning_raise":
            inj.conditioning_fault = True
        elif kind == "nan_audio":
            ring = source.ring
            ring.write(np.full(2400, np.nan, np.float32), t_end=ring.t_end)
        elif kind == "device_loss":
            source.fail_next_start = inj.rng.random() < 0.5
            source.error = "chaos: device unplugged"
        elif kind == "preset_broken":
            if inj.rng.random() < 0.1:
                write_huge(preset_path)
            else:
                write(preset_path, inj.rng.choice(BROKEN))
        elif kind == "preset_valid":
            write(preset_path, valid_preset(i))
            inj.valid_edits.append((time.monotonic(), 0.5 + 0.25 * (i % 5)))
        elif kind == "switch":
            key = inj.rng.choice((pygame.K_LEFT, pygame.K_RIGHT, pygame.K_1, pygame.K_2))
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode="", scancode=0))
        elif kind == "resize":
            w, h = inj.rng.randint(200, 1400), inj.rng.randint(150, 900)
            pygame.event.post(pygame.event.Event(pygame.VIDEORESIZE, w=w, h=h, size=(w, h)))

    def chaos() -> None:
        last_frames, i = 0, 0
        next_fault = time.monotonic() + 5.0  # let the show settle first
        while not stop.wait(1.0):
            frames = session.report.display_frames
            fps_samples.append(frames - last_frames)
            last_frames = frames
            if len(fps_samples) % 30 == 0:
                rss_every_30s.append(round(rss_mb(), 1))
            while time.monotonic() >= next_fault:
                i += 1
                try:
                    inject(inj.rng.choice(kinds), i)
                except Exception as e:  # noqa: BLE001 - the harness must not die either
                    print(f"injecting failed: {e}", file=sys.stderr)
                next_fault += inj.rng.expovariate(1.0 / inj.every)

    threading.Thread(target=chaos, daemon=True).start()
    t0 = time.monotonic()
    report = session.run()
    stop.set()
    session.join_workers(5.0)
    fps = fps_samples[2:] or [0.0]  # the first seconds include start-up
    out = {
        "minutes": args.minutes, "seed": args.seed, "size": args.size, "mean_fault_interval_s": args.every,
        "faults_injected": inj.counts, "faults_total": sum(inj.counts.values()),
        "display_fps_min": min(fps), "display_fps_median": statistics.median(fps),
        "display_fps_seconds_below_30": sum(f < 30 for f in fps),
        "longest_frame_gap_s": round(report.longest_frame_gap_s, 3),
        "display_frames": report.display_frames, "frames_rendered": report.frames_rendered,
        "render_errors": report.render_errors, "conditioning_errors": report.conditioning_errors,
        "conditioning_steps": report.conditioning_steps, "fallbacks": report.fallbacks,
        "recoveries": report.recoveries, "reopens": report.reopens, "presets_applied": report.presets_applied,
        "faults_caught": session.board.faults.counts, "ran_s": round(time.monotonic() - t0, 1),
        "ended_before_its_time": time.monotonic() - t0 < seconds - 1.0,
        "rss_mb_start": round(rss_start, 1), "rss_mb_end": round(rss_mb(), 1), "rss_mb_every_30s": rss_every_30s,
        "kinds": list(kinds),
        "final_renderer": session.render_loop.stage.name,
    }
    Path(args.child_json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


def parent(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        child_json = Path(tmp) / "child.json"
        cmd = [sys.executable, __file__, "--child", "--child-json", str(child_json), "--minutes", str(args.minutes),
               "--seed", str(args.seed), "--every", str(args.every), "--size", args.size,
               "--hang-s", str(args.hang_s), "--render-fps", str(args.render_fps), "--kinds", args.kinds]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, timeout=args.minutes * 60 + 300, capture_output=True, text=True)
        result = json.loads(child_json.read_text()) if child_json.exists() else {}
    result.update(exit_code=proc.returncode, process_s=round(time.monotonic() - t0, 1),
                  process_ended_by_itself=proc.returncode != 0 or not result or result.get("ended_before_its_time", True),
                  command=" ".join(["python scripts/chaos.py"] + sys.argv[1:]),
                  stderr_tail=proc.stderr[-2000:])
    text = json.dumps(result, indent=2) + "\n"
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)
    print(text)
    return 0 if not result["process_ended_by_itself"] else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--every", type=float, default=3.0, help="mean seconds between faults")
    ap.add_argument("--size", default="640x360", help="composition size")
    ap.add_argument("--hang-s", type=float, default=3.0, help="the watchdog's hang limit")
    ap.add_argument("--render-fps", type=float, default=10.0, help="render cap (2 shared cores)")
    ap.add_argument("--kinds", default=",".join(KINDS), help="the faults to draw from, comma-separated")
    ap.add_argument("--json", help="write the result here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child-json", help=argparse.SUPPRESS)
    args = ap.parse_args()
    return child(args) if args.child else parent(args)


if __name__ == "__main__":
    sys.exit(main())
