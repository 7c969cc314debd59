"""The rig inside a running session, over real UDP sockets on 127.0.0.1.

A python-osc client changes a knob and the session's renderer gets the new value; a bad value is
refused with a HUD line; an OSC server in the test receives the feature broadcast of a click track
with a plausible tempo; video senders get the composed picture without the HUD.
"""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import socket
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient

from audio_synth import click_track
from engine.audio.features import FeatureTracker
from live.screen.display import Display
from live.session.factory import Stages
from live.presets.playlist import library_show
from live.presets.schema import Preset
from live.control.rig import Rig, RigOptions
from live.session.session import Session, SessionConfig
from live.session.show import ShowOptions, resolve
from live_fakes import FakeBuilder, FakeRenderer, FakeSource, FakeStage, stop_when, then_shown_more, wait_for


def new_session(renderer, source, seconds: float | None, show=None, **cfg):
    """A session as `play` builds it (the library as its show, so presets switch by name), around a
    fake render stage that records every spec the preset router hands it. `seconds=None`: the show
    runs until the test stops it (`stop_when`) or the track ends."""
    config = SessionConfig(width=160, height=96, duration=seconds, hot_reload=False, hop_s=0.2, **cfg)
    preset = Preset(name="test")
    show = show or library_show(preset, None)
    options = ShowOptions(renderer="procedural", canvas=(160, 96))
    spec = resolve(show.presets[show.start], options)
    stage = FakeStage(renderer, spec.render)
    return Session(source, FeatureTracker(), Stages(stage, None, spec.reason), spec, Display(160, 96, vsync=False),
                   show, options, config, FakeBuilder()), stage


class Receiver:
    """An OSC server on an ephemeral 127.0.0.1 port that records what arrives."""

    def __init__(self):
        self.messages: list[tuple[str, tuple]] = []
        d = Dispatcher()
        d.set_default_handler(lambda address, *args: self.messages.append((address, args)))
        self.server = BlockingOSCUDPServer(("127.0.0.1", 0), d)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def values(self, address: str) -> list[tuple]:
        return [args for a, args in list(self.messages) if a == address]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


Step = tuple[Callable[[Rig], None], Callable[[Session], object]]


def run_session(renderer, samples, options: RigOptions, steps: Sequence[Step] = (), speed: float = 1.0,
                timeout: float = 30.0):
    """Run a real session with a rig until what the test is about has happened. `steps` are
    (act(rig), happened(session)): once the window shows pictures, each act runs and the next
    waits until the previous one's effect is seen (or `timeout` s: generous, the machine is
    shared); then the show stops. Returns (session, report, the rig's say lines, how many steps'
    effects were seen)."""
    session, stage = new_session(renderer, FakeSource(samples, speed=speed), None)
    rig = Rig(options)
    lines: list[str] = []
    rig.start(lambda: session.preset, say=lines.append)
    session.attach_rig(rig)
    session.stage = stage
    seen: list[int] = []

    def direct() -> None:
        try:
            if not wait_for(lambda: session.report.display_frames > 0, timeout):
                return
            for act, happened in steps:
                act(rig)
                if not wait_for(lambda: happened(session), timeout):
                    return
                seen.append(1)
        finally:
            session.request_stop()

    director = threading.Thread(target=direct, daemon=True)
    director.start()
    try:
        report = session.run()
    finally:
        session.request_stop()
        director.join(timeout)
        rig.stop()
    return session, report, lines, len(seen)


def hud_text(session: Session) -> str:
    return "\n".join(text for text, _ in session.display_loop.hud.lines(session.state))


def shown_more_frames(n: int = 5) -> Callable[[Session], bool]:
    """A `happened` that holds once the window has presented `n` more pictures: the show went on."""
    made: list[Callable[[], bool]] = []

    def happened(session: Session) -> bool:
        if not made:
            made.append(then_shown_more(lambda: True, lambda: session.report.display_frames, n))
        return made[0]()

    return happened


def nothing(rig: Rig) -> None:
    pass


def test_osc_client_sets_feedback_and_the_renderer_sees_it():
    renderer = FakeRenderer(width=32, height=32)

    def send(rig):
        SimpleUDPClient(*rig.osc_in.address).send_message("/beatcanvas/motion/feedback", 0.4)

    def rendered_with_it(session):  # the render stage got the new value
        return session.stage.configured and session.stage.configured[-1].feedback == pytest.approx(0.4)

    samples = np.zeros(48_000 * 60, np.float32)  # longer than any wait
    session, _, lines, seen = run_session(renderer, samples, RigOptions(osc_port=0),
                                          [(send, rendered_with_it), (nothing, lambda s: "OSC :" in s.state.rig)])
    assert seen == 2, f"the renderer never got feedback 0.4 (configured: {session.stage.configured}, HUD rig: {session.state.rig!r})"
    assert session.preset.motion.feedback == pytest.approx(0.4)
    assert any("listening on 127.0.0.1:" in line for line in lines)


