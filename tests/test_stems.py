"""Stems, live (issue 27): the separator's envelopes, and the preset mapping that moves the picture."""

from __future__ import annotations

import dataclasses
import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import mir_eval
import numpy as np
import pytest

from audio_synth import SR, midi, run_tracker, tone
from engine.audio.features import FeatureTracker
from engine.audio.onsets import hop_spectra
from engine.audio.stem_mix import BAR_S, stem_mix
from engine.audio.stems import NO_STEMS, StemRouting, StemSeparator, analyze_stems, onset_times, separate
from engine.types import STEM_NAMES, Features, Stems
from live.control.knobs import KnobChange, apply_change
from live.presets.schema import Preset, PresetError, parse_preset
from live.screen.compositor import Reactivity, effects
from live.screen.hud import Hud, HudState
from live.session.show import compositor_spec

P, B, H, V = range(4)
WINDOW = np.hanning(1024).astype(np.float32)


@pytest.fixture(scope="module")
def mix():
    return stem_mix(4 * BAR_S, seed=0)  # bars: chords; + bass; + drums; + drums


def _mags(x: np.ndarray) -> np.ndarray:
    return hop_spectra(np.zeros(1024 - 480, np.float32), x, 480, WINDOW)


def _drums(mix) -> np.ndarray:
    return mix.parts["drums"][int(2 * BAR_S * SR) :]


def _chord(seconds: float = 4.0) -> np.ndarray:
    return tone([midi(57), midi(60), midi(64)], seconds, amp=0.5)


def _levels(x: np.ndarray) -> np.ndarray:
    _, feats, _ = run_tracker(x)
    return np.array([f.stems.level for f in feats])


# --------------------------------------------------------------------------- the separator


def test_silence_gives_zeros():
    _, feats, _ = run_tracker(np.zeros(SR, np.float32))
    assert all(f.stems.level == (0.0,) * 4 and not any(f.stems.hit) for f in feats)
    off = separate(_mags(np.zeros(SR, np.float32)))
    assert not off.level.any() and not off.hit.any() and not off.voice_hz.any()


