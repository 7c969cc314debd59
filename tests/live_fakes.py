"""Fakes for the live-app tests: a time-scaled audio source, a slow/faulty renderer, a music track.

They follow the real contracts (live/audio/sources.py, engine/render/base.py) so the session under test
runs its real loops; only what a test needs to inject (speed, faults) is added.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable

import numpy as np

from engine.render.stage import RenderSpec, RenderStage
from engine.types import SAMPLE_RATE, Features, Frame, Reconfigured
from live.session.factory import Builder
from live.audio.ringbuffer import RingBuffer
from live.session.clock import SteppedClock
from live.session.show import ShowSpec
from live.audio.sources import SourceStats


def wait_for(condition: Callable[[], object], timeout: float = 30.0, poll: float = 0.01) -> bool:
    """Poll `condition` until it is true or `timeout` s pass (generous: the machine is shared); returns
    whether it came true. Tests wait on what they expect to happen, never assert how fast it did."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True


def stop_when(session, condition: Callable[[], object], timeout: float = 60.0) -> threading.Thread:
    """Stop `session` (its `request_stop`) once `condition` holds, or after `timeout` s: a show that
    runs until what the test waits for has happened, not for a fixed time."""
    def run() -> None:
        try:
            wait_for(condition, timeout)
        finally:
            session.request_stop()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def then_shown_more(condition: Callable[[], object], count: Callable[[], int], n: int = 5) -> Callable[[], bool]:
    """A condition for `wait_for`/`stop_when`: `condition` came true and then `count()` (pictures
    presented) grew by `n`: what the test waits for happened and the show went on after it."""
    mark: list[int] = []

    def happened() -> bool:
        if not mark and condition():
            mark.append(count())
        return bool(mark) and count() >= mark[0] + n

    return happened


def watching(session) -> bool:
    """The session's preset watcher is watching (its `ready` event): an edit made before that is not
    one it can see, however long a test waits for it."""
    watcher = session.router._watcher
    return watcher is not None and watcher.ready.is_set()


def synth_track(seconds: float = 20.0, sr: int = SAMPLE_RATE, bpm: float = 120.0) -> np.ndarray:
    """Quiet pad for the first half, loud kicks + hats in the second: frames must differ."""
    t = np.arange(int(seconds * sr)) / sr
    pad = 0.05 * np.sin(2 * np.pi * 220 * t)
    beat = 60.0 / bpm
    phase = t % beat
    kick = 0.9 * np.exp(-phase * 25) * np.sin(2 * np.pi * 55 * t)
    rng = np.random.default_rng(0)
    hats = 0.2 * rng.standard_normal(len(t)) * np.exp(-((t + beat / 2) % beat) * 60)
    loud = t >= seconds / 2
    return (pad + np.where(loud, kick + hats, 0.0)).astype(np.float32)


