#!/usr/bin/env python
"""Benchmark: what the studio page costs the show, and how fast it answers. Writes JSON:

    python scripts/bench_web.py [--seconds 10] [--repeats 4] [--size 640x360] [--out bench/results/web.json]

A real session (the numpy renderer on a synthesized track, SDL's dummy display, headless) runs
`--seconds` per condition, alternating, `--repeats` times each:

- `off`: no --web;
- `ws-preview`: --web with one WebSocket client (in this process) that keeps the preview on;
- `browser-preview`: --web with the page open in headless chromium (Playwright), preview on. On a
  small machine the browser itself competes with the show for the same cores.

Display fps is the session's own count (frames / seconds), at the default 60 fps cap and uncapped
(`max_fps` 1000, which exposes the per-frame cost a cap hides), counted over `--seconds` from one
second after the client settled. This machine is shared and noisy, so the display thread's own cost
of the page is timed too: the rig's frame hook (feed, preview shrink) per frame while a page
watches, in µs and as a share of a 60 fps frame. Knob-to-picture latency: a knob
message sent over the WebSocket (the compositor's `reactivity.warp`), to the first composed frame
whose preset holds that value (the rig's frame hook sees it; same monotonic clock). Page load: from
`goto` to the knobs drawn and the WebSocket live, and to every library thumbnail loaded (cold cache
first, then warm).
"""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from engine.audio.features import FeatureTracker  # noqa: E402
from live.control.rig import Rig, RigOptions  # noqa: E402
from live.presets.playlist import library_show  # noqa: E402
from live.presets.schema import read_preset_file  # noqa: E402
from live.screen.display import Display  # noqa: E402
from live.session.factory import Builder  # noqa: E402
from live.session.session import Session, SessionConfig  # noqa: E402
from live.session.show import ShowOptions, resolve  # noqa: E402
from live_fakes import FakeSource, synth_track  # noqa: E402
from web_fakes import user_preset  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def session_for(path: Path, size: tuple[int, int], seconds: float, max_fps: float) -> Session:
    preset = read_preset_file(path)
    show = library_show(preset, path)
    options = ShowOptions(renderer="numpy", canvas=size, live=True)
    spec = resolve(show.presets[show.start], options)
    builder = Builder()
    config = SessionConfig(width=size[0], height=size[1], duration=seconds + 90.0, hot_reload=False, max_fps=max_fps)
    return Session(FakeSource(synth_track(seconds + 95.0)), FeatureTracker(), builder.build(spec), spec,
                   Display(size[0], size[1], vsync=False), show, options, config, builder)


def run(path: Path, size: tuple[int, int], seconds: float, max_fps: float, mode: str,
        latencies: list[float] | None = None, loads: list[dict[str, float]] | None = None,
        load_only: bool = False, costs: list[float] | None = None) -> float:
    """Display fps of one session in `mode` (off | ws-preview | browser-preview), counted from one second
    after the client has settled (page loaded, preview streaming) to the end."""
    session = session_for(path, size, seconds, max_fps)
    rig = None
    if mode != "off":
        rig = Rig(RigOptions(web=True, web_port=0))
        rig.start(lambda: session.preset, say=lambda line: None)
        session.attach_rig(rig)
        frame_hook = rig.frame

        def timed(picture: Any, features: Any, state: Any = None) -> None:  # the page's cost on the display thread
            t = time.perf_counter()
            frame_hook(picture, features, state)
            if costs is not None and rig is not None and rig.feed.viewers > 0:
                costs.append((time.perf_counter() - t) * 1e6)

        rig.frame = timed  # type: ignore[method-assign]
    stop, settled = threading.Event(), threading.Event()
    client: threading.Thread | None = None
    if mode == "ws-preview" and rig is not None:
        client = threading.Thread(target=ws_client, args=(rig, stop, settled, latencies), daemon=True)
    elif mode == "browser-preview" and rig is not None:
        client = threading.Thread(target=browser_client, args=(rig, stop, settled, loads), daemon=True)
    else:
        settled.set()
    marks: list[tuple[float, int]] = []

    def sample() -> None:  # frames counted over `seconds`, from one second after the client has settled
        if settled.wait(60.0) and not stop.wait(1.0) and not load_only:
            marks.append((time.monotonic(), session.report.display_frames))
            stop.wait(seconds)
            marks.append((time.monotonic(), session.report.display_frames))
        session.request_stop()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if client is not None:
        client.start()
    try:
        session.run()
    finally:
        stop.set()
        if client is not None:
            client.join(20.0)
        session.stop_rig()
    session.join_workers(5.0)
    if len(marks) < 2:
        return float("nan")  # the client never settled
    (t0, f0), (t1, f1) = marks
    return (f1 - f0) / (t1 - t0)


def ws_client(rig: Rig, stop: threading.Event, settled: threading.Event, latencies: list[float] | None) -> None:
    from websockets.sync.client import connect

    url = f"ws://127.0.0.1:{rig.web.port}/ws"
    with connect(url, additional_headers={"Origin": f"http://127.0.0.1:{rig.web.port}"}, max_size=2**22) as ws:
        ws.send(json.dumps({"type": "preview", "on": True}))
        settled.set()
        sent: dict[int, float] = {}
        n = 0
        next_send = time.monotonic() + 1.0
        while not stop.is_set():
            now = time.monotonic()
            if latencies is not None and now >= next_send:
                n += 1
                sent[n] = time.monotonic()
                ws.send(json.dumps({"type": "knob", "address": "/beatcanvas/reactivity/warp",
                                    "value": 0.5 + 0.01 * (n % 50), "id": n}))
                next_send = now + 0.25
            try:
                message = ws.recv(timeout=0.05)
            except TimeoutError:
                continue
            except Exception:  # noqa: BLE001 - the show ended
                break
            if isinstance(message, str):
                data = json.loads(message)
                for ack in data.get("acks", []):
                    if latencies is not None and ack["id"] in sent:
                        latencies.append((ack["shown_at"] - sent.pop(ack["id"])) * 1000.0)


