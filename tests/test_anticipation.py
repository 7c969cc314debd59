"""The show anticipates the music: a change queued for the downbeat is on screen at the downbeat,
whatever the renderer's latency (issue 26)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from engine.audio.beatmap import analyze_beats
from engine.audio.rhythms import SR, clicks
from engine.directing.grid import BarGrid
from engine.directing.quantize import ChangeQueue, LatencyMeter, Quantize, land, queued_text
from engine.render.shader import gl_unavailable
from engine.types import BeatGrid
from live.export.landing import errors, logged_changes, look_onsets
from live.export.run import ExportSettings, run_export
from live.presets.library import load_preset
from live.presets.schema import Preset, PresetError
from live.schedule.runtime import ShowDirection
from live.schedule.schema import parse_schedule
from live.session.factory import build_stages
from live.session.show import ShowOptions, resolve

FPS = 30
needs_gl = pytest.mark.skipif(gl_unavailable() is not None and not os.environ.get("CI"), reason=f"{gl_unavailable()}")


# -- the quantiser -------------------------------------------------------------------------------


def test_quantize_knob_parses_and_rejects_nonsense():
    assert Quantize.parse("downbeat") == Quantize("downbeat") and Quantize.parse("bar:4") == Quantize("bar", 4)
    assert str(Quantize.parse("bar:4")) == "bar:4" and not Quantize.parse("off").on
    with pytest.raises(ValueError, match="bar:N"):
        Quantize.parse("bar:0")
    assert Preset.model_validate({"transitions": {"quantize": "bar:2"}}).transitions.quantize == "bar:2"
    with pytest.raises(Exception):
        Preset.model_validate({"transitions": {"quantize": "sometimes"}})


def test_changes_land_on_the_next_beat_downbeat_or_group_of_bars():
    beats = [0.5 * k for k in range(40)]  # 120 BPM, bar lines every 2 s from 0
    grid = BarGrid.from_times(beats, beats[::4])
    live = BeatGrid(anchor=0.0, period=0.5, beats_per_bar=4, anchor_in_bar=0, downbeat_confidence=1.0)
    for g in (grid, live):
        assert land(Quantize("beat"), 3.1, g) == pytest.approx(3.5)
        assert land(Quantize("downbeat"), 3.1, g) == pytest.approx(4.0)
        assert land(Quantize("downbeat"), 4.0, g) == pytest.approx(4.0)  # already on it: now
        assert land(Quantize("bar", 4), 2.1, g) == pytest.approx(8.0)  # bars 1, 5, 9: 0, 8, 16 s
        assert land(Quantize("off"), 3.1, g) == 3.1
    assert land(Quantize("downbeat"), 3.1, BeatGrid()) == 3.1  # no beats yet: at once
    # the live grid knows the anchor beat is the 3rd of its bar: the next bar line is 2 beats on
    shifted = BeatGrid(anchor=0.0, period=0.5, beats_per_bar=4, anchor_in_bar=2, downbeat_confidence=1.0)
    assert land(Quantize("downbeat"), 0.2, shifted) == pytest.approx(1.0)


def test_queue_hands_out_changes_in_landing_order_and_counts_down_beats():
    grid = BarGrid.from_times([0.5 * k for k in range(40)], [2.0 * k for k in range(10)])
    q = ChangeQueue()
    q.put("preset neon", 3.1, Quantize("downbeat"), grid)
    q.put("drop", 2.2, Quantize("beat"), grid)
    assert queued_text(q.next(), 2.2, grid) == "drop in 1 beat"
    assert [c.what for c in q.due(2.5)] == ["drop"] and queued_text(q.next(), 2.6, grid) == "preset neon in 3 beats"
    assert q.due(3.9) == [] and [c.lands for c in q.due(4.0)] == [4.0] and len(q) == 0


def test_latency_meter_is_a_running_p95_per_renderer_and_size():
    m = LatencyMeter(keep=20)
    key = ("sdxl", 512, 512)
    assert m.p95(key) == 0.0
    for k in range(100):
        m.add(key, 0.1 if k % 10 else 0.3)  # the last 20: two slow ones
    assert 0.1 < m.p95(key) <= 0.3 and m.p95(("sdxl", 1024, 1024)) == 0.0
    m.add(key, float("nan"))
    assert m.count(key) == 20


# -- export: 8 scheduled changes land on their downbeats -----------------------------------------


@pytest.fixture(scope="module")
def accented(tmp_path_factory):
    """150 BPM clicks, louder on each bar's first beat: downbeats every 1.6 s, known exactly."""
    r = clicks(150.0, 16.0, accent=2.0)
    path = tmp_path_factory.mktemp("anticip") / "clicks.wav"
    sf.write(path, r.samples, SR)
    return path, r, analyze_beats(path)


