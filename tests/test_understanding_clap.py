"""CLAP encoder: preprocessing equals transformers' ClapFeatureExtractor; embeddings are unit-norm,
batched, deterministic; the optional laion back-end fails with a clear error when not installed."""

import sys

import numpy as np
import pytest
import torch

from engine.understanding.clap import ClapEncoder, ClapMel, LaionClapEncoder, truncation_for
from engine.errors import BeatcanvasError
from engine.types import Window


@pytest.fixture(scope="module")
def encoder(tiny_components):
    return ClapEncoder(tiny_components[0])


def _music(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 48_000)) / 48_000
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)) + 0.05 * rng.standard_normal(t.size)
    return x.astype(np.float32)


def test_larger_clap_music_is_non_fusion_so_no_random_crop(encoder):
    assert truncation_for(encoder.model) == "rand_trunc"
    assert encoder.mel.fusion is False


@pytest.mark.parametrize("seconds,lead_silence", [(10.0, 3.0), (4.3, 0.0)])
def test_features_equal_clap_feature_extractor(encoder, seconds, lead_silence):
    audio = _music(seconds)
    audio[: int(lead_silence * 48_000)] = 0.0  # a window zero-padded at the start, as window_at makes
    ref = encoder.processor.feature_extractor(audio, sampling_rate=48_000, return_tensors="pt")
    ours = encoder.features(audio)
    assert ours.shape == ref.input_features.shape == (1, 1, 1001, 64)
    torch.testing.assert_close(ours, ref.input_features.float(), atol=1e-3, rtol=0)


def test_fusion_features_equal_extractor_fusion_output(encoder):
    ext = encoder.processor.feature_extractor
    audio = _music(10.0, seed=3)
    ref = ext(audio, sampling_rate=48_000, truncation="fusion", return_tensors="pt").input_features
    ours = ClapMel(ext, fusion=True)(torch.from_numpy(audio)[None])
    assert ours.shape == ref.shape == (1, 4, 1001, 64)
    torch.testing.assert_close(ours, ref.float(), atol=1e-3, rtol=0)


def test_longer_audio_keeps_the_latest_ten_seconds_deterministically(encoder):
    audio = _music(12.0, seed=1)
    a = encoder.features(audio)
    b = encoder.features(audio)
    assert torch.equal(a, b)
    torch.testing.assert_close(a, encoder.features(audio[-480_000:]))


def test_encode_audio_is_unit_norm_batched_and_deterministic(encoder):
    clips = np.stack([_music(10.0, seed=s) for s in range(3)])
    emb = encoder.encode_audio(clips)
    assert emb.shape == (3, encoder.embed_dim) and emb.dtype == torch.float32
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))
    one = encoder.encode_audio(Window(clips[1], t_end=10.0))
    torch.testing.assert_close(one[0], emb[1], atol=1e-5, rtol=0)
    assert torch.equal(encoder.encode_audio(clips), emb)
    # different music → different embeddings
    assert not torch.allclose(emb[0], emb[1], atol=1e-4)


def test_encode_audio_bfloat16_returns_float32_unit_norm(tiny_components):
    import copy

    bundle = copy.deepcopy(tiny_components[0])
    enc = ClapEncoder(bundle, dtype=torch.bfloat16)
    emb = enc.encode_audio(_music(10.0)[None])
    assert emb.dtype == torch.float32 and emb.shape == (1, enc.embed_dim)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(1))


def test_encode_text_is_unit_norm(encoder):
    emb = encoder.encode_text(["techno music", "sad piano music", "techno music"])
    assert emb.shape == (3, encoder.embed_dim)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(emb[0], emb[2])


def test_wrong_sample_rate_window_is_a_user_error(encoder):
    with pytest.raises(BeatcanvasError, match="48000 Hz"):
        encoder.encode_audio([Window(np.zeros(44_100, np.float32), 1.0, sample_rate=44_100)])


def test_laion_backend_without_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "laion_clap", None)  # import raises ImportError
    with pytest.raises(BeatcanvasError, match=r"laion"):
        LaionClapEncoder("/nonexistent.pt")