def browser_client(rig: Rig, stop: threading.Event, settled: threading.Event,
                   loads: list[dict[str, float]] | None) -> None:
    try:
        _browse(rig, stop, settled, loads)
    except Exception as e:  # noqa: BLE001 - a run whose page never loaded counts as failed (NaN), not as a crash
        print(f"browser run failed: {str(e).splitlines()[0]}", flush=True)


def _browse(rig: Rig, stop: threading.Event, settled: threading.Event, loads: list[dict[str, float]] | None) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(60_000)
        timings: dict[str, float] = {}
        for label in ("cold", "warm") if loads is not None else ("open",):
            t0 = time.monotonic()
            page.goto(rig.web.url)
            page.wait_for_selector(".knob")
            page.wait_for_selector("#conn.on")
            timings[f"{label}_interactive_ms"] = (time.monotonic() - t0) * 1000.0
            page.wait_for_function("() => [...document.querySelectorAll('.thumb img')].length > 0 && "
                                   "[...document.querySelectorAll('.thumb img')].every(i => i.complete)")
            timings[f"{label}_thumbnails_ms"] = (time.monotonic() - t0) * 1000.0
        if loads is not None:
            loads.append(timings)
        page.wait_for_function("() => document.getElementById('preview').src.startsWith('blob:')")
        settled.set()
        while not stop.is_set():
            stop.wait(0.2)
        browser.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--out", type=Path, default=Path("bench/results/web.json"))
    a = ap.parse_args()
    size = tuple(int(v) for v in a.size.split("x"))
    assert len(size) == 2
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BEATCANVAS_PRESETS"] = str(Path(tmp) / "presets")
        os.environ["XDG_CACHE_HOME"] = os.environ["BEATCANVAS_CACHE"] = str(Path(tmp) / "cache")
        path = user_preset(Path(tmp) / "presets", "bench")
        modes = ["off", "ws-preview"] + (["browser-preview"] if os.path.exists(CHROMIUM) else [])
        fps: dict[str, dict[str, list[float]]] = {}
        latencies: list[float] = []
        costs: dict[str, list[float]] = {"ws-preview": [], "browser-preview": []}
        loads: list[dict[str, float]] = []
        if "browser-preview" in modes:  # first load (thumbnails rendered, then cached on disk): not an fps run
            run(path, (size[0], size[1]), 60.0, 60.0, "browser-preview", None, loads, load_only=True)
        for cap_name, cap in (("capped_60", 60.0), ("uncapped", 1000.0)):
            fps[cap_name] = {m: [] for m in modes}
            for _ in range(a.repeats):
                for m in modes:  # alternating, so the machine's other load spreads over all of them
                    value = run(path, (size[0], size[1]), a.seconds, cap, m,
                                latencies if m == "ws-preview" else None, None, costs=costs.get(m))
                    fps[cap_name][m].append(value)
                    print(f"{cap_name:10s} {m:16s} {value:6.1f} fps", flush=True)

    def median(values: list[float]) -> float:
        ok = [v for v in values if v == v]
        return statistics.median(ok) if ok else float("nan")

    def summary(values: list[float]) -> dict[str, Any]:
        return {"median": round(median(values), 2), "runs": [round(v, 2) if v == v else None for v in values]}

    result: dict[str, Any] = {
        "what": "display fps of a headless session (numpy renderer) without --web vs with the page open and "
                "the preview on; knob-to-picture latency; page load",
        "size": a.size, "seconds_per_run": a.seconds, "repeats": a.repeats,
        "display_fps": {cap: {m: summary(v) for m, v in by_mode.items()} for cap, by_mode in fps.items()},
        "fps_drop_percent": {
            cap: {m: round(100.0 * (1 - median(v) / median(by_mode["off"])), 2)
                  for m, v in by_mode.items() if m != "off"}
            for cap, by_mode in fps.items()
        },
        "display_thread_us_per_frame": {  # the rig's frame hook with the page watching (feed + preview shrink)
            m: {"median": round(float(np.median(v)), 1), "p95": round(float(np.percentile(v, 95)), 1),
                "percent_of_a_60fps_frame": round(float(np.median(v)) / 16667.0 * 100.0, 2), "n": len(v)}
            for m, v in costs.items() if v
        },
        "knob_to_picture_ms": {
            "median": round(float(np.median(latencies)), 2) if latencies else None,
            "p95": round(float(np.percentile(latencies, 95)), 2) if latencies else None,
            "n": len(latencies),
        },
        "page_load_ms": {
            "first_load_interactive": round(loads[0]["cold_interactive_ms"], 1),
            "first_load_all_thumbnails_rendered": round(loads[0]["cold_thumbnails_ms"], 1),
            "reload_interactive_median": round(statistics.median([d["warm_interactive_ms"] for d in loads]), 1),
            "reload_all_thumbnails_median": round(statistics.median([d["warm_thumbnails_ms"] for d in loads]), 1),
        } if loads else None,
        "machine": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()},
        "command": "python scripts/bench_web.py " + " ".join(sys.argv[1:]),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
