"""The learned beat tracker (engine/audio/beatnet): committed weights, streaming, decoding, fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.audio.beatmap import BeatAnalyzer
from engine.audio.beatnet.choice import live_tracker, offline_analyzer, weights_path
from engine.audio.beatnet.decode import decode
from engine.audio.beatnet.features import HOP, LogBands, features_of
from engine.audio.beatnet.live import LearnedBeatTracker
from engine.audio.beatnet.model import BeatNet, load_weights, n_params, to_net
from engine.audio.beatnet.net import NetConfig, OfflinePass, StreamingBeatNet, StretchedPass, WeightsError, load_net
from engine.audio.beatnet.offline import LearnedBeatAnalyzer
from engine.audio.beats import BeatTracker
from engine.audio.features import FeatureTracker
from engine.audio.onsets import hop_spectra
from engine.audio.rhythms import SR, drums


def _bumps(n: int, beats: np.ndarray, downbeats: np.ndarray, floor: float = 0.03) -> np.ndarray:
    """Activations like the network's: a 2-frame-wide bump at each beat (and downbeat)."""
    i = np.arange(n)[:, None]
    act = np.full((n, 2), floor)
    act[:, 0] = np.maximum(floor, 0.9 * np.exp(-0.5 * ((i - beats[None]) / 1.2) ** 2).max(axis=1))
    act[:, 1] = np.maximum(floor, 0.8 * np.exp(-0.5 * ((i - downbeats[None]) / 1.2) ** 2).max(axis=1))
    return act


