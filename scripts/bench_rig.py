#!/usr/bin/env python
"""Benchmark: what the VJ rig costs the display loop per frame, and what the senders cost their
own threads. Writes JSON:

    python scripts/bench_rig.py [--size 1280x720] [--frames 300] [--out bench/results/rig-cpu.json]

Display-loop side (must stay far below a 16.7 ms frame): copying the composed surface for video
out, handing it to a sender, one OSC-out bundle, one control drain. Sender side: one NDI send
(cyndilib, when installed) at the composition size. OSC in: datagram to hub latency over
127.0.0.1. Medians of many runs; this machine is noisy.
"""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pygame  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.types import Features  # noqa: E402
from live.control.hub import ControlHub  # noqa: E402
from live.control.knobs import KnobChange  # noqa: E402
from live.control.osc import OscIn  # noqa: E402
from live.outputs.osc_out import OscBroadcast  # noqa: E402
from live.outputs.sender import SenderThread, VideoFrame, surface_frame  # noqa: E402
from live.presets.schema import Preset  # noqa: E402


def median_ms(fn: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000.0


class NullBackend:
    name, sender_name = "null", "beatcanvas"

    def send(self, frame: VideoFrame) -> None:
        pass

    def close(self) -> None:
        pass


def osc_in_latency_ms(n: int) -> float:
    from pythonosc.udp_client import SimpleUDPClient

    hub = ControlHub()
    server = OscIn(hub, port=0)
    server.start()
    client = SimpleUDPClient(*server.address)
    times = []
    try:
        for i in range(n):
            before = hub.received
            t0 = time.perf_counter()
            client.send_message("/beatcanvas/motion/feedback", (i % 100) / 100)
            while hub.received == before and time.perf_counter() - t0 < 1.0:
                time.sleep(0)
            times.append(time.perf_counter() - t0)
            hub.drain(Preset())
    finally:
        server.close()
    return statistics.median(times) * 1000.0


def ndi_send_ms(frame: VideoFrame, n: int) -> float | None:
    try:
        from live.outputs.ndi import NdiBackend

        ndi = NdiBackend("beatcanvas-bench")
    except Exception:  # noqa: BLE001 - not installed: reported as null
        return None
    try:
        ndi.send(frame)
        return median_ms(lambda: ndi.send(frame), n)
    finally:
        ndi.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--out", type=Path, default=Path("bench/results/rig-cpu.json"))
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    n = args.frames

    pygame.display.init()
    surface = pygame.Surface((w, h))
    surface.fill((200, 40, 90))
    frame = surface_frame(surface)
    sender = SenderThread(NullBackend())
    out = OscBroadcast("127.0.0.1", 9)  # the discard port: a send with nobody listening
    feats = [Features(t=i / 60, beat_phase=(i / 30) % 1.0) for i in range(n)]
    it = iter(feats * 3)
    hub = ControlHub()
    preset = Preset()

    def drain(k: int) -> None:
        for i in range(k):
            hub.put(KnobChange("reactivity", "warp", (i % 20) / 10))
        hub.drain(preset)

    result = {
        "benchmark": "rig",
        "size": [w, h],
        "display_loop_ms": {
            "surface_frame_copy": median_ms(lambda: surface_frame(surface), n),
            "pygame_tobytes_rgba_for_comparison": median_ms(lambda: pygame.image.tobytes(surface, "RGBA"), max(20, n // 10)),
            "sender_submit": median_ms(lambda: sender.submit(frame), n),
            "osc_out_frame_bundle": median_ms(lambda: out.features(next(it)), n),
            "control_drain_1_change": median_ms(lambda: drain(1), n),
            "control_drain_10_changes": median_ms(lambda: drain(10), n),
        },
        "osc_in_datagram_to_hub_ms": osc_in_latency_ms(min(n, 200)),
        "ndi_send_ms_on_sender_thread": ndi_send_ms(frame, min(n, 120)),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    sender.close()
    out.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