class FakeSource:
    """Plays `samples` into a RingBuffer from a thread, `speed` times faster than real time.

    Faults: `fail_at` (clock seconds) sets `.error` as a vanished device would, and start() then
    fails `fail_reopens` times before the device "comes back"; `burst_at` writes 12 s at once (more
    than the ring holds), as an overflowing callback would.
    """

    def __init__(self, samples: np.ndarray, speed: float = 1.0, block: int = 480, fail_at: float | None = None,
                 fail_reopens: int = 1, burst_at: float | None = None, clock: SteppedClock | None = None) -> None:
        self.samples = samples
        self.stepped = clock  # plays on a stepped clock: audio is written as it ticks, no thread
        self.speed = speed
        self.block = block
        self.ring = RingBuffer()
        self.duration = len(samples) / SAMPLE_RATE
        self.error: str | None = None
        self.fail_at = fail_at
        self.fail_reopens = fail_reopens
        self.burst_at = burst_at
        self.starts = 0
        self.stats = SourceStats()
        self.nan_at: tuple[float, float] | None = None  # (start, seconds) of a NaN burst in the audio
        self.lead_s = 0.0
        self.live_input = False
        self._t0 = 0.0
        self._pos = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.starts += 1
        if self.error is not None:
            if self.fail_reopens > 0:
                self.fail_reopens -= 1
                raise RuntimeError("device not found")
            self.error = None
        if self.stepped is not None:
            if self._pump not in self.stepped.advanced:
                self._t0 = self.stepped.monotonic()
                self.stepped.advanced.append(self._pump)
            return
        if not self._t0:
            self._t0 = time.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(0.5)

    def clock(self) -> float:
        if self.stepped is not None:
            return min((self.stepped.monotonic() - self._t0) * self.speed, self.duration)
        return min((time.monotonic() - self._t0) * self.speed, self.duration) if self._t0 else 0.0

    @property
    def finished(self) -> bool:
        return self.clock() >= self.duration

    def _run(self) -> None:
        while not self._stop.is_set() and self._pump():
            time.sleep(0.005)

    def _pump(self, _now: float = 0.0) -> bool:
        """Write the audio played up to now; False once the device "disappeared"."""
        sr = SAMPLE_RATE
        now = self.clock()
        if self.fail_at is not None and now >= self.fail_at:
            self.fail_at = None
            self.error = "input device disappeared"
            return False
        if self.burst_at is not None and now >= self.burst_at:
            self.burst_at = None
            n = 12 * sr
            chunk = np.resize(self.samples, n).astype(np.float32)
            self._pos += n
            self.ring.write(chunk, t_end=self._pos / sr)
            self.stats.overflows += 1
        target = min(int(now * sr), len(self.samples))
        if target > self._pos:
            new = self.samples[self._pos : target].copy()
            if self.nan_at is not None:
                a, b = (int(x * sr) - self._pos for x in (self.nan_at[0], sum(self.nan_at)))
                new[max(0, a) : max(0, b)] = np.nan
            self._pos = target
            self.ring.write(new, t_end=self._pos / sr)
        return True


def settle_features(clock: SteppedClock, session, source: FakeSource) -> None:
    """A stepped clock's session moves on once its feature loop has heard all the audio written."""
    def heard() -> bool:
        written, heard = source.ring.t_end, session.feature_loop.heard_until
        return written <= 0.0 or (heard is not None and heard >= written - 1e-9) or session.board.stop.is_set()

    clock.settled.append(heard)


