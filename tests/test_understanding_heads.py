"""Heads: zero-shot ranking and disk cache; transformer head shapes and its safetensors checkpoint."""

import numpy as np
import pytest
import torch

from engine.understanding.clap import ClapEncoder
from engine.errors import BeatcanvasError
from engine.understanding.heads.transformer import HeadConfig, TransformerHead
from engine.understanding.heads.zeroshot import ZeroShotHead
from engine.understanding.prompt_encoding import PromptEncoder


@pytest.fixture(scope="module")
def parts(tiny_components):
    clap, text, _ = tiny_components
    return ClapEncoder(clap), PromptEncoder(text), text


@pytest.fixture(scope="module")
def head(parts, tmp_path_factory):
    enc, prompts, _ = parts
    return ZeroShotHead(enc, prompts, cache_dir=tmp_path_factory.mktemp("cache"), top_k=3, temperature=0.05)


def test_descriptor_equal_to_audio_embedding_ranks_first(head):
    for category in head.categories:
        for label in (head.labels[category][0], head.labels[category][-1]):
            i = head.slices[category].start + head.labels[category].index(label)
            emb = head.text_embeddings[i : i + 1]
            heard = head.hear(emb)[0]
            assert heard.top[category][0][0] == label, (category, label)


def test_zeroshot_conditioning_shapes_labels_and_determinism(head, parts):
    _, prompts, text = parts
    emb = head.text_embeddings[head.slices["genre"].start + 3 : head.slices["genre"].start + 4]
    a = head.condition(emb, t=5.0)
    b = head.condition(emb, t=5.0)
    assert a.prompt_embeds.shape == (1, 77, text.prompt_dim)
    assert a.pooled_prompt_embeds.shape == (1, text.pooled_dim)
    assert torch.equal(a.prompt_embeds, b.prompt_embeds) and a.prompt == b.prompt
    genre = head.labels["genre"][3]
    assert next(iter(a.labels)) == genre  # the genre it heard leads the labels
    weights = [w for _, w in head.last.top["genre"]]
    assert abs(sum(weights) - 1) < 1e-5 and weights == sorted(weights, reverse=True)
    assert -1 <= head.last.valence <= 1 and -1 <= head.last.arousal <= 1
    # the blend is the genre-weighted sum of the top prompts' encodings
    pe, _ = prompts.encode([p for p, _ in head.last.prompts])
    w = torch.tensor(weights)
    torch.testing.assert_close(a.prompt_embeds[0], (pe * w[:, None, None]).sum(0), atol=1e-5, rtol=1e-5)


def test_style_text_joins_every_prompt(parts, tmp_path):
    enc, prompts, _ = parts
    h = ZeroShotHead(enc, prompts, cache_dir=tmp_path, style="ukiyo-e woodblock print")
    heard = h.hear(h.text_embeddings[:1])[0]
    assert all(p.endswith(", ukiyo-e woodblock print") for p, _ in heard.prompts)


def test_bank_is_cached_on_disk_and_reused(parts, tmp_path, monkeypatch):
    enc, prompts, _ = parts
    h1 = ZeroShotHead(enc, prompts, cache_dir=tmp_path)
    files = list(tmp_path.glob("clap-bank-*.safetensors"))
    assert len(files) == 1

    def boom(*a, **k):
        raise AssertionError("bank re-embedded despite the cache")

    monkeypatch.setattr(enc, "encode_text", boom)
    h2 = ZeroShotHead(enc, prompts, cache_dir=tmp_path)
    assert torch.equal(h1.text_embeddings, h2.text_embeddings)
    monkeypatch.undo()
    # a different bank gets its own cache entry
    ZeroShotHead(enc, prompts, cache_dir=tmp_path, descriptors={"genre": ("sea shanty", "chiptune")})
    assert len(list(tmp_path.glob("clap-bank-*.safetensors"))) == 2


def test_preset_descriptor_override_replaces_category(parts, tmp_path):
    enc, prompts, _ = parts
    h = ZeroShotHead(enc, prompts, cache_dir=tmp_path, descriptors={"genre": ("sea shanty", "chiptune")})
    assert h.labels["genre"] == ["sea shanty", "chiptune"]
    c = h.condition(h.text_embeddings[1:2])
    assert "chiptune" in c.labels


# ------------------------------------------------------------------------------ transformer head


def _tiny_head(parts) -> TransformerHead:
    enc, _, text = parts
    torch.manual_seed(0)
    return TransformerHead(HeadConfig.for_components(enc.embed_dim, text, heads=4)).eval()


def test_transformer_head_shapes_follow_components(parts):
    enc, _, text = parts
    head = _tiny_head(parts)
    pe, pooled = head(torch.randn(2, enc.embed_dim))
    assert pe.shape == (2, 77, text.prompt_dim) and pooled.shape == (2, text.pooled_dim)
    assert head.config.widths == (text.text_encoder.config.hidden_size, text.text_encoder_2.config.hidden_size)


def test_transformer_head_save_load_is_bit_exact(parts, tmp_path):
    head = _tiny_head(parts)
    path = head.save(tmp_path / "head.safetensors")
    loaded = TransformerHead.load(path)
    assert loaded.config == head.config
    for (k1, v1), (k2, v2) in zip(head.state_dict().items(), loaded.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    x = torch.randn(3, head.config.audio_dim)
    with torch.no_grad():
        a, b = head(x), loaded(x)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_corrupted_truncated_or_foreign_head_file_is_a_clear_error(parts, tmp_path):
    path = _tiny_head(parts).save(tmp_path / "head.safetensors")
    data = path.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00not a checkpoint" * 10)
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    for name, match in [("trunc", "corrupted"), ("garbage", "corrupted"), ("foreign", "not a beatcanvas"),
                        ("missing", "not found")]:
        with pytest.raises(BeatcanvasError, match=match):
            TransformerHead.load(tmp_path / f"{name}.safetensors")


def test_tempo_words_hold_their_band_while_the_tempo_jitters_around_an_edge():
    """A tracker wobbling around 135 BPM keeps one set of tempo words; a real change moves them, and
    coming back needs the margin too (hysteresis), at every edge (80, 110, 135)."""
    from engine.understanding.vag import TempoHysteresis, tempo_words

    h = TempoHysteresis(margin_bpm=4.0)
    for edge in (80.0, 110.0, 135.0):
        h.reset()
        below = tempo_words(edge - 10)
        words = [tempo_words(h.steady(bpm)) for bpm in (edge - 10, edge - 1, edge + 1, edge - 2, edge + 3, edge - 0.5)]
        assert words == [below] * 6  # the plain lookup would flip 3 times
        above = tempo_words(h.steady(edge + 6))  # past the margin: the words change
        assert above != below
        assert tempo_words(h.steady(edge - 3)) == above  # and stay until the margin below the edge
        assert tempo_words(h.steady(edge - 5)) == below
