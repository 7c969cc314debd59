#!/usr/bin/env python
"""Benchmark what the tests only check by events: how fast the show responds on this machine.

The tests prove that the window keeps showing while a render is stuck, that Q ends the show without
waiting for the render, that a preset edit is applied and that a video sender never blocks the
display; they never assert how fast (tests/README.md). This script measures it, with the real
session loops, a procedural renderer slowed to `--render-delay` s a frame, and no window
(SDL_VIDEODRIVER=dummy), and writes JSON. Quote medians; the machine is shared.

    python scripts/bench_responsiveness.py --repeats 3 --json bench/results/responsiveness-cpu.json

Goals it reports against (from the tests these figures used to be asserted in): display >= 5 fps and
no gap >= 0.5 s under a 1 s/frame renderer; Q -> stopped < 1 s; edit -> applied < 1 s; 60 submits
to a 100 ms/frame sender < 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import numpy as np  # noqa: E402
import pygame  # noqa: E402

from engine.audio.demo import write_demo_track  # noqa: E402
from engine.audio.features import FeatureTracker  # noqa: E402
from engine.render.stage import RenderStage  # noqa: E402
from engine.types import Conditioning, Features, Frame  # noqa: E402
from live.audio.sources import FileSource  # noqa: E402
from live.outputs.sender import SenderThread, VideoFrame  # noqa: E402
from live.presets.library import to_toml  # noqa: E402
from live.presets.playlist import ShowList  # noqa: E402
from live.presets.schema import Preset  # noqa: E402
from live.screen.display import Display  # noqa: E402
from live.session.factory import Builder, Stages, procedural_stage  # noqa: E402
from live.session.session import Session, SessionConfig  # noqa: E402
from live.session.show import ShowOptions, resolve  # noqa: E402

W, H = 640, 360


class TimedDisplay(Display):
    """The dummy-driver window, recording when each picture was presented."""

    def __init__(self) -> None:
        super().__init__(W, H, vsync=False)
        self.shown: list[float] = []

    def present(self, picture: pygame.Surface) -> None:
        super().present(picture)
        self.shown.append(time.monotonic())


class SlowStage(RenderStage):
    """The procedural renderer, `delay` s slower a frame; `gate`, when set, holds a render until released."""

    def __init__(self, inner: RenderStage, delay: float, gate: threading.Event | None = None) -> None:
        super().__init__(inner.spec)
        self.inner, self.delay, self.gate = inner, delay, gate
        self.renderer = inner.renderer

    def render(self, conditioning: Conditioning | None, features: Features, t: float) -> Frame:
        time.sleep(self.delay)
        if self.gate is not None:
            self.gate.wait(60.0)
        return self.inner.render(conditioning, features, t)


def session(track: Path, delay: float, seconds: float, preset_path: Path | None = None,
            gate: threading.Event | None = None) -> tuple[Session, TimedDisplay]:
    preset = Preset(name="bench")
    options = ShowOptions(renderer="procedural", canvas=(W, H), live=True)
    spec = resolve(preset, options)
    stage = SlowStage(procedural_stage(spec, (W, H)), delay, gate)
    display = TimedDisplay()
    config = SessionConfig(width=W, height=H, duration=seconds, stop_when_finished=False,
                           screenshots_dir=track.parent, hot_reload=preset_path is not None)
    show = ShowList((preset,), (preset_path,), (0.0,))
    return Session(FileSource(track, audio_out=False), FeatureTracker(), Stages(stage, None, spec.reason), spec,
                   display, show, options, config, Builder()), display


def slow_renderer(track: Path, delay: float, seconds: float) -> dict[str, Any]:
    s, display = session(track, delay, seconds)
    report = s.run()
    s.join_workers(5.0)
    gaps = np.diff(display.shown) if len(display.shown) > 1 else np.array([float("inf")])
    return {"render_delay_s": delay, "seconds": report.seconds, "display_fps": report.display_fps,
            "frames_rendered": report.frames_rendered, "longest_gap_s": float(gaps.max()),
            "gap_p99_s": float(np.percentile(gaps, 99))}


def quit_latency(track: Path) -> float:
    """Seconds from the Q key to run() returning, while a render is stuck."""
    gate = threading.Event()
    s, display = session(track, 0.0, 60.0, gate=gate)
    pressed: list[float] = []

    def press() -> None:
        while len(display.shown) < 10:
            time.sleep(0.01)
        pressed.append(time.monotonic())
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_q, mod=0, unicode="q", scancode=0))

    threading.Thread(target=press, daemon=True).start()
    try:
        s.run()
        return time.monotonic() - pressed[0]
    finally:
        gate.set()


def reload_latency(track: Path, tmp: Path) -> float:
    """Seconds from an editor's save of the running preset to the compositor using it."""
    path = tmp / "bench.toml"  # a preset file is named after its preset
    path.write_text(to_toml(Preset(name="bench", reactivity={"beat_zoom": 1.0})), encoding="utf-8")
    s, display = session(track, 0.02, 60.0, preset_path=path)
    took: list[float] = []

    def edit() -> None:
        try:
            time.sleep(1.0)  # let the watcher start
            tmp_file = path.with_suffix(".tmp")
            tmp_file.write_text(to_toml(Preset(name="bench", reactivity={"beat_zoom": 2.0})), encoding="utf-8")
            t0 = time.monotonic()
            os.replace(tmp_file, path)
            while s.compositor.reactivity.beat_zoom != 2.0 and time.monotonic() - t0 < 30:
                time.sleep(0.002)
            took.append(time.monotonic() - t0)
        finally:
            s.request_stop()

    threading.Thread(target=edit, daemon=True).start()
    s.run()
    return took[0]


def sender_submit_s() -> float:
    """Seconds to submit 60 frames to a sender whose backend takes 100 ms a frame."""

    class Slow:
        name, sender_name = "Slow", "bench"

        def send(self, frame: VideoFrame) -> None:
            time.sleep(0.1)

        def close(self) -> None:
            pass

    sender = SenderThread(Slow())  # type: ignore[arg-type]
    frames = [VideoFrame(np.full((H, W, 4), i, np.uint8)) for i in range(60)]
    t0 = time.perf_counter()
    for f in frames:
        sender.submit(f)
    took = time.perf_counter() - t0
    sender.close()
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=6.0, help="length of each slow-renderer run")
    ap.add_argument("--render-delay", type=float, default=1.0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    pygame.display.init()
    tmp = Path(tempfile.mkdtemp())
    track = write_demo_track(tmp / "bench.wav", 70.0)
    load0 = os.getloadavg()
    runs = [slow_renderer(track, args.render_delay, args.seconds) for _ in range(args.repeats)]
    quits = [quit_latency(track) for _ in range(args.repeats)]
    reloads = [reload_latency(track, tmp) for _ in range(args.repeats)]
    submits = [sender_submit_s() for _ in range(args.repeats)]

    def med(xs: list[float]) -> float:
        return round(float(statistics.median(xs)), 4)

    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_at_start": load0, "loadavg_at_end": os.getloadavg()},
        "size": f"{W}x{H}", "repeats": args.repeats,
        "slow_renderer": {"runs": runs, "display_fps_median": med([r["display_fps"] for r in runs]),
                          "longest_gap_s_median": med([r["longest_gap_s"] for r in runs]),
                          "goal": "display >= 5 fps, no gap >= 0.5 s"},
        "quit_s": {"all": quits, "median": med(quits), "goal": "< 1 s"},
        "reload_s": {"all": reloads, "median": med(reloads), "goal": "< 1 s"},
        "sender_60_submits_s": {"all": submits, "median": med(submits), "goal": "< 0.5 s"},
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
