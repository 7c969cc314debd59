"""Preset transitions on a synthetic beat sequence, and playlists."""

from __future__ import annotations

import pytest

from engine.types import Features
from live.presets.library import BUILTIN_DIR
from live.presets.playlist import list_playlists, load_playlist, parse_playlist, resolve_playlist, transitioner_for
from live.presets.schema import Preset, PresetError, TransitionSettings
from live.presets.transitions import Transitioner

DT = 0.01  # 100 steps per second, like a display loop


@pytest.fixture(autouse=True)
def _user_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("BEATCANVAS_PRESETS", str(tmp_path / "user"))


def preset(name: str, **transitions) -> Preset:
    return Preset(name=name, transitions=TransitionSettings(**transitions))


def beats(seconds: float, bpm: float = 120.0, strong: dict[float, float] | None = None, low: float = 1.0):
    """(t, Features) at 100 Hz; a beat every 60/bpm s with bass `low`, or `strong[t]` at those beats."""
    strong = strong or {}
    period = 60.0 / bpm
    n = round(seconds / DT)
    step_per_beat = round(period / DT)
    for i in range(n + 1):
        t = round(i * DT, 6)
        on_beat = i % step_per_beat == 0 and i > 0
        bass = strong.get(t, low) if on_beat else 1.0
        yield t, Features(t=t, beat=on_beat, low=bass, beat_phase=(i % step_per_beat) / step_per_beat)


def run(tr: Transitioner, seq) -> list[tuple[float, str, float, str | None, str | None]]:
    out = []
    for t, f in seq:
        s = tr.step(t, f)
        out.append((t, s.preset.name, s.blend, s.previous.name if s.previous else None, s.event))
    return out


def switches(trace):
    return [(t, name, event) for t, name, _, _, event in trace if event]


def test_auto_advance_soft_cut_timing() -> None:
    tr = Transitioner([preset("a", duration_s=10, soft_cut_s=2), preset("b", duration_s=0)])
    trace = run(tr, beats(30))
    assert switches(trace) == [(10.0, "b", "auto")]
    at = {t: (name, blend, prev) for t, name, blend, prev, _ in trace}
    assert at[9.99] == ("a", 1.0, None)
    assert at[10.0] == ("b", 0.0, "a")
    assert at[11.0][0] == "b" and at[11.0][1] == pytest.approx(0.5) and at[11.0][2] == "a"
    assert at[12.0] == ("b", 1.0, None)
    assert at[30.0] == ("b", 1.0, None)  # duration 0: b never advances


def test_beat_gated_hard_cut_waits_for_min_time_and_a_strong_beat() -> None:
    a = preset("a", duration_s=0, hard_cut=True, hard_cut_min_s=4, hard_cut_sensitivity=1.0)
    tr = Transitioner([a, preset("b", duration_s=0)])
    # Strong beats at 2.0 s (too early) and 6.0 s; ordinary beats (bass 1.0) never cut at sensitivity 1.
    trace = run(tr, beats(10, strong={2.0: 2.0, 6.0: 2.0}))
    assert switches(trace) == [(6.0, "b", "hard_cut")]
    at = {t: (name, blend, prev) for t, name, blend, prev, _ in trace}
    assert at[6.0] == ("b", 1.0, None)  # a hard cut has no blend


@pytest.mark.parametrize("sensitivity, bass, cuts", [(0.0, 5.0, False), (1.0, 1.2, False), (2.0, 0.8, True)])
def test_hard_cut_sensitivity(sensitivity: float, bass: float, cuts: bool) -> None:
    a = preset("a", duration_s=0, hard_cut=True, hard_cut_min_s=1, hard_cut_sensitivity=sensitivity)
    tr = Transitioner([a, preset("b")])
    trace = run(tr, beats(3, low=bass))
    assert bool(switches(trace)) is cuts
    if cuts:
        assert switches(trace)[0][0] == 1.0  # the first beat at or after hard_cut_min_s


def test_hard_cut_rearms_from_the_last_switch() -> None:
    a = preset("a", duration_s=0, hard_cut=True, hard_cut_min_s=3)
    b = preset("b", duration_s=0, hard_cut=True, hard_cut_min_s=3)
    trace = run(Transitioner([a, b]), beats(10, low=2.0))  # every beat strong, 0.5 s apart
    assert [t for t, *_ in switches(trace)] == [3.0, 6.0, 9.0]
    assert [name for _, name, _ in switches(trace)] == ["b", "a", "b"]


def test_lock_holds_the_preset_until_unlocked() -> None:
    a = preset("a", duration_s=5, lock=True, hard_cut=True, hard_cut_min_s=0)
    tr = Transitioner([a, preset("b")])
    assert tr.state.locked
    assert switches(run(tr, beats(20, low=3.0))) == []
    tr.set_lock(False)
    assert tr.step(20.01).event == "auto"  # long past its duration: advances at once
    assert tr.toggle_lock() is True and tr.state.preset.name == "b"


def test_manual_switch_immediate_or_smooth() -> None:
    smooth = preset("a", duration_s=0, switch="smooth", soft_cut_s=4)
    tr = Transitioner([smooth, preset("b", duration_s=0, switch="immediate"), preset("c", duration_s=0)])
    s = tr.next(1.0)
    assert (s.preset.name, s.blend, s.previous.name, s.event) == ("b", 0.0, "a", "manual")
    assert tr.step(3.0).blend == pytest.approx(0.5)
    s = tr.next(3.0)  # b switches immediately; the half-faded a is dropped
    assert (s.preset.name, s.blend, s.previous) == ("c", 1.0, None)
    s = tr.previous(4.0, immediate=True)
    assert (s.preset.name, s.blend) == ("b", 1.0)


