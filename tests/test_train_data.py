"""Training data: manifest validation (errors name the row), middle 3/5, augmentations, text pairs, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from engine.understanding.descriptors import GENRE_BY_NAME, GENRES
from engine.errors import BeatcanvasError
from engine.train.augment import AugmentConfig, augment, pitch_shift, time_stretch
from engine.train.data import middle_three_fifths, read_manifest, text_distill_pairs
from engine.types import SAMPLE_RATE
from tests.audio_synth import tone


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _song(path, seconds=3.0, f=220.0):
    sf.write(path, tone([f], seconds), SAMPLE_RATE)
    return path


def _manifest(tmp_path, rows, header="path,valence,energy,genre,prompt"):
    p = tmp_path / "songs.csv"
    p.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return p


# ------------------------------------------------------------------------------------------ manifest


def test_good_manifest_reads_and_writes_missing_prompts(tmp_path):
    (tmp_path / "audio").mkdir()
    _song(tmp_path / "audio" / "a.wav")
    _song(tmp_path / "audio" / "b.wav")
    m = _manifest(tmp_path, ["audio/a.wav,0.5,-0.2,Techno,", 'audio/b.wav,-0.9,0.8,jazz,"a smoky bar, neon"'])
    songs = read_manifest(m)
    assert [s.row for s in songs] == [2, 3]
    assert songs[0].path == tmp_path / "audio" / "a.wav" and songs[0].genre == "techno"
    assert any(w in songs[0].prompt for w in GENRE_BY_NAME["techno"].words)  # VAG-generated
    assert songs[1].prompt == "a smoky bar, neon"


@pytest.mark.parametrize(
    "row, needle",
    [
        ("missing.wav,0.1,0.2,techno,", "row 3: audio file not found"),
        ("b.wav,loud,0.2,techno,", "row 3: valence 'loud' is not a number"),
        ("b.wav,0.1,3,techno,", "row 3: energy '3' is outside [-1, 1]"),
        ("b.wav,0.1,0.2,technoo,", "row 3: unknown genre 'technoo' (did you mean 'techno'?)"),
        ("b.wav,0.1,0.2,techno,x,extra", "row 3: more cells than header columns"),
        (",0.1,0.2,techno,", "row 3: empty path"),
        ("a.wav,0.1,0.2,techno,", "row 3: a.wav is already listed in row 2"),
    ],
)
def test_bad_manifest_row_is_named(tmp_path, row, needle):
    _song(tmp_path / "a.wav")
    _song(tmp_path / "b.wav")
    m = _manifest(tmp_path, ["a.wav,0.5,0.5,house,", row])
    with pytest.raises(BeatcanvasError) as e:
        read_manifest(m)
    assert needle in str(e.value) and "songs.csv" in str(e.value)
    assert "\n" not in str(e.value)


def test_manifest_without_required_columns(tmp_path):
    m = _manifest(tmp_path, ["a.wav,0.5,house"], header="path,valence,genre")
    with pytest.raises(BeatcanvasError, match="lacks column.*energy"):
        read_manifest(m)


def test_cli_reports_the_bad_row_without_a_traceback(tmp_path, capsys):
    from live.cli import main

    _song(tmp_path / "a.wav")
    m = _manifest(tmp_path, ["a.wav,0.5,0.5,house,", "gone.wav,0,0,jazz,"])
    rc = main(["train", "--out", str(tmp_path / "h.safetensors"), "--data", str(m), "--profile", "tiny"])
    err = capsys.readouterr().err
    assert rc == 1 and "row 3" in err and "gone.wav" in err and "Traceback" not in err


# -------------------------------------------------------------------------------------- audio prep


def test_middle_three_fifths():
    x = np.arange(100, dtype=np.float32)
    mid = middle_three_fifths(x)
    assert mid[0] == 20 and mid[-1] == 79 and len(mid) == 60


def _peak_hz(x, lo=700.0, hi=1500.0):
    """Power-weighted mean frequency in [lo, hi]: where the tone went (grain sidebands average out)."""
    power = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    band = (f >= lo) & (f <= hi)
    return float((f[band] * power[band]).sum() / power[band].sum())


def test_pitch_shift_and_stretch_move_the_pitch_as_asked():
    x = np.sin(2 * np.pi * 1000 * np.arange(SAMPLE_RATE) / SAMPLE_RATE).astype(np.float32)
    up = pitch_shift(x, 2.0)
    assert len(up) == len(x) and _peak_hz(up) == pytest.approx(1000 * 2 ** (2 / 12), rel=0.01)
    fast = time_stretch(x, 1.1)
    assert len(fast) == pytest.approx(len(x) / 1.1, rel=0.01) and _peak_hz(fast) == pytest.approx(1100, rel=0.01)


def test_augment_is_seeded_and_always_ten_seconds():
    song = tone([220.0, 330.0], 14.0)
    a = augment(song, np.random.default_rng([0, 1, 2]))
    b = augment(song, np.random.default_rng([0, 1, 2]))
    c = augment(song, np.random.default_rng([0, 1, 3]))
    assert a.shape == (10 * SAMPLE_RATE,) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    short = augment(tone([220.0], 3.0), np.random.default_rng(0))  # shorter than a window: padded
    assert short.shape == (10 * SAMPLE_RATE,)
    quiet = augment(song, np.random.default_rng(5), AugmentConfig(gain_db=(-20.0, -20.0), p_noise=0, p_pitch=0, p_stretch=0))
    assert np.abs(quiet).max() == pytest.approx(np.abs(song).max() * 0.1, rel=0.05)


# -------------------------------------------------------------------------------- text distillation


def test_text_pairs_cover_the_genres_and_agree_with_their_prompts():
    pairs = text_distill_pairs(2000, seed=4)
    assert pairs == text_distill_pairs(2000, seed=4)
    assert len({p.genre for p in pairs}) >= 40 and len({p.genre for p in pairs}) == len(GENRES)
    for p in pairs[:200]:
        assert f"{p.genre} music" in p.description
        assert any(w in p.prompt for w in GENRE_BY_NAME[p.genre].words)
        assert -1 <= p.valence <= 1 and -1 <= p.arousal <= 1
    sad = [p for p in pairs if " sad " in p.description]
    assert sad and all(p.valence < 0 for p in sad)


def test_cli_trains_a_head_from_a_manifest(tmp_path, capsys):
    """End to end on audio: decode, middle 3/5, augment, tiny CLAP, train one epoch, loadable head."""
    from engine.understanding.heads.transformer import TransformerHead
    from live.cli import main

    rows = []
    for i, (g, v, e) in enumerate([("techno", 0.5, 0.8), ("ambient", 0.3, -0.8), ("jazz", -0.4, -0.2),
                                   ("heavy metal", -0.8, 0.9), ("pop", 0.9, 0.4), ("folk", 0.2, -0.5)]):
        _song(tmp_path / f"s{i}.wav", seconds=6.0, f=110.0 * (i + 2))
        rows.append(f"s{i}.wav,{v},{e},{g},")
    m = _manifest(tmp_path, rows)
    out = tmp_path / "head.safetensors"
    rc = main(["train", "--out", str(out), "--data", str(m), "--profile", "tiny", "--device", "cpu",
               "--epochs", "1", "--batch-size", "4", "--negatives", "2", "--layers", "1", "--heads", "2",
               "--val-fraction", "0.2"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "epoch 1:" in text and "val top-1" in text
    head = TransformerHead.load(out)
    pe, pooled = head(torch.zeros(1, 16))
    assert pe.shape == (1, 77, 64) and pooled.shape == (1, 32)


class _CountingClap:
    """Stands in for ClapEncoder: an embedding that depends on the clip, and a call counter."""

    embed_dim = 4

    def __init__(self):
        self.clips = 0

    def encode_audio(self, clips):
        self.clips += len(clips)
        x = torch.from_numpy(np.asarray(clips))
        return torch.stack([x.mean(1), x.std(1), x.abs().max(1).values, x[:, ::7].mean(1)], dim=1)


def test_audio_views_are_reused_after_k_epochs():
    from engine.train.data import AudioInputs

    songs = [tone([110.0 * (i + 2)], 12.0) for i in range(3)]
    clap = _CountingClap()
    inp = AudioInputs(songs, clap, seed=1, views=2)
    e = [inp.embed([0, 1, 2], epoch, True) for epoch in range(4)]
    assert clap.clips == 6  # only epochs 0 and 1 paid for augmentation + CLAP
    assert torch.equal(e[2], e[0]) and torch.equal(e[3], e[1]) and not torch.equal(e[0], e[1])
    fresh = AudioInputs(songs, _CountingClap(), seed=1, views=0)
    assert torch.equal(fresh.embed([2, 0], 0, True), e[0][[2, 0]])  # same seeding, any batch order
    assert not torch.equal(fresh.embed([0], 2, True), e[0][[0]])  # views=0: a new view every epoch
    v1, v2 = inp.embed([1], 0, False), inp.embed([1], 3, False)
    assert torch.equal(v1, v2) and clap.clips == 7  # validation: one fixed centre crop, encoded once
