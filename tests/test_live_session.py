"""The live session end to end, with a deliberately slow renderer and injected faults.

Each test runs the real loops (audio → features → render worker → compositor → window) under
SDL_VIDEODRIVER=dummy and checks what a performer would see: the display loop never stalls, new
frames keep arriving, and the HUD says what went wrong.
"""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import signal
import threading
import time
from pathlib import Path

import numpy as np
import pygame
import pytest
import torch

from engine.audio.features import FeatureTracker
from engine.render.stage import RenderStage
from live.screen.display import Display
from live.session.clock import Clock
from live.session.factory import Stages
from live.presets.playlist import ShowList
from live.presets.schema import Preset
from live.session.session import Session, SessionConfig
from live.session.show import ShowOptions, resolve
from live_fakes import RENDERS, FakeBuilder, FakeRenderer, FakeSource, FakeStage, stop_when, synth_track, then_shown_more


class RecordingDisplay(Display):
    """A dummy-driver window that records when each picture was shown and injects scripted events
    (`script`: list of (seconds after open, event))."""

    def __init__(self, *a, script=None, clock=None, **kw):
        super().__init__(*a, vsync=False, **kw)
        self.clock = clock or Clock()  # whose time `shown` is in (the session's)
        self.shown: list[float] = []
        self.script = sorted(script or [], key=lambda s: s[0])
        self.samples: list[tuple[float, np.ndarray]] = []

    def open(self):
        super().open()
        self.t0 = self.clock.monotonic()

    def events(self):
        out = super().events()
        now = self.clock.monotonic() - self.t0
        while self.script and self.script[0][0] <= now:
            out.append(self.script.pop(0)[1])
        return out

    def present(self, picture):
        super().present(picture)
        now = self.clock.monotonic()
        self.shown.append(now)
        if len(self.shown) % 10 == 0:
            self.samples.append((now, pygame.surfarray.array3d(picture).mean(axis=(0, 1))))

    def longest_gap(self) -> float:
        return float(np.max(np.diff(self.shown))) if len(self.shown) > 1 else float("inf")


def make_session(tmp_path, renderer, source, *, script=None, preset=None, preset_path=None, builder=None,
                 understanding=None, show=None, options=None, clock=None, **cfg):
    """A session as `play` builds it, around a fake (or real) render stage; `show` defaults to the one
    preset (with `preset_path` hot-reloaded when given)."""
    display = RecordingDisplay(320, 180, script=script, clock=clock)
    config = SessionConfig(
        width=320, height=180, hop_s=0.2, backoff_s=0.05, backoff_max_s=0.2, reopen_every_s=0.2,
        screenshots_dir=tmp_path / "screenshots", hot_reload=preset_path is not None, **cfg,
    )
    preset = preset or Preset(name="test")
    options = options or ShowOptions(renderer="procedural", canvas=(320, 180))
    show = show or ShowList((preset,), (preset_path,), (0.0,))
    spec = resolve(show.presets[show.start], options)
    stage = renderer if isinstance(renderer, RenderStage) else FakeStage(renderer, spec.render)
    stages = Stages(stage, understanding, spec.reason)
    session = Session(source, FeatureTracker(), stages, spec, display, show, options, config,
                      builder or FakeBuilder(), clock=clock)
    return session, display


def key(k, unicode=""):
    return pygame.event.Event(pygame.KEYDOWN, key=k, mod=0, unicode=unicode, scancode=0)


def assert_kept_showing(display: RecordingDisplay, session: Session, min_fps: float | None = None):
    """The window kept showing while the renderer worked, judged by events, not speed (the machine
    is shared; frame rates are measured by scripts/bench_live.py): pictures were presented while a
    FakeRenderer call was in progress (a display loop that waits for the renderer never does), and
    every render the test made last 0.5 s or more (a sleep or a held gate) saw at least one picture
    presented during it (a frozen window does not). A short render that a busy machine stretched
    past 0.5 s is no evidence either way: the display thread was as starved as the renderer.
    `min_fps` is accepted for old callers and ignored."""
    r = session.report
    assert r.display_frames > 0 and display.shown, f"nothing was shown: {r}"
    shown = np.asarray(display.shown)

    def presented_during(spans):
        return [int(np.searchsorted(shown, b) - np.searchsorted(shown, a, side="right")) for a, b in spans]

    spans = [(a, b) for a, b in RENDERS.since(display.t0) if b <= shown[-1]]
    if any(b - a >= 0.01 for a, b in spans):
        assert sum(presented_during(spans)) > 0, f"no picture was shown while any of {len(spans)} renders ran: the display waited"
    long = [(a, b) for a, b in RENDERS.since(display.t0, meant_at_least=0.5) if b <= shown[-1]]
    frozen = [b - a for (a, b), n in zip(long, presented_during(long)) if n == 0]
    assert not frozen, f"the picture froze for a whole {frozen[0]:.2f} s render"


