"""Drops are ready before they hit (issue 26, part 2): a build prepares the drop's look, the export cuts
to it on the drop's downbeat whatever the render latency, and a build with no drop changes nothing."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from engine.audio.beatmap import analyze_beats
from engine.render.shader import gl_unavailable
from engine.audio.demo import demo_track
from engine.directing.drops import plan_drops, section_events
from engine.directing.grid import BarGrid
from live.export.landing import export_drop, first_difference, logged_drops, read_frame

SR, FPS = 48000, 30
DROP_S = 36.774  # the demo track's drop (its first downbeat)
START, END = 33.0, 39.0
needs_gl = pytest.mark.skipif(gl_unavailable() is not None and not os.environ.get("CI"), reason=f"{gl_unavailable()}")


@pytest.fixture(scope="module")
def tracks(tmp_path_factory):
    """The demo track, and the same build that never drops: its last two bars looped, then fading."""
    d = tmp_path_factory.mktemp("drops")
    x = demo_track(60.0)
    a, b = int(34.838 * SR), int(DROP_S * SR)
    sf.write(d / "demo.wav", x, SR)
    sf.write(d / "nodrop.wav", np.concatenate([x[:b], *[x[a:b]] * 4, x[a:b] * np.linspace(1, 0.3, b - a)]), SR)
    return d / "demo.wav", d / "nodrop.wav"


def test_a_build_predicts_the_drop_and_a_build_without_one_is_discarded(tracks):
    demo, nodrop = tracks
    cues = plan_drops(section_events(demo, beats := analyze_beats(demo)), BarGrid.from_beatmap(beats))
    assert len(cues) == 1 and cues[0].prepared < DROP_S - 1.0  # prepared well ahead of the drop
    assert cues[0].used and abs(cues[0].lands - DROP_S) < 0.02  # cut on the drop's downbeat
    cues = plan_drops(section_events(nodrop, beats := analyze_beats(nodrop)), BarGrid.from_beatmap(beats))
    assert len(cues) == 1 and not cues[0].used and cues[0].decided > cues[0].predicted


@pytest.mark.slow  # about 9 s per export on one CPU
@pytest.mark.parametrize("latency_ms", [0, 80, 200])
@pytest.mark.parametrize("kind", ["numpy", pytest.param("shader", marks=needs_gl)])
def test_the_drop_look_is_first_seen_at_the_frame_nearest_the_drop(tracks, tmp_path, kind, latency_ms):
    export_drop(tracks[0], tmp_path, kind, latency_ms / 1000, START, END)
    export_drop(tracks[0], tmp_path / "plain", kind, latency_ms / 1000, START, END, drops=False)
    expected = int(round((DROP_S - START) * FPS))
    # the first frame of the drop look: the first that is not the normal path's (the same until then)
    onset = first_difference(tmp_path, tmp_path / "plain", 0, int((END - START) * FPS))
    assert onset is not None and abs(onset - expected) <= 1, (onset, expected)
    cut = np.abs(read_frame(tmp_path, onset) - read_frame(tmp_path, onset - 1)).mean()
    assert cut > 2 * np.abs(read_frame(tmp_path, onset - 1) - read_frame(tmp_path, onset - 2)).mean()  # a cut
    log = logged_drops(tmp_path)
    assert [d["state"] for d in log] == ["prepared", "used"] and log[1]["appeared_frame"] == onset
    assert log[0]["build_t"] < DROP_S - 1.0  # prepared more than a second ahead


@pytest.mark.slow
def test_a_build_with_no_drop_shows_no_drop_look(tracks, tmp_path):
    export_drop(tracks[1], tmp_path / "on", "numpy", 0.2, START, 45.0)
    export_drop(tracks[1], tmp_path / "off", "numpy", 0.2, START, 45.0, drops=False)
    assert [d["state"] for d in logged_drops(tmp_path / "on")] == ["prepared", "discarded"]
    assert first_difference(tmp_path / "on", tmp_path / "off", 0, int((45.0 - START) * FPS)) is None  # the normal path


def test_live_a_build_shows_drop_ready_on_the_hud_until_the_drop_or_the_window_ends():
    from engine.directing.drops import DropWatch
    from engine.types import BeatGrid
    from live.screen.hud import Hud, HudState

    grid = BeatGrid(anchor=0.0, period=0.5, beats_per_bar=4, anchor_in_bar=0, downbeat_confidence=1.0)
    w = DropWatch()  # bars every 2 s; the drop predicted on the next group of 4 bars: 8 s
    assert w.step(5.1, "", grid) == "" and w.text(5.1, grid) == ""
    assert w.step(5.1, "build", grid) == "prepared" and w.text(7.1, grid) == "drop ready · 2 beats"
    assert ("next: drop ready · 2 beats", (255, 210, 90)) in Hud().lines(HudState(drop=w.text(7.1, grid)))
    assert w.step(8.02, "drop", grid) == "used" and w.text(8.1, grid) == ""
    w.step(17.0, "build", grid)  # predicted at 24 s; no drop by 24 + 2 bars
    assert w.step(27.9, "", grid) == "" and w.text(25.0, grid) == "drop ready · now"
    assert w.step(28.1, "", grid) == "discarded" and w.text(28.1, grid) == ""