class RenderLog:
    """Every FakeRenderer call, process-wide: the (start, end) monotonic span of each finished one.
    Tests read it to check, without asserting any speed, that the display kept presenting while a
    render was in progress (tests/test_live_session.py's assert_kept_showing). `meant_s` is how long
    the test made the render take (its sleep, or its wait on a held gate): a 0.02 s render that took
    0.6 s only says the machine was busy, one meant to take 1 s says something about the display."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.spans: list[tuple[float, float]] = []
        self.meant: list[float] = []

    def begin(self) -> float:
        return time.monotonic()

    def end(self, start: float, meant_s: float = 0.0) -> None:
        with self._lock:
            self.spans.append((start, time.monotonic()))
            self.meant.append(meant_s)

    def since(self, t0: float, meant_at_least: float = 0.0) -> list[tuple[float, float]]:
        """Spans of the renders begun at `t0` or later that the test meant to last `meant_at_least` s."""
        with self._lock:
            return [s for s, m in zip(self.spans, self.meant) if s[0] >= t0 and m >= meant_at_least]


RENDERS = RenderLog()


class FakeRenderer:
    """Paints a frame whose colour follows the music (low band → red, arousal → green, time →
    blue), after sleeping `delay` s. `fail` maps a call number to an exception to raise there.
    `gate`: when given, each render also waits (up to 60 s) until the test sets it: a render that
    is stuck for as long as the test wants, without a long sleep."""

    def __init__(self, width: int = 64, height: int = 64, delay: float = 0.0, fail: dict | None = None,
                 name: str = "fake", steps: int = 2, gate: threading.Event | None = None,
                 clock: SteppedClock | None = None) -> None:
        self.gate = gate
        self.clock = clock  # `delay` passes on this clock (a stepped one: exactly, whatever the load)
        self.name = name
        self.width, self.height = width, height
        self.delay = delay
        self.fail = dict(fail or {})
        self.steps = steps
        self.calls = 0
        self.rendered = 0
        self.colours: list[tuple[float, tuple[int, int, int]]] = []  # (t, rgb) of each frame

    def render(self, conditioning, features: Features, t: float) -> Frame:
        start = RENDERS.begin()
        self._meant = self.delay
        try:
            return self._render(features, t)
        finally:
            RENDERS.end(start, self._meant)

    def _render(self, features: Features, t: float) -> Frame:
        self.calls += 1
        if self.delay:
            (self.clock.sleep if self.clock is not None else time.sleep)(self.delay)
        if self.gate is not None and not self.gate.is_set():
            held = time.monotonic()
            self.gate.wait(60.0)
            self._meant += time.monotonic() - held  # the test held it this long
        if self.calls in self.fail:
            raise self.fail[self.calls]
        r = int(np.clip(features.low * 80, 0, 255))
        g = int(np.clip((features.arousal + 1.0) * 127, 0, 255))
        b = int((t * 40) % 256)
        img = np.empty((self.height, self.width, 3), np.uint8)
        img[...] = (r, g, b)
        self.rendered += 1
        self.colours.append((t, (r, g, b)))
        return Frame(image=img, t=t, renderer=self.name)

    def reset(self, seed: int) -> None:
        self.calls = 0


class FakeStage(RenderStage):
    """A `RenderStage` around a FakeRenderer; records every spec it was configured with. It rebuilds
    for what SDXL rebuilds for."""

    rebuild_keys = ("kind", "model", "steps", "width", "height", "backend", "guidance_scale", "decoder")

    def __init__(self, renderer: FakeRenderer, spec: RenderSpec) -> None:
        super().__init__(spec)
        self.renderer = renderer  # type: ignore[assignment]
        self.configured: list[RenderSpec] = []

    @property
    def steps(self) -> int | None:
        return self.renderer.steps  # type: ignore[union-attr]

    def configure(self, spec: RenderSpec, negative=None) -> Reconfigured:
        self.configured.append(spec)
        self.negative = negative
        return super().configure(spec, negative)


class FakeBuilder(Builder):
    """Builds FakeStages (at the size asked) and records what it was asked for."""

    def __init__(self, fail: Exception | None = None) -> None:
        super().__init__()
        self.fail = fail
        self.asked: list[tuple[ShowSpec, tuple[int, int] | None]] = []

    def render_stage(self, spec: ShowSpec, size=None, negative=None) -> RenderStage:
        self.asked.append((spec, size))
        if self.fail is not None:
            raise self.fail
        w, h = size or (spec.render.width, spec.render.height)
        return FakeStage(FakeRenderer(w, h, name=f"fake-{w}x{h}"), spec.render)


class FakeUnderstanding:
    """An understanding stage without CLAP: each step is a conditioning from the window's loudness;
    records the settings it was configured with and the features it was stepped with."""

    def __init__(self, fail: dict | None = None) -> None:
        import torch

        from engine.understanding.settings import UnderstandingSettings

        self.torch = torch
        self.settings = UnderstandingSettings()
        self.configured: list = []
        self.features_seen: list = []
        self.steps = 0
        self.fail = dict(fail or {})

    def step(self, window, features=None):
        from engine.types import Conditioning

        self.steps += 1
        if self.steps in self.fail:
            raise self.fail[self.steps]
        self.features_seen.append(features)
        level = float(np.sqrt(np.mean(window.samples[-4800:] ** 2)))
        return Conditioning(self.torch.full((1, 77, 2048), level), self.torch.zeros(1, 1280), t=window.t_end,
                            labels={"loud": level})

    def configure(self, settings):
        from engine.types import Reconfigured

        changed = settings.changed(self.settings)
        self.settings = settings
        self.configured.append(settings)
        return Reconfigured(applied=changed)

    def negative_conditioning(self):
        return (self.torch.ones(1, 77, 2048), self.torch.ones(1, 1280))


def kick_track(seconds: float, bpm: float = 120.0, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Kicks on every beat from the first second: a beat-gated hard cut has beats to land on."""
    t = np.arange(int(seconds * sr)) / sr
    phase = t % (60.0 / bpm)
    return (0.9 * np.exp(-phase * 25) * np.sin(2 * np.pi * 55 * t) + 0.05 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def interrupt(proc: "subprocess.Popen[str]", timeout: float = 30.0) -> tuple[str, str]:
    """Ctrl-C a command under test and collect (stdout, stderr); killed if it does not stop."""
    try:
        proc.send_signal(signal.SIGINT)
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