def test_a_bad_value_is_shown_in_the_hud_and_changes_nothing():
    renderer = FakeRenderer(width=32, height=32)

    def send(rig):
        client = SimpleUDPClient(*rig.osc_in.address)
        client.send_message("/beatcanvas/motion/feedback", 7.5)
        client.send_message("/beatcanvas/motion/nonsense", 1.0)

    samples = np.zeros(48_000 * 60, np.float32)  # longer than any wait
    session, report, _, seen = run_session(renderer, samples, RigOptions(osc_port=0),
                                           [(send, lambda s: "7.5 is out of range" in hud_text(s)),  # the refusal is on screen
                                            (nothing, shown_more_frames(5))])  # and the show went on
    assert seen == 2, f"no refusal in the HUD, or the window stopped after it: {hud_text(session)!r}, {report}"
    assert session.preset == Preset(name="test")
    assert session.stage.configured == []


def test_osc_commands_reach_the_session():
    def send(rig):
        client = SimpleUDPClient(*rig.osc_in.address)
        client.send_message("/beatcanvas/freeze", 1)
        client.send_message("/beatcanvas/preset", "neon-noir")

    def restyle(rig):
        SimpleUDPClient(*rig.osc_in.address).send_message("/beatcanvas/style", "neon rain")

    samples = np.zeros(48_000 * 60, np.float32)  # longer than any wait
    session, _, _, seen = run_session(
        FakeRenderer(width=32, height=32), samples, RigOptions(osc_port=0),
        [(send, lambda s: s.display_loop.frozen and s.preset.name == "neon-noir"),
         (restyle, lambda s: s.preset.conditioning.style == "neon rain")])
    assert seen == 2, f"frozen={session.display_loop.frozen}, preset={session.preset.name}, style={session.preset.conditioning.style!r}"
    assert session.display_loop.frozen is True
    assert session.preset.name == "neon-noir"  # loaded from the library by name
    assert session.preset.conditioning.style == "neon rain"  # a knob of the preset now running


def test_feature_broadcast_of_a_click_track_has_a_plausible_tempo():
    receiver = Receiver()
    try:
        samples, _ = click_track(120.0, seconds=12.0)
        options = RigOptions(osc_out=f"127.0.0.1:{receiver.port}")
        # the whole 12 s track, played 3x fast
        _, report, _, seen = run_session(FakeRenderer(width=32, height=32), samples, options,
                                         [(nothing, lambda s: s.source.finished)], speed=3.0)
        assert seen == 1, f"the track never finished playing: {report}"
        wait_for(lambda: len(receiver.values("/beatcanvas/out/bpm")) >= 0.9 * report.display_frames, timeout=5.0)
    finally:
        receiver.close()
    bpms = [args[0] for args in receiver.values("/beatcanvas/out/bpm")]
    assert report.display_frames > 0 and len(bpms) >= 0.8 * report.display_frames  # one a display frame (UDP may drop some)
    assert 115.0 <= float(np.median(bpms[-30:])) <= 125.0
    beats = sum(args[0] for args in receiver.values("/beatcanvas/out/beat"))
    # ~10 s of track at 2 beats/s once locked; the trigger fires once per beat, not per frame
    assert 8 <= beats <= 24
    assert receiver.values("/beatcanvas/out/bands") and len(receiver.values("/beatcanvas/out/bands")[-1]) == 3


class RecordingBackend:
    name = "Test"
    sender_name = "beatcanvas"

    def __init__(self):
        self.frames = []

    def send(self, frame):
        self.frames.append(frame)

    def close(self):
        pass


def test_video_senders_get_the_composed_picture_without_the_hud():
    from live.outputs.sender import SenderThread

    backend = RecordingBackend()

    samples = np.zeros(48_000 * 60, np.float32)  # longer than any wait
    session, _ = new_session(FakeRenderer(width=32, height=32), FakeSource(samples), None)
    rig = Rig(RigOptions())
    rig.senders.append(SenderThread(backend))
    session.attach_rig(rig)
    stop_when(session, lambda: len(backend.frames) >= 5, timeout=30.0)
    session.run()
    rig.stop()
    assert len(backend.frames) >= 5, f"the sender got {len(backend.frames)} pictures"
    frame = backend.frames[-1]
    assert frame.size == (160, 96)
    # The HUD draws a shaded box with white text at the top left of the window; the sent picture
    # (a flat colour from the fake renderer) has none of it.
    top_left = frame.pixels[6:40, 6:150, :3].astype(int)
    assert np.abs(top_left - np.median(top_left, axis=(0, 1))).max() < 40


class RecordingLink:
    """aalink.Link's surface over the wall clock, at a tempo the audio does not have; remembers
    every beat it handed out, so a test can tell Link's phase from the audio's exactly."""

    def __init__(self, tempo=133.0):
        self.tempo, self.quantum, self.num_peers, self.enabled = tempo, 4.0, 1, True
        self.t0 = time.monotonic()
        self.read: list[float] = []

    @property
    def beat(self):
        b = (time.monotonic() - self.t0) * self.tempo / 60.0
        self.read.append(b)
        return b


