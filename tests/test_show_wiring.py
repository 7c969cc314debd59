"""What only looked wired, now wired: every preset section reaches the stage that owns it in a running
show, playlists switch on schedule (soft cuts blend, hard cuts land on beats), the negative prompt is
rendered against at guidance > 1, the measured tempo reaches the prompts, tapped tempo can be released,
and export takes --models-dir and --backend like play."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import json
import threading
import time

import numpy as np
import pygame
import pytest
import soundfile as sf
import torch

from engine.types import Features, Window
from live.presets.library import to_toml
from live.presets.playlist import ShowList
from live.presets.schema import Preset
from live.session.show import ShowOptions
from live_fakes import FakeBuilder, FakeRenderer, FakeSource, FakeUnderstanding, kick_track, stop_when, synth_track, wait_for
from test_live_session import assert_kept_showing, key, make_session

SDXL_TINY = ShowOptions(profile="tiny", renderer="sdxl", canvas=(320, 180))


def _write(path, preset: Preset) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(to_toml(preset), encoding="utf-8")
    os.replace(tmp, path)


def test_each_preset_section_edit_reaches_the_stage_that_owns_it(tmp_path):
    base = Preset(name="show", model={"renderer": "sdxl", "width": 256, "height": 256, "steps": 2})
    path = tmp_path / "show.toml"
    _write(path, base)
    understanding, builder = FakeUnderstanding(), FakeBuilder()
    session, display = make_session(tmp_path, FakeRenderer(delay=0.02), FakeSource(synth_track(10.0)), duration=120.0,
                                    preset=base, preset_path=path, understanding=understanding, builder=builder,
                                    options=SDXL_TINY, stop_when_finished=False)
    stage = session.render_loop.stage
    edits = [
        ("conditioning", {"conditioning": {"style": "ink wash", "smoothing_s": 5.0}}),
        ("motion", {"motion": {"feedback": 0.7, "seed": 11, "crossfade_ms": 900.0}}),
        ("reactivity", {"reactivity": {"beat_zoom": 2.0}}),
        ("transitions", {"transitions": {"soft_cut_s": 9.0}}),
        ("model", {"model": {"renderer": "sdxl", "width": 256, "height": 256, "steps": 4}}),
    ]

    def edit_all():  # one edit at a time, each after the last was applied; then stop the show
        try:
            data = base.model_dump()
            assert wait_for(lambda: len(display.shown) > 0)
            for i, (_, change) in enumerate(edits):
                for section, values in change.items():
                    data[section] = {**data[section], **values}
                _write(path, Preset.model_validate(data))
                assert wait_for(lambda: session.report.presets_applied > i), f"edit {i} was never applied"
            assert wait_for(lambda: session.render_loop.stage is not stage), "the renderer was never rebuilt"
        finally:
            session.request_stop()

    threading.Thread(target=edit_all, daemon=True).start()
    session.run()
    # [conditioning] → the understanding, applied in place
    assert understanding.settings.style == "ink wash" and understanding.settings.smoothing_s == 5.0
    # [motion] → the renderer (feedback, seed) and the compositor (crossfade)
    assert any(s.feedback == 0.7 and s.seed == 11 for s in stage.configured)
    assert session.compositor.crossfade_ms == 900.0
    # [reactivity] → the compositor
    assert session.compositor.reactivity.beat_zoom == 2.0
    # [transitions] → the transitions stage
    assert session.router.transitions.state.preset.transitions.soft_cut_s == 9.0
    # [model] → a rebuilt renderer (steps change the static shapes), built in the background
    assert [spec.render.steps for spec, _ in builder.asked] == [4]
    assert session.render_loop.stage is not stage and session.render_loop.stage.spec.steps == 4
    assert session.report.presets_applied == 5
    assert_kept_showing(display, session)


def test_playlist_switches_on_schedule_soft_cut_blends_and_hard_cut_lands_on_a_beat(tmp_path):
    a = Preset(name="a", transitions={"duration_s": 4.0, "soft_cut_s": 1.0}, reactivity={"beat_zoom": 0.0})
    b = Preset(name="b", transitions={"duration_s": 4.0, "hard_cut": True, "hard_cut_min_s": 1.5,
                                      "hard_cut_sensitivity": 2.0}, reactivity={"beat_zoom": 2.0})
    show = ShowList((a, b), (None, None), (None, None), name="two")
    source = FakeSource(kick_track(20.0), speed=3.0)  # the 3 switches come within 12 s of music (4 s); the rest is slack for a busy machine
    session, display = make_session(tmp_path, FakeRenderer(delay=0.01), source, duration=60.0, show=show)
    cuts: list[tuple[float, float]] = []
    begin = session.compositor.begin_cut
    session.compositor.begin_cut = lambda now, s: (cuts.append((now, s)), begin(now, s))
    seen: list[float] = []  # the audio time of every block the router stepped with
    step = session.feature_loop.on_features
    assert step is not None
    session.feature_loop.on_features = lambda f: (seen.append(f.t), step(f))[1]
    mark: list[int] = []  # display frames when the third switch was made: stop a few frames after it was shown

    def third_switch_shown() -> bool:
        if len(session.router.events) < 3:
            return False
        mark[:] = mark or [len(display.shown)]
        return len(display.shown) > mark[0] + 5

    stop_when(session, third_switch_shown)
    session.run()
    events = session.router.events
    assert [(name, why) for _, name, why, _ in events][:3] == [("b", "auto"), ("a", "hard_cut"), ("b", "auto")]
    (t1, _, _, _), (t2, _, _, on_beat), (t3, _, _, _) = events[:3]

    def first_block_at(t: float) -> float:  # on a busy machine the feature loop may skip ahead: exact anyway
        return min(x for x in seen if x >= t - 1e-9)

    assert t1 == first_block_at(4.0)  # a's 4 s are up: auto-advance on the first block after them
    assert on_beat and 1.5 - 1e-9 <= t2 - t1 < 4.0  # b cut back on a beat, after its minimum (which it may hit to the float)
    assert t3 == first_block_at(t2 + 4.0)
    assert [s for _, s in cuts] == [1.0, 1.0]  # both auto-advances soft-cut over a's 1 s; the hard cut did not
    assert "playlist two" in session.state.preset
    assert_kept_showing(display, session)


@pytest.fixture
def shared_tiny(monkeypatch, tiny_components):
    import engine.models.profiles

    clap, text, sdxl = tiny_components
    monkeypatch.setattr(engine.models.profiles, "build_sdxl", lambda *a, **k: sdxl)
    monkeypatch.setattr(engine.models.profiles, "build_clap", lambda *a, **k: clap)
    monkeypatch.setattr(engine.models.profiles, "build_text_encoders", lambda *a, **k: text)
    return tiny_components


def test_negative_prompt_is_rendered_against_at_guidance_above_one(shared_tiny, tmp_path):
    from live.session.factory import build_stages
    from live.session.show import resolve

    def stages_for(negative: str, guidance: float):
        preset = Preset(name="neg", model={"renderer": "sdxl", "guidance_scale": guidance},
                        conditioning={"negative": negative}, motion={"feedback": 0.0})
        return build_stages(resolve(preset, ShowOptions(profile="tiny", size=(64, 64), device="cpu")))

    with_negative = stages_for("blurry, washed out", 3.0)
    und = with_negative.understanding
    expected = und.negative_conditioning()
    got = with_negative.render.negative
    assert got is not None and torch.equal(got[0], expected[0]) and got[0].abs().sum() > 0
    cond = und.step(Window(np.zeros(480_000, np.float32), 10.0))
    image = with_negative.render.render(cond, Features(t=10.0), 10.0).image
    plain = stages_for("", 3.0)  # the same guidance against SDXL's zero negative
    assert not np.array_equal(image, plain.render.render(cond, Features(t=10.0), 10.0).image)
    assert stages_for("blurry", 0.0).render.negative is None  # no guidance: no negative branch


def test_measured_tempo_picks_the_prompts_tempo_words(shared_tiny, tmp_path):
    from engine.understanding.pipeline import build_understanding

    clap, text, _ = shared_tiny
    u = build_understanding("tiny", head="zeroshot", cache_dir=tmp_path, clap=clap, text=text)
    w = Window(0.1 * np.sin(np.arange(480_000, dtype=np.float32) / 7), 10.0)
    slow_words, fast_words = {"still", "slow drifting", "suspended"}, {"racing", "frenetic", "rapid motion blur"}

    def tempo_part(bpm: float) -> str:  # "<style> of <setting>, <genre>, <mood>, <tempo word>, ..."
        u.step(w, Features(tempo_bpm=bpm))
        parts = [p.strip() for p in u.info.heard.prompts[0][0].split(",")]
        found = [p for p in parts if p in slow_words | fast_words]
        assert len(found) == 1, parts
        return found[0]

    assert tempo_part(70.0) in slow_words  # 70 BPM: a slow word...
    assert tempo_part(175.0) in fast_words  # ...175 BPM: a fast one


def test_the_conditioning_loop_hands_the_tracker_features_to_the_understanding(tmp_path):
    understanding = FakeUnderstanding()
    session, display = make_session(tmp_path, FakeRenderer(delay=0.02), FakeSource(synth_track(10.0)),
                                    understanding=understanding, options=SDXL_TINY)

    def tracked() -> list:
        return [f for f in understanding.features_seen if f is not None]

    stop_when(session, lambda: len(tracked()) >= 3 and tracked()[-1].t > 0.5)
    session.run()
    seen = tracked()
    assert len(seen) >= 3 and seen[-1].t > 0.5  # the tracker's, with its tempo, not a 120 BPM default


def test_r_releases_the_tapped_tempo(tmp_path):
    taps = [(0.2 + i * 0.4, key(pygame.K_t, "t")) for i in range(4)]  # 150 BPM
    session, display = make_session(tmp_path, FakeRenderer(delay=0.02), FakeSource(synth_track(10.0)), script=taps)
    tracker = session.display_loop.tracker
    tapped_at: list[bool] = []

    def release() -> None:  # R once the tapped tempo has taken over; stop once it was released
        try:
            tapped_at.append(wait_for(lambda: tracker.tapped))
            display.script.append((0.0, key(pygame.K_r, "r")))
            wait_for(lambda: not tracker.tapped and "released" in session.state.message)
        finally:
            session.request_stop()

    threading.Thread(target=release, daemon=True).start()
    session.run()
    assert tapped_at == [True]
    assert session.display_loop.tracker.tapped is False
    assert "released" in session.state.message


def test_export_takes_models_dir_and_backend_like_play(shared_tiny, tmp_path, monkeypatch):
    from engine.render import select
    from live.cli import main

    track = tmp_path / "t.wav"
    sf.write(str(track), synth_track(1.0), 48_000)
    asked: list = []
    monkeypatch.setattr(select, "weights_present", lambda model="", models_dir=None: asked.append(models_dir) or False)
    out = tmp_path / "frames"
    code = main(["export", str(track), "--out", str(out), "--end", "0.2", "--fps", "10", "--size", "64x64",
                 "--renderer", "auto", "--models-dir", str(tmp_path / "models"), "--backend", "eager"])
    assert code == 0 and asked == [tmp_path / "models"]  # the registry looked where it was told
    code = main(["export", str(track), "--out", str(tmp_path / "sdxl"), "--end", "0.2", "--fps", "10",
                 "--size", "64x64", "--profile", "tiny", "--renderer", "sdxl", "--backend", "eager"])
    assert code == 0
    manifest = json.loads((tmp_path / "sdxl" / "manifest.json").read_text())
    assert manifest["settings"]["renderer"] == "sdxl-turbo/eager"
