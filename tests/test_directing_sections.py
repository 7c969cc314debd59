"""Sections: boundaries where the music changes, and `analyze --sections` writing a schedule skeleton."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from audio_synth import midi, noise_bursts, tone
from engine.directing.sections import find_sections, section_features
from live.cli import main
from live.presets.library import load_preset
from live.schedule.schema import read_schedule

SR = 48_000
BOUNDS = (17.3, 38.6)  # deliberately off the 0.5 s analysis grid


def quiet_loud_quiet() -> np.ndarray:
    """A soft chord, then loud noise bursts over a bass chord, then another soft chord."""
    a, b = BOUNDS
    return np.concatenate([
        tone([midi(60), midi(64), midi(67)], a, amp=0.03),
        noise_bursts(b - a, seed=1) + tone([midi(45), midi(57)], b - a, amp=0.5),
        tone([midi(62), midi(65), midi(69)], 60.0 - b, amp=0.03),
    ]).astype(np.float32)


def features(x: np.ndarray):
    return section_features((x[i : i + 4096] for i in range(0, len(x), 4096)), SR)


def test_quiet_loud_quiet_has_two_boundaries_within_a_second():
    sections = find_sections(features(quiet_loud_quiet()))
    assert len(sections) == 3
    for found, true in zip([s.start for s in sections[1:]], BOUNDS):
        assert abs(found - true) < 1.0
    quiet, loud, quiet2 = (s.loudness_db for s in sections)
    assert loud - max(quiet, quiet2) > 15
    assert sections[2].like == 1 and sections[1].like is None  # the soft part returns


def test_a_steady_track_is_one_section():
    rng = np.random.default_rng(0)
    assert len(find_sections(features((0.1 * rng.standard_normal(60 * SR)).astype(np.float32)))) == 1
    assert len(find_sections(features(tone([midi(60)], 60.0, amp=0.2)))) == 1


def test_clap_embeddings_find_a_change_the_features_cannot_hear():
    rng = np.random.default_rng(0)
    steady = features((0.1 * rng.standard_normal(60 * SR)).astype(np.float32))
    times = np.arange(0.0, 60.0, 1.0)
    emb = np.where((times < 30)[:, None], np.eye(8)[0], np.eye(8)[1]) + 0.05 * rng.standard_normal((60, 8))
    sections = find_sections(steady, (times, emb))
    assert len(sections) == 2 and abs(sections[1].start - 30.0) < 1.0


def test_analyze_sections_writes_a_skeleton_that_plays(tmp_path, capsys):
    track = tmp_path / "song.wav"
    sf.write(track, quiet_loud_quiet(), SR)
    assert main(["analyze", str(track), "--sections", "--json", str(tmp_path / "a.json")]) == 0
    skeleton = tmp_path / "song.schedule.toml"
    schedule = read_schedule(skeleton, load_preset)
    assert len(schedule.sections) == 3 and schedule.sections[0] == 0.0
    for found, true in zip(schedule.sections[1:], BOUNDS):
        assert abs(found - true) < 1.0
    assert [k.section for k in schedule.keys] == [1, 2, 3] and all(k.mode == "cut" for k in schedule.keys)
    assert "sounds like section 1" in skeleton.read_text()
    assert len(json.loads((tmp_path / "a.json").read_text())["sections"]) == 3
    assert "song.schedule.toml" in capsys.readouterr().out
    # never over the user's edits
    skeleton.write_text(skeleton.read_text().replace('# style = "describe', 'style = "mine'))
    assert main(["analyze", str(track), "--sections"]) == 1
    assert "already exists" in capsys.readouterr().err and 'style = "mine' in skeleton.read_text()
    assert main(["analyze", str(track), "--sections", "--schedule-out", str(tmp_path / "b.toml")]) == 0