def changes_export(track, truth_beats, out, kind, latency_s, *, compensate=True, quantize="downbeat",
                   changes=8, offset_s=0.31, steps=None):
    """Export with a schedule of `changes` seed changes, each asked for `offset_s` after a beat of
    `truth_beats` (so each waits for the next one); → (onset frames from the pixels, expected
    frames, the changes logged)."""
    beats = analyze_beats(track)
    keys = "\n".join(f'[[key]]\nat = {b + offset_s:.3f}\nmotion.seed = {k + 1}\n'
                     for k, b in enumerate(truth_beats[1:changes + 1]))
    model = {"steps": steps} if steps else {}
    base = Preset.model_validate({"name": "base", "transitions": {"quantize": quantize}, "motion": {"crossfade_ms": 0},
                                  "model": model})
    schedule = parse_schedule('interpolate = "hold"\n' + keys, "show.toml", load_preset)
    direction = ShowDirection(base, schedule, grid=BarGrid.from_beatmap(beats))
    options = ShowOptions(renderer=kind, directed=True, size=(64, 64), live=False, profile="tiny", device="cpu",
                          allow_cpu_diffusion=True)
    stage = build_stages(resolve(base, options)).render
    settings = ExportSettings(track=track, out_dir=out, fps=FPS, width=64, height=64, crossfade_ms=0, chunk_s=0,
                              direction=direction.fingerprint(), end=float(truth_beats[changes + 1]) + 0.5)
    run_export(settings, stage, None, direction=direction, respec=lambda p: resolve(p, options), latency_s=latency_s,
               compensate=compensate, beats=beats)
    expected = [int(round(b * FPS)) for b in truth_beats[2:changes + 2]]
    return look_onsets(out, expected), expected, logged_changes(out)


RENDERERS = ["numpy", pytest.param("shader", marks=needs_gl)]


@pytest.mark.parametrize("latency_ms", [0, 80, 200])
@pytest.mark.parametrize("kind", RENDERERS)
def test_each_new_look_is_first_seen_at_the_frame_nearest_its_downbeat(accented, tmp_path, kind, latency_ms):
    track, truth, _ = accented
    onsets, expected, logged = changes_export(track, truth.downbeats, tmp_path, kind, latency_ms / 1000)
    e = errors(onsets, expected)
    assert e["median_frames"] <= 1 and e["worst_frames"] <= 2, (onsets, expected)
    # the log says the same: each change's intended downbeat, and the frame the pixels show it at
    assert len(logged) == 8 and [c["appeared_frame"] for c in logged] == onsets
    assert all(abs(c["intended_frame"] - x) <= 1 for c, x in zip(logged, expected))


def test_without_latency_compensation_the_new_look_is_a_render_late(accented, tmp_path):
    track, truth, _ = accented
    onsets, expected, _ = changes_export(track, truth.downbeats, tmp_path, "numpy", 0.2, compensate=False)
    assert errors(onsets, expected)["median_frames"] >= 5  # 200 ms at 30 fps: six frames late


def test_quantize_off_shows_the_change_when_asked(accented, tmp_path):
    track, truth, _ = accented
    _, _, logged = changes_export(track, truth.downbeats, tmp_path, "numpy", 0.08, quantize="off", changes=3)
    asked = [int(round((b + 0.31) * FPS)) for b in truth.downbeats[1:4]]
    onsets = look_onsets(tmp_path, asked)
    assert errors(onsets, asked)["worst_frames"] <= 1 and [c["appeared_frame"] for c in logged] == onsets


@pytest.mark.slow
@pytest.mark.parametrize("latency_ms", [0, 200])
def test_tiny_sdxl_changes_land_on_the_beat(tiny_components, monkeypatch, tmp_path, latency_ms):
    import engine.models.profiles

    monkeypatch.setattr(engine.models.profiles, "build_sdxl", lambda *a, **k: tiny_components[2])
    r = clicks(120.0, 7.0, accent=2.0)
    track = tmp_path / "clicks.wav"
    sf.write(track, r.samples, SR)
    # every beat (0.5 s) for speed: a tiny SDXL frame costs ~0.3 s on a CPU
    onsets, expected, logged = changes_export(track, r.beats[3:], tmp_path / "out", "sdxl", latency_ms / 1000,
                                              quantize="beat", offset_s=0.13, steps=1)
    e = errors(onsets, expected)
    assert e["median_frames"] <= 1 and e["worst_frames"] <= 2, (onsets, expected)
    assert [c["appeared_frame"] for c in logged] == onsets