def test_slow_renderer_does_not_stall_display_and_frames_follow_music(tmp_path):
    """The issue's end-to-end check, time-scaled: a 20 s track played 5x fast (4 s) while the
    renderer sleeps 1 s per frame. The display keeps running, frames change with the music (quiet
    first half, loud second half), and S writes a screenshot."""
    source = FakeSource(synth_track(20.0), speed=5.0)
    renderer = FakeRenderer(delay=1.0)
    session, display = make_session(tmp_path, renderer, source, duration=5.0,
                                    script=[(3.0, key(pygame.K_s, "s"))])
    report = session.run()
    assert 3 <= report.frames_rendered <= 6  # the renderer's pace, not the display's
    assert report.display_frames > report.frames_rendered  # the window moves on between renders...
    assert_kept_showing(display, session)  # ...and shows pictures through every 1 s render
    # Renders made during the quiet first half differ from those in the loud second half...
    quiet = [c[1] for t, c in renderer.colours if t < 9.5]
    loud = [c[1] for t, c in renderer.colours if t > 12.5]
    assert quiet and loud
    assert np.mean(loud) - max(quiet) > 20, "frames did not follow the music"
    # ...and the window showed the change.
    shown = np.array([m for t, m in display.samples if t - display.t0 > 1.2])
    assert np.ptp(shown, axis=0).max() > 20
    shots = list((tmp_path / "screenshots").glob("*.png"))
    assert len(shots) == 1 and pygame.image.load(str(shots[0])).get_size() == (320, 180)


def test_render_exception_keeps_last_frame_and_retries(tmp_path):
    source = FakeSource(synth_track(10.0), speed=1.0)
    renderer = FakeRenderer(delay=0.02, fail={3: RuntimeError("boom"), 4: ValueError("bad latent")})
    session, display = make_session(tmp_path, renderer, source)
    stop_when(session, lambda: session.report.render_errors == 2 and session.report.frames_rendered > 5
              and "bad latent" in session.state.error)
    report = session.run()
    assert report.render_errors == 2
    assert report.frames_rendered > 5  # it came back after the back-off
    assert "bad latent" in session.state.error
    assert_kept_showing(display, session)


def test_cuda_oom_steps_down_and_says_so(tmp_path):
    source = FakeSource(synth_track(10.0))
    big = FakeRenderer(width=512, height=512, fail={2: torch.cuda.OutOfMemoryError("CUDA out of memory. Tried")})
    builder = FakeBuilder()
    session, display = make_session(tmp_path, big, source, builder=builder)
    stop_when(session, lambda: session.render_loop.stage.renderer is not big
              and session.render_loop.stage.renderer.rendered > 3 and "384x384" in session.state.message)
    session.run()
    assert [size for _, size in builder.asked] == [(384, 384)]  # 3/4, in multiples of 64
    smaller = session.render_loop.stage.renderer
    assert smaller.width == 384
    assert "out of memory" in session.state.message and "384x384" in session.state.message
    assert smaller.rendered > 3  # the smaller renderer kept delivering
    assert_kept_showing(display, session)


def test_oom_as_runtime_error_without_downscale_allowed(tmp_path):
    source = FakeSource(synth_track(10.0))
    renderer = FakeRenderer(fail={2: RuntimeError("CUDA error: out of memory")})
    preset = Preset(name="fixed", model={"allow_downscale": False})
    builder = FakeBuilder()
    session, display = make_session(tmp_path, renderer, source, preset=preset, builder=builder)
    stop_when(session, lambda: "forbids" in session.state.message and renderer.rendered > 3)
    session.run()
    assert "forbids" in session.state.message
    assert builder.asked == []  # it did not step down
    assert renderer.rendered > 3
    assert_kept_showing(display, session)


def test_a_track_that_ends_while_the_show_goes_on_is_finished_not_a_lost_device(tmp_path):
    """`studio --once`: the end of a file is "track finished", not "audio input lost (device unplugged?)",
    and nothing is reopened; the picture goes on."""
    import soundfile as sf

    from live.audio.sources import FileSource

    sf.write(tmp_path / "t.wav", synth_track(0.4), 48_000)
    source = FileSource(tmp_path / "t.wav", audio_out=False)
    session, display = make_session(tmp_path, FakeRenderer(delay=0.02), source, duration=60.0, stop_when_finished=False)
    stop_when(session, then_shown_more(lambda: session.state.message == "track finished", lambda: len(display.shown)))
    report = session.run()
    assert source.finished and session.state.message == "track finished"
    assert "unplugged" not in session.state.error and "lost" not in session.state.error
    assert report.reopens == 0 and not session.feature_loop.lost
    assert len(display.shown) > 5


