"""`beatcanvas play` from the command line, the keys a performer presses, and the issue's full
end-to-end run with the tiny SDXL profile (slow)."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import threading
import time

import numpy as np
import pygame
import pytest
import soundfile as sf
import torch

from live.cli import main
from live_fakes import FakeRenderer, FakeSource, stop_when, synth_track, then_shown_more, wait_for
from test_live_session import assert_kept_showing, key, make_session


@pytest.fixture(scope="module")
def track(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "t.wav"
    sf.write(str(path), synth_track(4.0), 48000)
    return path


def test_play_procedural_runs_and_reports(track, tmp_path, capsys):
    code = main(["play", str(track), "--renderer", "procedural", "--no-audio-out", "--duration", "1.5",
                 "--size", "320x180", "--screenshots", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "shader renderer" in err or "procedural renderer" in err  # select_renderer's reason is printed
    assert "display frames" in err and "renders" in err


def test_play_to_the_end_of_the_track_says_track_finished_not_device_unplugged(tmp_path, capsys):
    sf.write(str(tmp_path / "short.wav"), synth_track(0.5), 48000)
    code = main(["play", str(tmp_path / "short.wav"), "--renderer", "procedural", "--no-audio-out", "--duration", "120",
                 "--size", "320x180"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 0, err
    assert "track finished" in err and "unplugged" not in err and "audio input lost" not in err


def test_play_missing_track_is_one_line_error(tmp_path, capsys):
    code = main(["play", str(tmp_path / "nope.wav"), "--renderer", "procedural", "--no-audio-out"])
    err = capsys.readouterr().err
    assert code == 1 and "nope.wav" in err and "Traceback" not in err


def test_play_bad_size_is_one_line_error(track, capsys):
    code = main(["play", str(track), "--renderer", "procedural", "--no-audio-out", "--size", "big"])
    assert code == 1 and "--size" in capsys.readouterr().err


def test_keys_freeze_blackout_hud_help(tmp_path):
    source = FakeSource(synth_track(10.0))
    renderer = FakeRenderer(delay=0.02)
    session, display = make_session(tmp_path, renderer, source)
    loop = session.display_loop
    pushes: list[bool] = []  # for each frame pushed to the compositor: was the picture frozen then?
    orig_push = session.compositor.push
    session.compositor.push = lambda f, now: (pushes.append(loop.frozen), orig_push(f, now))
    frames = lambda: len(display.shown)  # noqa: E731
    pushed_while_frozen: list[int] = []

    def press(k, ch: str, then) -> bool:  # a key, then wait until its effect is on screen
        display.script.append((0.0, key(k, ch)))
        return wait_for(then_shown_more(then, frames, 5))

    def play() -> None:  # each key once the previous one's effect was shown
        try:
            wait_for(lambda: frames() > 5)
            if not press(pygame.K_SPACE, " ", lambda: loop.frozen):
                return
            frozen_at = len(pushes)
            wait_for(lambda: frames() > 10 + frozen_at)  # a few pictures while frozen
            pushed_while_frozen.append(len(pushes) - frozen_at)
            if not press(pygame.K_SPACE, " ", lambda: not loop.frozen and len(pushes) > frozen_at):
                return
            if not press(pygame.K_b, "b", lambda: loop.blackout):
                return
            if not press(pygame.K_s, "s", lambda: bool(session.report.screenshots)):
                return
            press(pygame.K_b, "b", lambda: not loop.blackout)
            press(pygame.K_h, "h", lambda: not loop.hud.visible)
            press(pygame.K_SLASH, "?", lambda: loop.hud.show_help)
        finally:
            session.request_stop()

    threading.Thread(target=play, daemon=True).start()
    session.run()
    assert pushed_while_frozen == [0], "frames were pushed while frozen"
    assert pushes and pushes[-1] is False, "unfreeze did not resume"
    assert session.report.screenshots, "S wrote no screenshot"
    shot = pygame.image.load(str(session.report.screenshots[0]))
    assert pygame.surfarray.array3d(shot).max() == 0  # blackout shot is black
    assert loop.blackout is False and loop.hud.visible is False and loop.hud.show_help is True
    assert_kept_showing(display, session)


def test_tap_tempo_sets_bpm(tmp_path):
    """Four T taps 0.4 s apart on the tap clock (a fake: a busy display loop handles keys up to a
    frame late, which is the performer's timing, not the test's) give 150 BPM."""
    source = FakeSource(synth_track(10.0))
    taps = [(0.2 + i * 0.1, key(pygame.K_t, "t")) for i in range(4)]
    session, display = make_session(tmp_path, FakeRenderer(delay=0.02), source, script=taps)
    tracker = session.display_loop.tracker
    tap, tap_clock = tracker.tap, iter([0.2, 0.6, 1.0, 1.4])
    tapped_at: list[float] = []  # the source clock at each tap
    tracker.tap = lambda t: (tapped_at.append(t), tap(next(tap_clock)))[1]  # type: ignore[method-assign]
    newest = lambda: session.board.features.get()[1]  # noqa: E731
    stop_when(session, lambda: len(tapped_at) == 4 and newest() is not None and newest().t > tapped_at[-1] + 0.1)
    session.run()
    assert len(tapped_at) == 4 and tracker.tapped
    assert abs(newest().tempo_bpm - 150) < 8


@pytest.mark.slow
def test_end_to_end_tiny_profile_slow_renderer(tmp_path):
    """The issue's acceptance test at full length: a synthesized 20 s track through the real
    FileSource, FeatureTracker and tiny-profile understanding + SDXL renderer slowed to >= 1 s per
    frame. The display loop keeps running, frames change with the music, a screenshot is written."""
    from engine.audio.features import FeatureTracker
    from engine.render.stage import RenderStage
    from live.audio.sources import FileSource
    from live.presets.playlist import ShowList
    from live.presets.schema import Preset
    from live.session.factory import Builder, Stages
    from live.session.session import Session, SessionConfig
    from live.session.show import ShowOptions, resolve
    from live_fakes import RENDERS
    from test_live_session import RecordingDisplay

    path = tmp_path / "t20.wav"
    sf.write(str(path), synth_track(20.0), 48000)
    preset = Preset(name="e2e", model={"renderer": "sdxl", "width": 256, "height": 256})
    options = ShowOptions(profile="tiny", renderer="sdxl", canvas=(320, 180))
    spec = resolve(preset, options)
    assert spec.render.kind == "sdxl", spec.reason
    builder = Builder()
    stages = builder.build(spec)
    inner = stages.render

    class Slow(RenderStage):
        """The tiny SDXL stage slowed to >= 1 s a frame; keeps what it was asked for and made."""

        def __init__(self) -> None:
            super().__init__(inner.spec)
            self.renderer = inner.renderer
            self.frames: list[np.ndarray] = []
            self.conds: list = []

        def render(self, cond, features, t):
            start = RENDERS.begin()
            try:
                time.sleep(1.0)
                frame = inner.render(cond, features, t)
            finally:
                RENDERS.end(start)
            self.frames.append(frame.image)
            self.conds.append((t, cond, features))
            return frame

    slow = Slow()
    display = RecordingDisplay(320, 180, script=[(12.0, key(pygame.K_s, "s"))])
    config = SessionConfig(width=320, height=180, screenshots_dir=tmp_path / "shots", hot_reload=False)
    session = Session(FileSource(path, audio_out=False), FeatureTracker(), Stages(slow, stages.understanding, spec.reason),
                      spec, display, ShowList((preset,), (None,), (0.0,)), options, config, builder)
    report = session.run()
    session.join_workers(5.0)
    assert report.seconds >= 19.0  # played to the track's end
    assert report.conditioning_steps > 5 and report.frames_rendered >= 5
    assert report.display_frames > report.frames_rendered  # the window moved on between renders...
    assert_kept_showing(display, session)  # ...and showed pictures through every 1 s render
    # What the renderer was asked for followed the music (quiet first half vs loud second half;
    # the tiny random UNet maps it to small pixel changes, so the conditioning is the clear signal)...
    quiet = [(c, f) for t, c, f in slow.conds if c is not None and 4.0 < t < 9.5]
    loud = [(c, f) for t, c, f in slow.conds if c is not None and t > 14.0]
    assert quiet and loud
    assert loud[-1][1].arousal > quiet[-1][1].arousal + 0.2  # the features it rendered from
    assert not torch.equal(loud[-1][0].prompt_embeds, quiet[-1][0].prompt_embeds)  # and the conditioning
    # ...every render differed from the one before, and the window showed the change.
    assert all(not np.array_equal(a, b) for a, b in zip(slow.frames, slow.frames[1:]))
    shown = np.array([m for t, m in display.samples if t - display.t0 > 2.0])
    assert np.ptp(shown, axis=0).max() > 5
    assert len(list((tmp_path / "shots").glob("*.png"))) == 1
