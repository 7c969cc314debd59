"""Schedules: the file's errors a user would make, and where every knob is at any time."""

from __future__ import annotations

import time

import pytest

from engine.directing.grid import BarGrid
from engine.directing.timecode import format_time, parse_time
from live.presets.library import load_preset
from live.presets.schema import Preset
from live.schedule.runtime import ShowDirection, direction_for_track
from live.schedule.schema import ScheduleError, parse_schedule, read_schedule
from live.schedule.timeline import Timeline

BASE = Preset(name="base")


def schedule(text: str):
    return parse_schedule(text, source="show.toml", load_preset=load_preset)


def timeline(text: str, grid=None, sections=(), base=BASE):
    return Timeline(schedule(text), base, grid, sections)


def error(text: str, **kw) -> str:
    with pytest.raises(ScheduleError) as e:
        timeline(text, **kw)
    return str(e.value)


def test_times_are_read_as_people_write_them():
    assert parse_time("1:32.5") == 92.5 and parse_time(92.5) == 92.5 and parse_time("1:02:03") == 3723
    assert format_time(92.5) == "1:32.50"


# -- errors ---------------------------------------------------------------------------------------


def test_bad_time_names_the_line_and_how_to_write_it():
    msg = error('[[key]]\nat = "0:00"\nstyle = "a"\n\n[[key]]\nat = "1:7x"\nstyle = "b"\n')
    assert msg.startswith("show.toml, line 6:") and "'1:7x'" in msg and '"1:32.5"' in msg
    assert "60 or more" in error('[[key]]\nat = "1:75"\nstyle = "a"\n')


def test_unknown_key_suggests_the_right_one():
    assert "did you mean 'style'?" in error('[[key]]\nat = 1\nstyel = "a"\n')
    msg = error('[[key]]\nat = 1\nreactivity.beat_zom = 1.5\n')
    assert "line 3" in msg and "did you mean 'beat_zoom'?" in msg
    # a knob written without its group: the suggestion says where it lives
    assert "did you mean 'reactivity.beat_zoom'?" in error("[[key]]\nat = 1\nbeat_zoom = 1.5\n")
    assert "did you mean 'interpolate'?" in error('interpolat = "ease"\n[[key]]\nat = 1\nstyle = "a"\n')


def test_values_are_checked_against_the_preset_schema():
    msg = error("[[key]]\nat = 1\nreactivity.beat_zoom = 7.0\n")
    assert "line 3" in msg and "allowed 0.0..2.0" in msg
    assert "did you mean 'ease'?" in error('[[key]]\nat = 1\ninterpolate = "eaze"\nstyle = "a"\n')
    assert "cannot change during a show" in error("[[key]]\nat = 1\nmodel.steps = 2\n")
    assert "did you mean 'neon-noir'?" in error('[[key]]\nat = 1\npreset = "neon-nior"\n')


def test_a_key_needs_exactly_one_place_in_time():
    assert "exactly one of" in error('[[key]]\nstyle = "a"\n')
    assert "at and bar" in error('[[key]]\nat = 1\nbar = 2\nstyle = "a"\n')
    assert "no keyframes" in error('description = "empty"\n')


def test_overlapping_keyframes_are_refused_with_both_lines():
    same = '[[key]]\nat = "0:10"\nstyle = "a"\n\n[[key]]\nat = 10.0\nstyle = "b"\n'
    msg = error(same)
    assert "line 5" in msg and "line 1 also sets conditioning.style at 0:10.00" in msg
    # the same time is fine for different knobs
    timeline(same.replace('style = "b"', "reactivity.warp = 1.0"))
    fade = ('[[key]]\nat = 10\nstyle = "a"\n\n[[key]]\nat = 12\nstyle = "b"\n'
            'interpolate = "ease"\nfade = 4\n')
    msg = error(fade)
    assert "line 5" in msg and "fade starts at 0:08.00" in msg and "line 1" in msg


def test_bar_and_section_keys_need_what_they_stand_on():
    assert "none were found" in error('[[key]]\nbar = 3\nstyle = "a"\n', grid=BarGrid())
    assert "analyze TRACK --sections" in error('[[key]]\nsection = 2\nstyle = "a"\n')
    assert "there are 2 sections" in error('sections = [0, 30]\n[[key]]\nsection = 3\nstyle = "a"\n')