def test_a_looping_track_keeps_the_features_coming_past_its_end(tmp_path):
    """`studio`: the track loops, so the tracker hears audio (and a clock counting up) past the track's
    end, twice over, with no gap, nothing lost, nothing reopened and no "track finished"."""
    import soundfile as sf

    from live.audio.sources import FileSource

    sf.write(tmp_path / "t.wav", synth_track(0.5), 48_000)
    source = FileSource(tmp_path / "t.wav", audio_out=False, loop=True)
    session, display = make_session(tmp_path, FakeRenderer(delay=0.02), source, duration=60.0, stop_when_finished=False)
    newest = lambda: session.board.features.get()[1]  # noqa: E731
    stop_when(session, lambda: newest() is not None and newest().t > 1.2)
    report = session.run()
    assert newest().t > 1.2 and source.loops >= 2 and not source.finished
    assert report.reopens == 0 and report.overflows == 0 and "audio input" not in session.state.error
    assert session.state.message != "track finished"


def test_input_device_disappearing_is_reopened(tmp_path):
    source = FakeSource(synth_track(10.0), fail_at=0.5, fail_reopens=1)
    renderer = FakeRenderer(delay=0.02)
    session, display = make_session(tmp_path, renderer, source, duration=60.0, stop_when_finished=False)
    newest = lambda: session.board.features.get()[1]  # noqa: E731
    stop_when(session, lambda: source.starts >= 3 and session.report.reopens >= 1 and session.state.message == ""
              and newest() is not None and newest().t > 1.0)
    report = session.run()
    assert source.starts >= 3  # first start, one failed reopen, one good reopen
    assert report.reopens >= 1
    assert "audio input lost" in session.state.error
    assert session.state.message == ""  # back to normal after the reopen
    # features flowed again after the reopen: the last features are recent
    assert session.board.features.get()[1].t > 1.0
    assert_kept_showing(display, session)


def test_audio_overflow_skips_ahead(tmp_path):
    source = FakeSource(synth_track(10.0), burst_at=0.5)
    renderer = FakeRenderer(delay=0.02)
    session, display = make_session(tmp_path, renderer, source, duration=60.0, stop_when_finished=False)
    newest = lambda: session.board.features.get()[1]  # noqa: E731
    stop_when(session, lambda: session.report.overflows >= 1 and newest() is not None and newest().t > 12.0
              and renderer.rendered > 5)
    report = session.run()
    assert report.overflows >= 1
    assert session.board.features.get()[1].t > 12.0  # caught up with the newest audio
    assert renderer.rendered > 5
    assert_kept_showing(display, session)


def test_window_resize_keeps_showing(tmp_path):
    source = FakeSource(synth_track(10.0))
    renderer = FakeRenderer(delay=0.02)
    resize = pygame.event.Event(pygame.VIDEORESIZE, w=400, h=300, size=(400, 300))
    session, display = make_session(tmp_path, renderer, source, script=[(0.4, resize)])
    shown_before: list[int] = []
    orig = display.handle

    def handle(event):
        if event.type == pygame.VIDEORESIZE:
            shown_before.append(len(display.shown))
        orig(event)

    display.handle = handle
    stop_when(session, lambda: bool(shown_before) and len(display.shown) - shown_before[0] > 5)
    session.run()
    assert display.resizes == 1 and display.windowed_size == (400, 300)
    assert len(display.shown) - shown_before[0] > 5  # frames after the resize
    assert_kept_showing(display, session)


def test_quit_key_ends_without_waiting_for_the_render(tmp_path):
    source = FakeSource(synth_track(10.0))
    stuck = threading.Event()
    renderer = FakeRenderer(gate=stuck)  # stuck in its first render until the test lets it go
    session, display = make_session(tmp_path, renderer, source, duration=60.0,
                                    script=[(0.3, key(pygame.K_q, "q"))])
    try:
        report = session.run()
        # Q ended the show while the render was still stuck (waiting for it would take 60 s here).
        assert renderer.calls == 1 and renderer.rendered == 0
        assert report.seconds < 30.0 and report.display_frames > 0
    finally:
        stuck.set()


def test_ctrl_c_asks_the_show_to_stop_instead_of_raising_into_its_code(tmp_path):
    # A KeyboardInterrupt raised wherever the main thread is can leave a lock held and hang the exit;
    # Ctrl-C sets the stop flag, the frame in progress finishes, the show ends as interrupted.
    source = FakeSource(synth_track(10.0))
    session, display = make_session(tmp_path, FakeRenderer(), source, duration=60.0)
    present = display.present
    after_ctrl_c: list[int] = []

    def present_then_ctrl_c(picture):
        present(picture)
        if len(display.shown) == 5:
            os.kill(os.getpid(), signal.SIGINT)  # delivered to this (main) thread at once
            after_ctrl_c.append(len(display.shown))  # not reached if Ctrl-C raised here

    display.present = present_then_ctrl_c
    before = signal.getsignal(signal.SIGINT)
    report = session.run()
    assert after_ctrl_c == [5]
    assert report.interrupted and report.seconds < 30.0
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back
