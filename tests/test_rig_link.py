"""Ableton Link: a fake session object with aalink's surface drives the beat grid."""

from __future__ import annotations

import dataclasses
import sys

import pytest

from engine.errors import BeatcanvasError
from engine.types import Features
from live.control.link import LinkFollower, open_link
import machine
from live_fakes import wait_for


class FakeLink:
    """aalink.Link's attributes: tempo, beat, phase, quantum, num_peers, enabled. Its beat runs
    on a clock the test moves."""

    def __init__(self, tempo=128.0, quantum=4.0, peers=2):
        self.tempo = tempo
        self.quantum = quantum
        self.num_peers = peers
        self.enabled = True
        self.now = 0.0  # seconds

    @property
    def beat(self) -> float:
        return self.now * self.tempo / 60.0

    @property
    def phase(self) -> float:
        return self.beat % self.quantum


class RecordingGrid:
    def __init__(self):
        self.calls = []

    def set_tempo_phase(self, bpm, beat_phase, at_time):
        self.calls.append((bpm, beat_phase, at_time))


def test_features_follow_link_tempo_and_phase():
    link = FakeLink(tempo=128.0)
    follower = LinkFollower(link)
    audio = Features(t=1.0, tempo_bpm=97.0, beat_phase=0.9)  # what the audio tracker thought
    link.now = 60.0 / 128.0 * 10.25  # a quarter into beat 10
    out = follower.retime(audio)
    assert out.tempo_bpm == 128.0 and out.beat_phase == pytest.approx(0.25)
    assert out.rms == audio.rms and out.t == audio.t  # everything else untouched
    link.now += 60.0 / 128.0 * 0.5
    assert follower.retime(audio).beat_phase == pytest.approx(0.75)


def test_beat_trigger_fires_once_per_link_beat():
    link = FakeLink(tempo=120.0)
    follower = LinkFollower(link)
    fired = []
    for i in range(200):  # 2 s in 10 ms blocks: four beats at 120 BPM
        link.now = i * 0.01
        fired.append(follower.retime(Features(t=link.now)).beat)
    assert sum(fired) == 3  # beats 1, 2, 3 land inside; beat 0 was there before the first block
    if "downbeat" in {f.name for f in dataclasses.fields(Features)}:
        link.now = 0.0
        f2 = LinkFollower(link)
        downs = []
        for i in range(900):  # 9 s: 18 beats, bars of 4
            link.now = i * 0.01
            downs.append(f2.retime(Features(t=link.now)).downbeat)
        assert sum(downs) == 4  # beats 4, 8, 12, 16


def test_push_steers_a_grid():
    link = FakeLink(tempo=140.0)
    link.now = 60.0 / 140.0 * 3.5
    grid = RecordingGrid()
    state = LinkFollower(link).push(grid, at_time=12.0)
    assert grid.calls == [(140.0, pytest.approx(0.5), 12.0)]
    assert state.hud() == "Link 140.0 BPM, beat 4, 2 peers"


def test_tap_tempo_sets_the_link_session_tempo():
    link = FakeLink(tempo=120.0)
    follower = LinkFollower(link)
    for i, t in enumerate([10.0, 10.5, 11.0]):
        assert follower.tap(t) is None  # too few taps yet
    assert follower.tap(11.5) == pytest.approx(120.0)
    for t in (20.0, 20.4, 20.8, 21.2):  # a pause starts over; 150 BPM
        follower.tap(t)
    assert link.tempo == pytest.approx(150.0)


def test_without_aalink_one_line_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "aalink", None)
    with pytest.raises(BeatcanvasError, match=r"pip install 'beatcanvas\[link\]'"):
        open_link()


def test_close_runs_once():
    calls = []
    follower = LinkFollower(FakeLink(), closer=lambda: calls.append(1))
    follower.close()
    follower.close()
    assert calls == [1]


def test_two_real_link_peers_share_tempo_and_phase():
    """aalink for real: two sessions in this process find each other over the loopback network,
    and a tempo change on one reaches the other's beat grid."""
    machine.dev_extra("aalink")  # a dev dependency: missing is a failure
    no_multicast = machine.udp_multicast_reason()
    if no_multicast:
        pytest.skip(f"Link peers find each other by UDP multicast: {no_multicast}")

    a, b = open_link(120.0), open_link(90.0)
    try:
        assert wait_for(lambda: min(a.state().peers, b.state().peers) >= 1), "the two Link peers never met"
        assert a.state().peers == 1 and b.state().peers == 1
        a.link.tempo = 133.0
        assert wait_for(lambda: abs(b.state().bpm - 133.0) <= 0.01), "the tempo change never reached the peer"
        assert b.retime(Features()).tempo_bpm == pytest.approx(133.0, abs=0.01)
        # One shared timeline: b's beat, read between two reads of a's, lies between them (however
        # long the reads took on a busy machine).
        before, between, after = a.state().beat, b.state().beat, a.state().beat
        assert before - 0.01 <= between <= after + 0.01, (before, between, after)
    finally:
        a.close()
        b.close()
