"""Musical features on synthesized audio of known content (engine/audio/features.py)."""

from __future__ import annotations

import numpy as np
import pytest

from audio_synth import SR, click_track, noise_bursts, progression, run_tracker, soft_pad
from engine.audio.beatnet.choice import live_tracker
from engine.audio.features import FeatureTracker
from engine.types import Features


def test_click_track_120_bpm_tempo_and_beats() -> None:
    x, clicks = click_track(120.0, seconds=20.0)
    tr, feats, beats = run_tracker(x)
    assert abs(tr.tempo_bpm - 120.0) < 2.0
    late = beats[(beats > 5.0) & (beats < 19.9)]  # the grid's beat at 20.0 s falls on the track's end
    assert len(late) >= 25  # every click after lock-in gets a beat
    err = np.array([np.min(np.abs(b - clicks)) for b in late])
    assert err.max() < 0.030
    phases = np.array([f.beat_phase for f in feats[600:]])
    assert phases.min() >= 0.0 and phases.max() < 1.0 and np.ptp(phases) > 0.9


@pytest.mark.parametrize("bpm", [90.0, 150.0])
def test_other_tempi(bpm: float) -> None:
    x, _ = click_track(bpm, seconds=16.0)
    tr, _, _ = run_tracker(x)
    assert abs(tr.tempo_bpm - bpm) < 2.0


def test_features_match_types_and_ranges() -> None:
    x = progression(minor=False, bars=1)
    _, feats, _ = run_tracker(x)
    for f in feats[::50]:
        assert isinstance(f, Features)
        assert -1.0 <= f.valence <= 1.0 and -1.0 <= f.arousal <= 1.0
        assert 0.0 <= f.onset <= 1.0 and 0.0 <= f.beat_phase < 1.0 and f.rms >= 0.0


def test_loud_fast_noise_is_more_arousing_than_soft_pad() -> None:
    _, noisy, _ = run_tracker(noise_bursts(12.0))
    _, pad, _ = run_tracker(soft_pad(12.0))
    a_noise = np.mean([f.arousal for f in noisy[-400:]])
    a_pad = np.mean([f.arousal for f in pad[-400:]])
    assert a_noise > a_pad + 0.3


def test_major_progression_is_more_positive_than_minor_twin() -> None:
    _, major, _ = run_tracker(progression(minor=False))
    _, minor, _ = run_tracker(progression(minor=True))
    v_major = np.mean([f.valence for f in major[-800:]])
    v_minor = np.mean([f.valence for f in minor[-800:]])
    assert v_major > 0.0 > v_minor
    assert v_major > v_minor + 0.5


def test_agc_settles_near_one_on_steady_music() -> None:
    _, feats, _ = run_tracker(progression(minor=False))
    bands = np.array([[f.low, f.mid, f.high] for f in feats[-1000:]])
    assert np.all(np.abs(bands.mean(axis=0) - 1.0) < 0.2)


def test_agc_adapts_to_level_and_silence_reads_zero() -> None:
    quiet = progression(minor=False, bars=2) * 0.05
    _, feats, _ = run_tracker(quiet)
    assert abs(np.mean([f.mid for f in feats[-500:]]) - 1.0) < 0.2  # quiet track: still ~1
    tr = FeatureTracker()
    f = tr.process(np.zeros(480, dtype=np.float32), 0.01)
    assert f.low == f.mid == f.high == 0.0 and f.rms == 0.0


@pytest.mark.parametrize("kind", ["learned", "dsp"])
def test_tap_tempo_overrides_tracker(kind: str) -> None:
    """Taps override either live tracker (the learned one is the default): tempo and phase come from
    the taps and stay while the music goes on; releasing them hands the beat back to the tracker."""
    x, _ = click_track(120.0, seconds=20.0)
    beats, choice = live_tracker(kind)
    assert choice.used == kind
    tr = FeatureTracker(beats=beats)

    def play(t0: float, t1: float) -> Features:
        for k in range(int(t0 * SR) // 480, int(t1 * SR) // 480):
            f = tr.process(x[k * 480 : (k + 1) * 480], (k + 1) * 480 / SR)
        return f

    play(0.0, 8.0)
    assert abs(tr.tempo_bpm - 120.0) < 2.0  # the tracker had the clicks' tempo before the taps
    for t in (8.0, 8.6, 9.2, 9.9):  # taps 0.6, 0.6, 0.7 s apart: median 0.6 s = 100 BPM
        tr.tap(t)
    assert tr.tapped and tr.tempo_bpm == pytest.approx(100.0)
    f = play(9.9, 14.0)
    assert f.tempo_bpm == pytest.approx(100.0)  # the tracker does not take it back while the clicks go on
    assert f.grid.next_beat(14.0) == pytest.approx(9.9 + 7 * 0.6)  # the beats are the taps' grid
    tr.clear_taps()
    assert not tr.tapped
    play(14.0, 20.0)
    assert abs(tr.tempo_bpm - 120.0) < 2.0  # released: the tracker follows the music again


def test_any_block_size_and_bad_samples_are_handled() -> None:
    x, _ = click_track(120.0, seconds=12.0)
    x[1000:1100] = np.nan
    tr = FeatureTracker()
    pos, rng = 0, np.random.default_rng(1)
    while pos < len(x):
        n = int(rng.integers(1, 2000))  # PortAudio callbacks need not match the hop
        f = tr.process(x[pos : pos + n], (pos + len(x[pos : pos + n])) / SR)
        pos += n
        assert np.isfinite([f.rms, f.onset, f.low, f.valence, f.arousal]).all()
    assert f.t == pytest.approx(len(x) / SR)
    assert abs(tr.tempo_bpm - 120.0) < 2.0
    f = tr.process(np.zeros(0, dtype=np.float32), 12.5)  # empty block: no crash
    assert f.t == 12.5