def test_nonfinite_input_is_silence(mix):
    x = mix.mix[: 2 * SR].copy()
    x[SR // 2 : SR] = 0.0
    broken = x.copy()
    broken[SR // 2 : SR : 3], broken[SR // 2 + 1 : SR : 3] = np.nan, np.inf
    broken[SR // 2 + 2 : SR : 3] = -np.inf
    assert np.array_equal(_levels(broken), _levels(x))


def test_any_block_size_gives_the_same_envelopes(mix):
    mags = _mags(mix.mix)
    ref = StemSeparator().rows(mags)
    for size in (1, 7, 64):
        sep = StemSeparator()
        parts = [sep.rows(mags[i : i + size]) for i in range(0, len(mags), size)]
        level = np.concatenate([p.level for p in parts])
        hit = np.concatenate([p.hit for p in parts])
        np.testing.assert_allclose(level, ref.level, rtol=1e-5, atol=1e-6)
        assert np.array_equal(hit, ref.hit)
    # and through the feature tracker, fed 10 ms or 100 ms blocks: the same stems every 100 ms
    x = mix.mix[: 3 * SR]
    a, b = FeatureTracker(), FeatureTracker()
    for k in range(len(x) // 4800):
        for j in range(10):
            fa = a.process(x[k * 4800 + j * 480 : k * 4800 + (j + 1) * 480])
        fb = b.process(x[k * 4800 : (k + 1) * 4800])
        np.testing.assert_allclose(fa.stems.level, fb.stems.level, rtol=1e-4, atol=1e-5)


def test_drums_are_percussive_and_a_chord_is_harmonic(mix):
    drums = _levels(_drums(mix))
    chord = _levels(_chord())[100:]  # after the first second
    assert drums[:, P].mean() > 4 * drums[:, H].mean() and drums[:, P].max() > 0.8
    assert drums[:, V].max() < 0.2
    assert chord[:, H].mean() > 0.5 and chord[:, P].max() < 0.15 * chord[:, H].mean()


def test_the_lead_is_heard_as_voice(mix):
    m = stem_mix(10 * BAR_S, seed=0)  # bar 8 is chords + lead, bar 9 chords + bass + lead
    rows = separate(_mags(m.mix))
    fps = SR / 480
    with_lead = rows.level[int(8 * BAR_S * fps) : int(10 * BAR_S * fps), V]
    no_lead = rows.level[: int(4 * BAR_S * fps), V]  # chords, bass, drums: no lead
    assert with_lead.mean() > 1.5 * no_lead.mean()
    assert 250 <= np.median(rows.voice_hz[int(8 * BAR_S * fps) : int(10 * BAR_S * fps)][with_lead > 0.2]) <= 1000


def test_offline_percussive_onsets_find_the_drum_hits(mix):
    x = _drums(mix)
    hits = mix.hits[mix.hits >= 2 * BAR_S] - 2 * BAR_S
    sep = StemSeparator()
    est = onset_times(separate(_mags(x)), sep.fps) - 1024 / 2 / SR + 480 / SR
    f, _, _ = mir_eval.onset.f_measure(hits, est, window=0.05)
    assert f > 0.9


# --------------------------------------------------------------------------- the mapping


def _drives(levels: np.ndarray, routing: StemRouting, target: str) -> np.ndarray:
    return np.array([routing.drive(Stems(level=tuple(row)), target) for row in levels])


def test_drums_move_the_percussive_mapping_and_not_the_harmonic_one(mix):
    levels = _levels(_drums(mix))
    routing = StemRouting()
    assert _drives(levels, routing, "zoom").max() > 0.8 and _drives(levels, routing, "flash").max() > 0.4
    assert _drives(levels, routing, "colour").max() < 0.35 and _drives(levels, routing, "mood").max() < 0.2
    assert _drives(levels, routing, "zoom").mean() > 4 * _drives(levels, routing, "colour").mean()
    # in the compositor: the stems add zoom on the drums, and not without the routing
    r_on, r_off = Reactivity(band_hue=0.0), Reactivity(band_hue=0.0, stems=NO_STEMS)
    zoom_on = [effects(Features(stems=Stems(level=tuple(row))), r_on, True).zoom for row in levels]
    zoom_off = [effects(Features(stems=Stems(level=tuple(row))), r_off, True).zoom for row in levels]
    assert max(zoom_on) > 1.03 and max(zoom_off) == 1.0


def test_a_sustained_chord_moves_colour_and_not_zoom():
    _, feats, _ = run_tracker(_chord())
    on, off = Reactivity(band_hue=1.0), Reactivity(band_hue=1.0, stems=NO_STEMS)
    fx = [effects(f, on, True) for f in feats[100:]]
    bare = [effects(f, off, True) for f in feats[100:]]
    # the stems add no zoom to a held chord (what zoom there is comes from the beat tracker's grid)
    assert max(a.zoom - b.zoom for a, b in zip(fx, bare)) < 0.006
    tints, plain = np.array([e.tint for e in fx]), np.array([e.tint for e in bare])
    assert (1.0 - tints.min(axis=1)).mean() > 0.1  # tinted: the chord's colour
    assert (1.0 - plain.min(axis=1)).mean() < 0.5 * (1.0 - tints.min(axis=1)).mean()


def test_different_chords_give_different_colours():
    hues = []
    for notes in ((60, 64, 67), (66, 70, 73)):  # C major, F# major: across the circle
        _, feats, _ = run_tracker(tone([midi(n) for n in notes], 2.0, amp=0.5))
        hues.append(np.median([f.stems.harmonic_hue for f in feats[100:]]))
    gap = abs(hues[0] - hues[1])
    assert min(gap, 1 - gap) > 0.2


# --------------------------------------------------------------------------- the preset, knobs, HUD


def test_preset_stems_section_routes_and_validates():
    p = parse_preset('[stems]\nzoom = "bass"\nzoom_amount = 2.0\ncolour = "off"\n')
    spec = compositor_spec(p)
    assert spec.reactivity.stems.zoom == "bass" and spec.reactivity.stems.zoom_amount == 2.0
    assert spec.reactivity.stems.drive(Stems(level=(0.0, 1.0, 1.0, 0.0)), "colour") == 0.0
    with pytest.raises(PresetError, match="stems"):
        parse_preset('[stems]\nzoom = "drums"\n')
    with pytest.raises(PresetError, match="stems"):
        parse_preset('[stems]\nwarp_amount = 5\n')
    assert compositor_spec(Preset()).reactivity.stems == StemRouting()


def test_knobs_reach_the_stems_section():
    p = apply_change(Preset(), KnobChange("stems", "warp_amount", 1.5))
    p = apply_change(p, KnobChange("stems", "warp", 3))  # a radio button's index: voice
    assert p.stems.warp_amount == 1.5 and p.stems.warp == "voice"


def test_hud_shows_four_stem_meters():
    import pygame

    state = HudState(stems=(1.5, 0.5, float("nan"), 0.0))
    text = " ".join(t for t, _ in Hud().lines(state))
    assert all(name in text for name in STEM_NAMES)
    surface = pygame.Surface((320, 180))
    Hud().draw(surface, state)
    corner = pygame.surfarray.array3d(surface)[8:80, 120:]
    assert (corner[..., 0] > 200).any()  # the percussive meter is filled


# --------------------------------------------------------------------------- offline: analyze and export


@pytest.fixture(scope="module")
def mix_wav(mix, tmp_path_factory):
    import soundfile as sf

    p = tmp_path_factory.mktemp("stems") / "mix.wav"
    sf.write(p, mix.mix, SR)
    return p


def test_analyze_stems_writes_envelopes_and_onsets(mix, mix_wav, tmp_path):
    import json

    from live.cli import main
    from live.commands.analyze import write_stems

    out = tmp_path / "a.json"
    assert main(["analyze", str(mix_wav), "--stems", "--json", str(out)]) == 0
    csv = mix_wav.with_name("mix.stems.csv").read_text().splitlines()
    assert csv[0] == "t,percussive,bass,harmonic,voice,bass_hz,voice_hz" and len(csv) == 1 + 80  # 8 s every 0.1 s
    stems = json.loads(out.read_text())["stems"]
    frames = stems["frames"]
    perc = np.array([f["percussive"] for f in frames])
    assert perc[40:].mean() > 3 * perc[:20].mean()  # the drums enter at 4 s; 0-2 s is chords alone
    bass = np.array([f["bass"] for f in frames])
    assert bass[20:40].mean() > 1.5 * bass[:20].mean()  # the bass enters at 2 s (the chords leak a little below 180 Hz)
    f, _, _ = mir_eval.onset.f_measure(mix.hits, np.array(stems["onsets"]["percussive"]), window=0.05)
    assert f > 0.9
    write_stems(stems, tmp_path / "s.json")  # what --stems-out FILE.json writes
    assert json.loads((tmp_path / "s.json").read_text())["frames"] == frames


def test_the_file_analysis_equals_the_in_memory_one(mix, mix_wav):
    track = analyze_stems(mix_wav)
    rows = separate(_mags(mix.mix))
    np.testing.assert_allclose(track.rows.level, rows.level, rtol=1e-3, atol=1e-3)  # float32 FFTs batched otherwise
    at = track.at(5.0, since=4.9)
    assert at.level == tuple(track.rows.level[499].tolist()) and any(at.hit)  # a hit at 5.0 s


def test_export_uses_the_offline_stems(mix_wav, tmp_path):
    import json

    from engine.render.procedural import ProceduralRenderer
    from live.export.run import ExportSettings, run_export

    s = ExportSettings(track=mix_wav, out_dir=tmp_path / "o", fps=10.0, width=32, height=24, seed=1, render_every=5,
                       start=3.0, end=5.0)
    run_export(s, ProceduralRenderer(32, 24, 1))
    log = [json.loads(line) for line in (tmp_path / "o" / "frames.jsonl").read_text().splitlines()]
    track = analyze_stems(mix_wav)
    for rec in log:
        assert rec["features"]["stems"]["level"] == pytest.approx(list(track.at(rec["t"]).level))
    assert max(r["features"]["stems"]["level"][P] for r in log if r["t"] >= 4.0) > 0.5


def test_a_stems_edit_reaches_every_stage_that_reads_it():
    from live.session.show import ShowOptions, resolve

    opts = ShowOptions(profile="tiny", size=(64, 64), device="cpu", renderer="shader")
    kind = ("shader", "test")
    before = resolve(Preset(), opts, kind=kind)
    after = resolve(parse_preset('[stems]\nwarp = "voice"\nsubject_amount = 0.0\n'), opts, kind=kind)
    assert set(before.changed(after)) == {"render", "understanding", "compositor"}  # hot reload routes all three
    assert after.render.look.stems.warp == "voice" and after.compositor.reactivity.stems.warp == "voice"
    assert after.understanding.stems.subject_amount == 0.0


def test_the_voice_pulls_the_conditioning_towards_the_music(tiny_components, tmp_path):
    from engine.types import Window
    from engine.understanding.pipeline import build_understanding

    clap, text, _ = tiny_components
    u = build_understanding("tiny", head="transformer", style="oil painting", cache_dir=tmp_path, clap=clap,
                            text=text, audio_weight=0.3, smoothing_s=0.0, scene_threshold=2.0)
    window = Window((0.3 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)).astype(np.float32), t_end=1.0)
    emb = u.encoder.encode_audio(window)
    style = u.style_conditioning
    assert style is not None

    def distance_from_style(voice: float) -> float:
        u.step_embedding(emb, 1.0, Features(stems=Stems(level=(0.0, 0.0, 0.0, voice))))
        assert u.info.raw is not None
        return float((u.info.raw.prompt_embeds - style.prompt_embeds).norm())

    quiet, singing = distance_from_style(0.0), distance_from_style(2.0)
    assert singing > 1.2 * quiet  # audio weight 0.3 → ~0.63 while the voice sings
    u.configure(dataclasses.replace(u.settings, stems=NO_STEMS))
    assert distance_from_style(2.0) == pytest.approx(quiet)


def test_the_benchmark_script_writes_its_json(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "stems.json"
    subprocess.run([sys.executable, str(root / "scripts" / "bench_stems.py"), "--seconds", "4", "--seeds", "0",
                    "--out", str(out)], check=True, capture_output=True, timeout=240)
    d = json.loads(out.read_text())
    assert set(d["summary"]) == {"streaming", "streaming_settled", "offline"}
    assert set(d["summary"]["offline"]["correlation_median"]) == set(STEM_NAMES)
    assert d["cost"]["separator_us_per_hop_median"] > 0 and d["look_ahead_ms"] == 20.0