def test_no_loop_stays_on_the_last_and_single_preset_never_switches() -> None:
    tr = Transitioner([preset("a", duration_s=1, soft_cut_s=0), preset("b", duration_s=1)], loop=False)
    assert switches(run(tr, beats(10))) == [(1.0, "b", "auto")]
    assert switches(run(Transitioner([preset("solo", duration_s=1)]), beats(5))) == []


def test_time_going_backwards_changes_nothing_and_runs_are_deterministic() -> None:
    def make():
        return Transitioner([preset("a", duration_s=3, hard_cut=True, hard_cut_min_s=1),
                             preset("b", duration_s=2), preset("c", duration_s=4)])

    seq = list(beats(20, strong={1.5: 2.0, 7.0: 2.0}))
    assert run(make(), seq) == run(make(), seq)
    tr = make()
    tr.step(5.0)
    before = tr.state
    assert tr.step(1.0).preset == before.preset and tr.step(1.0).t == 5.0


def test_playlist_durations_override_presets() -> None:
    tr = Transitioner([preset("a", duration_s=100, soft_cut_s=0), preset("b", duration_s=100)], durations=[2, None])
    assert switches(run(tr, beats(5))) == [(2.0, "b", "auto")]


# --- playlists -----------------------------------------------------------------------------------


def test_example_playlist_resolves_and_drives_a_transitioner() -> None:
    assert "evening-set" in list_playlists()
    tr = transitioner_for("evening-set")
    assert len(tr.presets) >= 3 and tr.presets[0].name == "watercolor-dream"
    assert tr.duration(0) == 120


def test_playlist_shuffle_is_reproducible() -> None:
    text = 'shuffle = true\nseed = 7\n' + "".join(f'[[entry]]\npreset = "p{i}"\n' for i in range(8))
    written = [f"p{i}" for i in range(8)]
    a = [e.preset for e in parse_playlist(text).order()]
    assert a == [e.preset for e in parse_playlist(text).order()]
    assert a != written and sorted(a) == written
    assert [e.preset for e in parse_playlist(text.replace("shuffle = true", "shuffle = false")).order()] == written


def test_playlist_errors_point_at_the_entry_line(tmp_path) -> None:
    with pytest.raises(PresetError, match=r"line 4: unknown key 'duraton_s'.*did you mean 'duration_s'"):
        parse_playlist('[[entry]]\npreset = "cosmic"\n[[entry]]\nduraton_s = 3\npreset = "bauhaus"\n')
    path = tmp_path / "show.toml"
    path.write_text('[[entry]]\npreset = "cosmic"\n\n[[entry]]\npreset = "cosmik"\n')
    playlist, text = load_playlist(path)
    with pytest.raises(PresetError, match=r"line 5: entry 2: no preset named 'cosmik'; did you mean 'cosmic'"):
        resolve_playlist(playlist, text, str(path))


def test_builtin_playlists_only_name_shipped_presets() -> None:
    shipped = sorted((BUILTIN_DIR / "playlists").glob("*.toml"))
    assert shipped, f"no built-in playlists under {BUILTIN_DIR / 'playlists'}"
    for path in shipped:
        playlist, text = load_playlist(path)
        show = resolve_playlist(playlist, text, str(path))  # raises, naming the line, on an unknown preset
        assert len(show.presets) == len(playlist.order()) > 0, path.name
        outside = [p for p in show.paths if p is None or not p.resolve().is_relative_to(BUILTIN_DIR.resolve())]
        assert not outside, f"{path.name} plays presets that are not shipped: {outside}"


def test_hard_cut_hears_the_kick_after_a_predicted_beat_and_inside_a_long_block() -> None:
    """A predicting beat tracker flags the beat on the block that ends where the kick starts (its bass
    still the last kick's tail), and a long block's newest hop may be after the kick has decayed: the
    hard cut judges the beat by the loudest bass of its block, or of the block right after it."""

    def cut_times(blocks: list[tuple[float, bool, float, float]]) -> list[float]:
        tr = Transitioner([preset("a", duration_s=0, hard_cut=True, hard_cut_min_s=1.0), preset("b", duration_s=0)])
        return [t for t, beat, low, peak in blocks if tr.step(t, Features(t=t, beat=beat, low=low, low_peak=peak)).event]

    weak, kick = 0.4, 4.0  # at sensitivity 1 a hard cut needs bass 1.5
    # 10 ms blocks: the beat on the block before the kick, the kick in the next one: a cut on the kick
    assert cut_times([(2.0, True, weak, weak), (2.01, False, kick, kick)]) == [2.01]
    # a block that begins 0.2 s after the beat is not that beat's hit: no cut on its bass
    assert cut_times([(2.0, True, weak, weak), (2.2, False, weak, weak), (2.3, False, kick, kick)]) == []
    # one 100 ms block holds beat and kick, its newest hop already decayed: cut
    assert cut_times([(2.1, True, weak, kick)]) == [2.1]
    # 200 ms blocks: the beat ends one block, its kick fills the next
    assert cut_times([(2.0, True, weak, weak), (2.2, False, weak, kick)]) == [2.2]


@pytest.mark.parametrize("since", [0.02, 0.06, 0.1, 5.23])
def test_auto_advance_fires_on_the_block_where_the_duration_is_up_despite_float_rounding(since):
    # 4.02 - 0.02 == 3.9999999999999996: the switch must still come at 4.02, not a block later
    tr = Transitioner([preset("a", duration_s=4.0), preset("b")], t0=0.0)
    tr.switch_to(0, since)
    assert tr.step(since + 4.0 - DT).event != "auto"
    assert tr.step(round(since + 4.0, 2)).preset.name == "b"