def _meter_track(bpm: float, per_bar: int, seconds: float, sub: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Oom-pah with no drums: a low note on each bar's first beat, a chord on the others, and with
    `sub` = 3 quiet notes on the eighths between (6/8: 2 dotted-quarter beats of 3 eighths)."""
    n = int(seconds * SR)
    x = (1e-3 * np.random.default_rng(0).standard_normal(n)).astype(np.float32)
    t = np.arange(int(0.6 * SR)) / SR
    env = np.exp(-t / 0.25) * np.minimum(1.0, t / 0.005)
    period = 60.0 / bpm
    beats = np.arange(0.0, seconds - 0.5, period)
    notes = [(b, [65.4, 130.8] if k % per_bar == 0 else [261.6, 329.6, 392.0], 0.5 if k % per_bar == 0 else 0.25)
             for k, b in enumerate(beats)]
    notes += [(b + j * period / sub, [523.2, 659.3], 0.08) for b in beats for j in range(1, sub)]
    for at, freqs, gain in notes:
        i = int(at * SR)
        s = (sum(np.sin(2 * np.pi * f * t) for f in freqs) * env * gain)[: n - i]
        x[i : i + len(s)] += s.astype(np.float32)
    return x, beats


@pytest.mark.parametrize(("bpm", "per_bar", "sub"), [(100.0, 3, 1), (60.0, 2, 3), (80.0, 4, 1)])
def test_meter_decoded_on_synthesized_audio(bpm: float, per_bar: int, sub: int) -> None:
    """3/4 → 3 beats a bar, 6/8 → 2 dotted-quarter beats, 4/4 → 4, with the beats where they are."""
    x, beats = _meter_track(bpm, per_bar, 20.0, sub)
    a, _ = offline_analyzer("learned")
    a.feed(x)
    bm = a.finish()
    assert bm.beats_per_bar == per_bar
    assert abs(bm.tempo_bpm - bpm) < 2.0
    assert np.abs(bm.beats[:, None] - beats[None]).min(axis=1).max() < 0.05


def test_live_learned_tracker_follows_a_tempo_ramp() -> None:
    r = drums("four", 100.0, 40.0, bpm_end=130.0)
    bt, choice = live_tracker("learned")
    tr, beats = FeatureTracker(SR, 480, beats=bt), []
    for k in range(len(r.samples) // 480):
        if tr.process(r.samples[k * 480 : (k + 1) * 480], (k + 1) * 480 / SR).beat:
            beats.append(tr.last_beat_time)
    b = np.array(beats)
    late = b[b > 10.0]
    near = np.abs(late[:, None] - r.beats[None]).min(axis=1)
    assert np.mean(near < 0.07) >= 0.9 and len(late) >= 0.9 * np.sum(r.beats > 10.0)
    assert abs(bt.tempo_bpm - 60.0 / np.diff(r.beats[-2:])[0]) < 0.05 * 130.0


def test_live_learned_tracker_reads_a_70_bpm_four_on_the_floor_at_70_not_140() -> None:
    """The first tempo estimate (1.5 s of music) cannot see 70 BPM and says 140; once the music is long
    enough to weigh 70 against it, the network's beats (kicks, not the off-beat hats) win."""
    r = drums("four", 70.0, 30.0)
    bt, _ = live_tracker("learned")
    tr, beats = FeatureTracker(SR, 480, beats=bt), []
    for k in range(len(r.samples) // 480):
        if tr.process(r.samples[k * 480 : (k + 1) * 480], (k + 1) * 480 / SR).beat:
            beats.append(tr.last_beat_time)
    assert abs(bt.tempo_bpm - 70.0) < 2.0
    late = np.array([b for b in beats if b > 10.0])
    assert len(late) <= np.sum(r.beats > 10.0) + 1  # no beats between the kicks
    assert np.mean(np.abs(late[:, None] - r.beats[None]).min(axis=1) < 0.07) >= 0.9


@pytest.mark.parametrize("feed", [480, 1440, 4800])
def test_live_network_in_batches_of_hops_gives_the_beats_it_gives_hop_by_hop(feed: int) -> None:
    """The live tracker runs its network once per 5 hops (where it estimates tempo and phase), on
    the hops held since: every beat and downbeat, and the hop that flags it, are those the network
    run on every hop gives (to float rounding), whatever block size the audio comes in."""
    r = drums("four", 100.0, 25.0, bpm_end=120.0)
    net = load_net(weights_path("causal"))
    runs = []
    for held in (1, 10):
        bt = LearnedBeatTracker(net, max_held=held)
        tr, flags = FeatureTracker(SR, 480, beats=bt), []
        for k in range(len(r.samples) // feed):
            f = tr.process(r.samples[k * feed : (k + 1) * feed], (k + 1) * feed / SR)
            flags.append((f.beat, f.downbeat))
        runs.append((np.array(bt.beats), np.array(bt.downbeats), flags))
    (beats1, down1, flags1), (beats10, down10, flags10) = runs
    assert len(beats1) >= 30 and len(down1) >= 5
    assert flags10 == flags1
    assert len(beats10) == len(beats1) and np.abs(beats10 - beats1).max() < 1e-6
    assert len(down10) == len(down1) and np.abs(down10 - down1).max() < 1e-6


@pytest.mark.parametrize(("bpm", "per_bar"), [(100.0, 3), (80.0, 4)])
def test_live_learned_tracker_hears_the_meter(bpm: float, per_bar: int) -> None:
    """Live, the bar is counted in 3 for 3/4 and in 4 for 4/4, and the downbeats it flags once it
    has heard a few bars are the bars' first beats."""
    x, beats = _meter_track(bpm, per_bar, 30.0)
    bt, _ = live_tracker("learned")
    tr, downbeats = FeatureTracker(SR, 480, beats=bt), []
    for k in range(len(x) // 480):
        if tr.process(x[k * 480 : (k + 1) * 480], (k + 1) * 480 / SR).downbeat:
            downbeats.append(tr.last_beat_time)
    assert bt.beats_per_bar == per_bar
    late = np.array([d for d in downbeats if d > 15.0])
    true = beats[::per_bar]
    assert len(late) >= 0.8 * np.sum(true[true < 29.5] > 15.0)
    assert np.mean(np.abs(late[:, None] - true[None]).min(axis=1) < 0.07) >= 0.8


@pytest.mark.parametrize("variant", ["causal", "offline"])
def test_committed_weights_load_without_network(variant: str) -> None:
    net = load_weights(weights_path(variant))
    assert net.cfg.variant == variant
    assert n_params(net) <= 1_000_000
    assert weights_path(variant).stat().st_size < 5_000_000


@pytest.mark.parametrize("variant", ["causal", "offline"])
def test_the_numpy_network_a_show_runs_equals_the_trained_torch_module(variant: str) -> None:
    """Shows, analyze and export run the weights in numpy (no torch import); training is torch."""
    trained = load_weights(weights_path(variant))
    feats = np.random.default_rng(1).standard_normal((3000, 80)).astype(np.float32)
    np.testing.assert_allclose(load_net(weights_path(variant)).activations(feats), trained.activations(feats), atol=1e-4)
    np.testing.assert_allclose(to_net(trained).activations(feats), trained.activations(feats), atol=1e-4)


def test_the_offline_pass_in_pieces_equals_one_pass_over_the_whole_track() -> None:
    """Export and analyze run the offline network as the track decodes, holding one piece of features
    (bounded memory on a long mix), with exactly the activations of one pass."""
    net = load_net(weights_path("offline"))
    feats = np.random.default_rng(2).standard_normal((7000, 80)).astype(np.float32)
    pieces, i = OfflinePass(net, piece=500), 0
    for size in [1, 999, 37, 2500, 3463]:
        pieces.feed(feats[i : i + size])
        i += size
        assert len(pieces._buf) + sum(map(len, pieces._arrived)) <= 500 + 3 * net.halo  # never the whole track
    np.testing.assert_allclose(pieces.finish(), net.activations(feats), atol=1e-5)


@pytest.mark.parametrize("factor", [0.93, 1.07])
def test_a_tempo_view_in_pieces_equals_the_track_resampled_whole(factor: float) -> None:
    """The offline network also hears the track played 7 % slower and faster, as the features arrive:
    the same activations as resampling the whole track's features, one pass, and mapping back."""
    net = load_net(weights_path("offline"))
    feats = np.random.default_rng(3).standard_normal((4000, 80)).astype(np.float32)
    n = len(feats)
    k = np.arange(int(np.floor((n - 1) / factor)) + 1)
    i = np.minimum((k * factor).astype(np.int64), n - 2)
    w = (k * factor - i)[:, None].astype(np.float32)
    act = net.activations(feats[i] * (1 - w) + feats[i + 1] * w)
    whole = np.stack([np.interp(np.arange(n) / factor, k, act[:, c]) for c in range(2)], axis=1)
    view, at = StretchedPass(net, factor, piece=500), 0
    for size in [1, 1, 999, 37, 1500, 1462]:
        view.feed(feats[at : at + size])
        at += size
        assert len(view._rows) <= 2  # the features it keeps before the network: the next frame's two rows
    got = view.finish()
    assert got.shape == (n, 2)
    np.testing.assert_allclose(got, whole, atol=1e-5)
    assert np.abs(got - net.activations(feats)).max() > 0.05  # it is another hearing, not the same one


def test_a_weights_file_of_another_shape_is_refused_in_one_line(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    bad = tmp_path / "causal.safetensors"
    save_file({"inp.weight": np.zeros((32, 80, 1), np.float32)}, str(bad), metadata={"config": "{}"})
    with pytest.raises(WeightsError, match="unreadable") as e:
        load_net(bad)
    assert "\n" not in str(e.value)


def test_streaming_in_chunks_equals_one_pass() -> None:
    net = load_net(weights_path("causal"))
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(SR * 6)).astype(np.float32)
    feats = features_of(audio)
    # features: block by block (odd block sizes) == one pass
    bands, window, before, rows = LogBands(), np.hanning(1024).astype(np.float32), np.zeros(1024 - HOP, np.float32), []
    for a, b in [(0, 7), (7, 8), (8, 150), (150, len(feats))]:
        chunk = audio[a * HOP : b * HOP]
        rows.append(bands.process(hop_spectra(before, chunk, HOP, window).astype(np.float32)))
        before = np.concatenate([before, chunk])[-(1024 - HOP):]
    np.testing.assert_allclose(np.concatenate(rows), feats, atol=1e-5)
    # network: streaming chunks of 1, 3, 64, … frames == one pass over the whole
    whole = net.activations(feats)
    stream, out, i = StreamingBeatNet(net), [], 0
    for size in [1, 3, 64, 1, 200, 5000]:
        out.append(stream.process(feats[i : i + size]))
        i += size
    np.testing.assert_allclose(np.concatenate(out), whole, atol=1e-4)


def test_deterministic() -> None:
    audio = drums("four", 120.0, 12.0).samples
    maps = []
    for _ in range(2):
        a, _ = offline_analyzer("learned")
        a.feed(audio)
        maps.append(a.finish())
    np.testing.assert_array_equal(maps[0].beats, maps[1].beats)
    torch.manual_seed(3)
    w1 = BeatNet(NetConfig()).state_dict()
    torch.manual_seed(3)
    w2 = BeatNet(NetConfig()).state_dict()
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


@pytest.mark.parametrize(("period", "per_bar", "expect"), [(50, 3, 3), (43, 4, 4), (80, 2, 2)])
def test_decoder_picks_the_meter(period: int, per_bar: int, expect: int) -> None:
    """3/4 → 3 beats a bar, 4/4 → 4, 6/8 → 2 dotted-quarter beats a bar (the labels' convention)."""
    beats = np.arange(20, 3000, period)
    d = decode(_bumps(3000, beats, beats[::per_bar]))
    assert d.beats_per_bar == expect
    assert np.abs(d.frames[:, None] - beats[None]).min(axis=1).max() <= 1
    assert set(d.frames[d.positions == 0]) <= set(beats[::per_bar])


@pytest.mark.parametrize("per_bar", [3, 4])
@pytest.mark.parametrize("period", [37.5, 44.4])
def test_a_fast_steady_tempo_between_whole_frames_is_read_at_its_tempo(period: float, per_bar: int) -> None:
    """160 and 135 BPM, every beat clear, their beats 37/38 and 44/45 frames apart: read at that
    tempo with every beat, not at half (as with a coarser period grid, where such a tempo fell
    between two periods 5 % apart)."""
    beats = np.round(np.arange(50, 3000, period)).astype(int)
    d = decode(_bumps(3000, beats, beats[::per_bar]))
    assert d.beats_per_bar == per_bar
    inside = (d.frames >= beats[0] - 2) & (d.frames <= beats[-1] + 2)  # (analyze drops those past the ends)
    frames, positions = d.frames[inside], d.positions[inside]
    assert len(frames) == len(beats)
    assert np.abs(frames - beats).max() <= 1
    assert set(frames[positions == 0]) <= set(beats[::per_bar])


@pytest.mark.parametrize("faint", [0.1, 0.2, 0.3])
@pytest.mark.parametrize("period", [37.5, 44.4])
def test_a_fast_waltz_with_faint_inner_beats_is_read_at_its_tempo(period: float, faint: float) -> None:
    """160 or 135 BPM in 3/4 without drums: the network is sure of the bars and hears beats 2 and 3
    only faintly. The decoder reads three beats a bar at that tempo, not two dotted-quarter beats or
    every other beat: every beat adds `BEAT_BONUS` to its path (at 0, most of these fail)."""
    beats = np.round(np.arange(50, 2500, period)).astype(int)
    act = _bumps(2500, beats, beats[::3])
    for b in np.setdiff1d(beats, beats[::3]):
        act[b - 1 : b + 2, 0] = np.maximum(act[b - 1 : b + 2, 0] * faint / 0.9, 0.03)
    d = decode(act)
    assert d.beats_per_bar == 3
    inside = (d.frames >= beats[0] - 2) & (d.frames <= beats[-1] + 2)
    frames, positions = d.frames[inside], d.positions[inside]
    assert len(frames) == len(beats)
    assert np.abs(frames - beats).max() <= 2
    assert np.abs(frames[positions == 0][:, None] - beats[::3][None]).min(axis=1).max() <= 1


def test_decoder_follows_a_tempo_ramp() -> None:
    gaps = np.linspace(60, 40, 60)  # 100 → 150 BPM
    beats = np.round(20 + np.concatenate([[0], np.cumsum(gaps)])).astype(int)
    d = decode(_bumps(int(beats[-1]) + 30, beats, beats[::4]))
    assert len(d.frames) == len(beats)
    assert np.abs(d.frames - beats).max() <= 1


def test_a_long_track_decoded_in_pieces_keeps_every_beat_once() -> None:
    beats = np.arange(20, 5000, 50)
    d = decode(_bumps(5000, beats, beats[::3]), window=1500)
    np.testing.assert_array_equal(d.frames, beats)
    assert d.beats_per_bar == 3


def test_silence_gives_no_beats() -> None:
    silence = np.zeros(SR * 10, dtype=np.float32)
    a, choice = offline_analyzer("learned")
    assert choice.used == "learned"
    a.feed(silence)
    assert len(a.finish().beats) == 0
    tr, _ = live_tracker("learned")
    beat = False
    for k in range(len(silence) // 480):
        beat |= tr.update(silence[k * 480 : (k + 1) * 480], (k + 1) * 0.01)
    assert not beat and not tr.grid.locked


@pytest.mark.parametrize("content", [None, b"not a safetensors file at all"])
def test_missing_or_corrupt_weights_fall_back_to_dsp(tmp_path: Path, content: bytes | None) -> None:
    if content is not None:
        for v in ("causal", "offline"):
            (tmp_path / f"{v}.safetensors").write_bytes(content)
    tracker, choice = live_tracker("learned", tmp_path)
    assert type(tracker) is BeatTracker and choice.used == "dsp"
    assert "\n" not in choice.note and str(tmp_path) in choice.note and "DSP" in choice.note
    analyzer, choice = offline_analyzer("learned", tmp_path)
    assert isinstance(analyzer, BeatAnalyzer) and choice.used == "dsp" and "\n" not in choice.note


def test_learned_is_the_default_and_dsp_can_be_chosen() -> None:
    tracker, choice = live_tracker()
    assert isinstance(tracker, LearnedBeatTracker) and choice.used == "learned" and choice.note == ""
    analyzer, choice = offline_analyzer("dsp")
    assert isinstance(analyzer, BeatAnalyzer) and choice.used == "dsp" and choice.note == ""
    assert isinstance(offline_analyzer()[0], LearnedBeatAnalyzer)


def test_offline_reads_a_70_bpm_four_on_the_floor_at_70_not_140() -> None:
    """Off-beat hats make every half beat an onset; the kick and snare say the beat is at 70 BPM."""
    r = drums("four", 70.0, 30.0)
    a, _ = offline_analyzer("learned")
    a.feed(r.samples)
    bm = a.finish()
    assert abs(bm.tempo_bpm - 70.0) < 3.0
    late = r.beats[r.beats > 5.0]
    assert np.abs(bm.beats[:, None] - late[None]).min(axis=0).max() < 0.07  # every true beat found