def test_read_schedule_reports_a_missing_file(tmp_path):
    with pytest.raises(ScheduleError, match="no such schedule file"):
        read_schedule(tmp_path / "nope.toml")


# -- values over time -----------------------------------------------------------------------------

RAMP = """
[[key]]
at = "0:10"
reactivity.beat_zoom = 0.0
style = "forest at dawn"

[[key]]
at = "0:20"
interpolate = "{mode}"
reactivity.beat_zoom = 2.0
style = "city on fire"
"""


def zoom(tl, t):
    return tl.at(t).preset.reactivity.beat_zoom


def test_linear_interpolation_at_and_between_keyframes():
    tl = timeline(RAMP.format(mode="linear"))
    assert zoom(tl, 0.0) == BASE.reactivity.beat_zoom  # before the first key: the preset's own
    assert zoom(tl, 10.0) == 0.0 and zoom(tl, 20.0) == 2.0 and zoom(tl, 99.0) == 2.0
    assert zoom(tl, 15.0) == pytest.approx(1.0) and zoom(tl, 12.5) == pytest.approx(0.5)
    # the style blends as prompts: both texts with weights, settled at the keys
    assert tl.at(15.0).style == (("forest at dawn", 0.5), ("city on fire", 0.5))
    assert tl.at(10.0).style == (("forest at dawn", 1.0),) and tl.at(20.0).style == (("city on fire", 1.0),)
    # words switch when the ramp arrives
    assert tl.at(19.9).preset.conditioning.style == "forest at dawn"
    assert tl.at(20.0).preset.conditioning.style == "city on fire"


def test_ease_is_gentle_at_both_ends_and_hold_switches_at_the_key():
    ease = timeline(RAMP.format(mode="ease"))
    assert zoom(ease, 15.0) == pytest.approx(1.0)
    assert zoom(ease, 11.0) == pytest.approx(2.0 * (0.1**2 * (3 - 0.2)))  # smoothstep(0.1)
    hold = timeline(RAMP.format(mode="hold"))
    assert zoom(hold, 19.99) == 0.0 and zoom(hold, 20.0) == 2.0
    assert hold.at(19.99).style == (("forest at dawn", 1.0),)


def test_fade_ramps_only_over_its_span():
    tl = timeline(RAMP.format(mode="linear").replace('interpolate = "linear"', 'interpolate = "linear"\nfade = "2 bars"'),
                  grid=BarGrid.from_times([0.5 * i for i in range(100)]))
    assert zoom(tl, 15.9) == 0.0  # 2 bars of 4 beats at 120 BPM = 4 s: the ramp starts at 16 s
    assert zoom(tl, 18.0) == pytest.approx(1.0)


def test_cut_lands_on_the_first_beat_after_its_time():
    beats = BarGrid.from_times([0.3 + 0.5 * i for i in range(80)])
    tl = timeline(RAMP.format(mode="cut"), grid=beats)
    assert tl.times == [10.0, pytest.approx(20.3)]  # 20.0 is between beats 19.8 and 20.3
    assert zoom(tl, 20.29) == 0.0 and zoom(tl, 20.3) == 2.0
    on_beat = timeline(RAMP.format(mode="cut").replace('"0:20"', "19.8"), grid=beats)
    assert on_beat.times[1] == pytest.approx(19.8)  # a key exactly on a beat cuts on that beat


def test_bar_keys_follow_the_downbeats_or_count_beats():
    beats = [1.0 + 0.5 * i for i in range(200)]
    text = '[[key]]\nbar = 3\nstyle = "a"\n\n[[key]]\nbar = 5\nbeat = 3\nstyle = "b"\n'
    assert timeline(text, grid=BarGrid.from_times(beats)).times == [5.0, 10.0]
    # downbeats from the tracker (bar 1 = the first downbeat), and a 3/4 bar past the last one found
    grid = BarGrid.from_times(beats, downbeats=[1.5, 3.5, 5.5])
    assert timeline(text, grid=grid).times == [5.5, 10.5]
    waltz = timeline('beats_per_bar = 3\n' + text, grid=BarGrid.from_times(beats))
    assert waltz.times == [4.0, 8.0]


def test_keys_of_other_knobs_do_not_interrupt_a_ramp():
    text = RAMP.format(mode="linear") + '\n[[key]]\nat = 15\nreactivity.warp = 2.0\n'
    tl = timeline(text)
    assert zoom(tl, 17.5) == pytest.approx(1.5) and tl.at(17.5).preset.reactivity.warp == 2.0


