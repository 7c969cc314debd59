"""Ableton Link: a fake session object with aalink's surface drives the beat grid."""

from __future__ import annotations

import dataclasses
import sys

import pytest

from engine.errors import BeatcanvasError
from engine.types import Features
from engine.types import BeatGrid
from live.control.link import PHASE_TOLERANCE_S, LinkFollower, LinkLeader, open_link
import machine
from live_fakes import wait_for


class FakeLink:
    """aalink.Link's attributes: tempo, beat, phase, quantum, num_peers, enabled, force_beat. Its
    beat runs on a clock the test moves; as in Link, a tempo change keeps the beat where it is."""

    def __init__(self, tempo=128.0, quantum=4.0, peers=2):
        self._tempo = tempo
        self.quantum = quantum
        self.num_peers = peers
        self.enabled = True
        self.now = 0.0  # seconds
        self._ref = (0.0, 0.0)  # (time, beat) the timeline runs from
        self.forced: list[tuple[float, float]] = []  # (time, beat) of each force_beat

    @property
    def tempo(self) -> float:
        return self._tempo

    @tempo.setter
    def tempo(self, bpm: float) -> None:
        self._ref = (self.now, self.beat)
        self._tempo = bpm

    @property
    def beat(self) -> float:
        t, b = self._ref
        return b + (self.now - t) * self._tempo / 60.0

    def force_beat(self, beat: float) -> None:
        self._ref = (self.now, beat)
        self.forced.append((self.now, beat))

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


def heard(t, bpm=100.0, anchor=0.3, in_bar=0, per_bar=4, confidence=0.9, downbeats=0.8):
    """A Features block at `t` whose tracker hears beats at `anchor + k·60/bpm`; the anchor is beat
    `in_bar` of its bar (downbeats=0: the bar is not known)."""
    grid = BeatGrid(anchor=anchor, period=60.0 / bpm, beats_per_bar=per_bar, anchor_in_bar=in_bar,
                    confidence=confidence, downbeat_confidence=downbeats)
    return Features(t=t, grid=grid, tempo_bpm=bpm)


def bar_position(features):
    """Where the block's grid is in its bar at `t`, in beats (0 = on a downbeat)."""
    g = features.grid
    beats = (features.t - g.anchor) / g.period
    return (g.anchor_in_bar + beats) % g.beats_per_bar


def off_by(a, b, span):
    return abs((a - b + span / 2) % span - span / 2)


def test_leading_gives_the_session_the_heard_tempo_beat_and_bar():
    link = FakeLink(tempo=133.0)  # the session plays at 133 BPM, out of phase with the music
    leader = LinkLeader(link)
    link.now = 5.0
    leader.lead(heard(5.0))
    assert link.tempo == pytest.approx(100.0)
    assert off_by(link.beat, bar_position(heard(5.0)), 4) < 1e-9  # the session's bar starts on the heard downbeat
    for i in range(1, 400):  # 4 more seconds, 10 ms blocks: the session stays with the music unprompted
        link.now = 5.0 + i * 0.01
        leader.lead(heard(link.now))
        assert off_by(link.beat, bar_position(heard(link.now)), 4) < 1e-6
    assert len(link.forced) == 1
    assert leader.hud() == "Link lead 100.0 BPM, beat 3, 2 peers"  # 9.0 s: beat 14.5 from the anchor, the third of its bar


def test_leading_waits_for_a_sure_beat_and_keeps_the_session_otherwise():
    link = FakeLink(tempo=133.0)
    leader = LinkLeader(link)
    for i in range(300):
        link.now = i * 0.01
        leader.lead(heard(link.now, confidence=0.1))  # the tracker is unsure
        leader.lead(Features(t=link.now))  # no beat at all yet
    assert link.tempo == 133.0 and link.forced == []
    assert link.beat == pytest.approx(2.99 * 133.0 / 60.0)  # its own timeline, untouched


def test_leading_follows_drift_at_most_once_a_bar_and_not_for_small_errors():
    link = FakeLink(tempo=120.0)
    leader = LinkLeader(link)
    link.now = 2.0
    leader.lead(heard(2.0, bpm=120.0, anchor=0.2))  # 0.4 beats off the session's
    assert len(link.forced) == 1
    # the heard beat moves a little (less than the tolerance): the session is left alone
    small = PHASE_TOLERANCE_S / 2
    for i in range(1, 300):
        link.now = 2.0 + i * 0.01
        leader.lead(heard(link.now, bpm=120.0, anchor=0.2 + small))
    assert len(link.forced) == 1
    # it moves 60 ms: re-aligned once (a bar at 120 BPM is 2 s, and it stays aligned after)
    for i in range(300, 900):
        link.now = 2.0 + i * 0.01
        leader.lead(heard(link.now, bpm=120.0, anchor=0.26))
    assert len(link.forced) == 2
    assert off_by(link.beat, bar_position(heard(link.now, bpm=120.0, anchor=0.26)), 4) < 1e-6
    # two jumps within one bar: the second waits for the bar to pass
    link.now += 0.01
    leader.lead(heard(link.now, bpm=120.0, anchor=0.32))
    first = len(link.forced)
    link.now += 0.5
    leader.lead(heard(link.now, bpm=120.0, anchor=0.38))
    assert len(link.forced) == first
    link.now += 2.0
    leader.lead(heard(link.now, bpm=120.0, anchor=0.38))
    assert len(link.forced) == first + 1


def test_leading_a_waltz_sets_bars_of_three_and_without_a_bar_only_the_beat():
    link = FakeLink(tempo=90.0)
    leader = LinkLeader(link)
    link.now = 7.0
    waltz = heard(7.0, bpm=150.0, anchor=1.0, in_bar=2, per_bar=3)
    leader.lead(waltz)
    assert link.quantum == 3.0
    assert off_by(link.beat, bar_position(waltz), 3) < 1e-9
    link2 = FakeLink(tempo=90.0)
    link2.now = 7.0
    unknown = heard(7.0, bpm=150.0, anchor=1.0, downbeats=0.0)
    start = link2.beat
    LinkLeader(link2).lead(unknown)
    assert off_by(link2.beat, bar_position(unknown), 1) < 1e-9  # the beat's phase is the heard one
    assert abs(link2.beat - start) <= 0.5  # and the session's bar count moved the shorter way (at most half a beat)
    assert link2.quantum == 4.0


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


def test_a_real_link_peer_follows_the_beat_beatcanvas_leads():
    """aalink for real: beatcanvas leads (`--link-lead`) and another peer gets the heard tempo and beat."""
    import time

    machine.dev_extra("aalink")
    no_multicast = machine.udp_multicast_reason()
    if no_multicast:
        pytest.skip(f"Link peers find each other by UDP multicast: {no_multicast}")

    a, b = open_link(120.0, lead=True), open_link(90.0)
    try:
        assert isinstance(a, LinkLeader) and isinstance(b, LinkFollower)
        assert wait_for(lambda: min(a.state().peers, b.state().peers) >= 1), "the two Link peers never met"
        t0 = time.monotonic()
        a.lead(heard(t0, bpm=137.0, anchor=t0 - 0.2, in_bar=1))
        assert wait_for(lambda: abs(b.state().bpm - 137.0) <= 0.01), "the heard tempo never reached the peer"
        assert wait_for(lambda: off_by(b.state().beat, bar_position(heard(time.monotonic(), bpm=137.0, anchor=t0 - 0.2, in_bar=1)), 4)
                        < 0.05), "the peer's bar never lined up with the heard one"
    finally:
        a.close()
        b.close()