def test_link_moves_the_sessions_beat_phase():
    from live.control.link import LinkFollower

    link = RecordingLink(133.0)
    samples, _ = click_track(100.0, seconds=40.0)  # the audio says 100 BPM; Link says 133
    session, _ = new_session(FakeRenderer(width=32, height=32), FakeSource(samples), None)
    rig = Rig(RigOptions())
    rig.link = LinkFollower(link)
    session.attach_rig(rig)
    blocks: dict[float, tuple[float, float]] = {}  # each Features block seen: t -> (bpm, phase)

    def sample():
        while not session.board.stop.is_set():
            f = session.board.features.get()[1]
            if f is not None:
                blocks[f.t] = (f.tempo_bpm, f.beat_phase)
            time.sleep(0.02)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    stop_when(session, lambda: len(blocks) >= 20 and "Link 133.0 BPM" in session.state.rig, timeout=30.0)
    session.run()
    rig.stop()
    watcher.join(5.0)
    assert len(blocks) >= 20, f"only {len(blocks)} feature blocks seen"
    assert all(bpm == 133.0 for bpm, _ in blocks.values())
    # the grid is Link's: each block's phase is the phase of a beat Link handed out (the audio's
    # 100 BPM grid would give other phases), and it moves on from block to block
    handed_out = {round(b % 1.0, 9) for b in link.read}
    phases = [p for _, p in blocks.values()]
    assert all(round(p, 9) in handed_out for p in phases), "a block's beat phase did not come from Link"
    assert len(set(phases)) >= 10
    assert "Link 133.0 BPM" in session.state.rig


class SourceClockLink:
    """aalink.Link's surface on the audio source's clock (Link's now is the audio heard now); as in
    Link, a tempo change keeps the beat where it is. Remembers each time it was forced to a beat."""

    def __init__(self, clock, tempo=133.0):
        self.clock = clock
        self._tempo, self.quantum, self.num_peers, self.enabled = tempo, 4.0, 1, True
        self._ref = (0.0, 0.0)
        self.forced: list[tuple[float, float]] = []

    @property
    def tempo(self):
        return self._tempo

    @tempo.setter
    def tempo(self, bpm):
        self._ref = (self.clock(), self.beat)
        self._tempo = bpm

    @property
    def beat(self):
        t, b = self._ref
        return b + (self.clock() - t) * self._tempo / 60.0

    def force_beat(self, beat):
        self._ref = (self.clock(), beat)
        self.forced.append((self.clock(), beat))


def test_leading_link_hands_the_music_s_tempo_and_beat_to_the_session():
    from live.control.link import LinkLeader

    samples, clicks = click_track(100.0, seconds=40.0)  # the music: 100 BPM; the Link session: 133
    source = FakeSource(samples, speed=2.0)
    session, _ = new_session(FakeRenderer(width=32, height=32), source, None)
    link = SourceClockLink(source.clock, 133.0)
    rig = Rig(RigOptions(link_lead=True))
    rig.link = LinkLeader(link)
    session.attach_rig(rig)
    stop_when(session, lambda: source.clock() > 20.0 and "Link lead 100." in session.state.rig, timeout=60.0)
    session.run()
    rig.stop()
    assert link.tempo == pytest.approx(100.0, abs=0.5)
    assert "Link lead 100." in session.state.rig
    assert 1 <= len(link.forced) <= 8, f"the session's beat was moved {len(link.forced)} times"
    # the session's beats land on the clicks: its beat count is whole on each click (within 20 ms)
    period = 60.0 / 100.0
    t = source.clock()
    beat = link.beat
    frac = ((t - clicks[0]) / period - beat + 0.5) % 1.0 - 0.5
    assert abs(frac) * period < 0.02, f"Link's beat is {frac * period * 1000:.0f} ms off the music's"


def test_a_failing_rig_part_is_reported_once_and_never_raises_into_the_loop():
    from engine.types import Features

    class Broken:
        def features(self, f):
            raise RuntimeError("socket gone")

        def retime(self, f):
            raise RuntimeError("link gone")

        def close(self):
            pass

    rig = Rig(RigOptions())
    rig.osc_out = Broken()
    for _ in range(3):
        rig.frame(None, Features())
    d = rig.drain(Preset())
    assert d.errors == ["rig output: socket gone"]  # once, not per frame
    rig.link = Broken()
    f = Features(t=1.0, tempo_bpm=99.0)
    assert rig.features(f) is f  # the audio's own beat goes on


def test_a_gl_compositor_hands_its_readback_straight_to_the_senders():
    from live.outputs.sender import SenderThread, VideoFrame

    backend = RecordingBackend()
    rig = Rig(RigOptions())
    rig.senders.append(SenderThread(backend))
    frame = VideoFrame(np.zeros((4, 6, 4), np.uint8), "RGBA")
    rig.frame(frame, None)
    wait_for(lambda: bool(backend.frames), timeout=30.0)
    rig.stop()
    assert backend.frames == [frame]