def test_preset_keys_bring_every_knob_and_written_knobs_win():
    tl = timeline('[[key]]\nat = 5\ninterpolate = "hold"\npreset = "neon-noir"\nreactivity.warp = 0.1\n')
    noir = load_preset("neon-noir")
    state = tl.at(6.0)
    assert state.preset.conditioning.style == noir.conditioning.style
    assert state.preset.reactivity.beat_zoom == noir.reactivity.beat_zoom and state.preset.reactivity.warp == 0.1
    assert state.preset.model == BASE.model  # the show keeps its model
    assert tl.at(4.9).preset.conditioning.style == BASE.conditioning.style


def test_sections_from_the_file_place_section_keys():
    tl = timeline('sections = ["0:00", "0:31.5"]\n[[key]]\nsection = 2\ninterpolate = "hold"\nstyle = "drop"\n')
    assert tl.times == [31.5] and tl.at(31.5).style == (("drop", 1.0),)


def test_live_bars_wait_for_beats_then_follow_them():
    d = ShowDirection(BASE, schedule('[[key]]\nbar = 3\ninterpolate = "hold"\nreactivity.warp = 2.0\n'), live=True)
    assert d.at(100.0).preset.reactivity.warp == BASE.reactivity.warp  # no beat heard yet
    from engine.types import Features

    for i in range(4):
        d.observe(Features(t=10.0 + 0.5 * i, beat=True))
    # bar 3 = beat 8 after the first beat heard (10.0), extrapolated at the heard tempo
    assert d.at(13.99).preset.reactivity.warp == BASE.reactivity.warp
    assert d.at(14.0).preset.reactivity.warp == 2.0


def test_hot_reload_keeps_the_last_good_schedule(tmp_path):
    path = tmp_path / "show.toml"
    path.write_text('[[key]]\nat = 0\nreactivity.warp = 1.5\n')
    d = ShowDirection(BASE, read_schedule(path), schedule_path=path)
    errors: list[str] = []
    d.watch(errors.append)
    try:
        _wait(lambda: d._watchers and all(w.ready.is_set() for w in d._watchers))  # watching: edits are seen
        path.write_text('[[key]]\nat = "0:0x"\nreactivity.warp = 0.5\n')
        _wait(lambda: errors)
        assert "line 2" in errors[-1] and "keeping the last good schedule" in errors[-1]
        assert d.at(1.0).preset.reactivity.warp == 1.5
        path.write_text('[[key]]\nat = 0\nreactivity.warp = 0.5\n')
        _wait(lambda: d.at(1.0).preset.reactivity.warp == 0.5)
    finally:
        d.stop()


def _wait(cond, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "hot reload did not happen"
        time.sleep(0.02)


def test_the_readme_examples_parse():
    import re
    from pathlib import Path

    from engine.directing.lyrics import parse_lrc

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    toml = re.search(r"```toml\n(\[\[key\]\].*?)```", readme, re.S).group(1)
    beats = BarGrid.from_times([0.5 * i for i in range(400)])
    tl = timeline(toml, grid=beats)
    assert tl.times == [0.0, 64.0] and tl.at(62.0).style[1][0] == "the city on fire at night"
    lrc = re.search(r"```\n(\[00:.*?)```", readme, re.S).group(1)
    lyrics = parse_lrc(lrc)
    assert len(lyrics.lines) == 2 and not lyrics.problems


def test_a_tracks_bar_keys_land_on_the_beats_the_offline_tracker_finds(tmp_path):
    import soundfile as sf

    from audio_synth import SR, click_track

    audio, beat_times = click_track(bpm=120.0, seconds=12.0)
    track = tmp_path / "clicks.wav"
    sf.write(track, audio, SR)
    sched = tmp_path / "show.toml"
    sched.write_text('[[key]]\nbar = 3\ninterpolate = "hold"\nreactivity.warp = 2.0\n')
    direction = direction_for_track(track, BASE, schedule_path=sched)
    key_t = direction._timeline.times[0]
    # bar 3 starts 8 beats after bar 1: on a beat of the clicks, about 4 s after the first bar
    assert min(abs(key_t - b) for b in beat_times) < 0.03 and 3.5 < key_t - beat_times[0] < 8.5
    assert direction.at(key_t - 0.05).preset.reactivity.warp != 2.0 and direction.at(key_t + 0.01).preset.reactivity.warp == 2.0
