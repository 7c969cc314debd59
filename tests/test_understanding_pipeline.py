"""Prompt encoding equals diffusers' SDXL encode_prompt; `Understanding.step` end to end (tiny)."""

import numpy as np
import pytest
import torch

from engine.errors import BeatcanvasError
from engine.understanding.prompt_encoding import PromptEncoder
from engine.types import Window
from engine.understanding.pipeline import build_understanding


@pytest.fixture(scope="module")
def pipe(tiny_components):
    from diffusers import StableDiffusionXLPipeline

    _, text, sdxl = tiny_components
    return StableDiffusionXLPipeline(
        vae=sdxl.vae, text_encoder=text.text_encoder, text_encoder_2=text.text_encoder_2,
        tokenizer=text.tokenizer, tokenizer_2=text.tokenizer_2, unet=sdxl.unet, scheduler=sdxl.scheduler,
    )


def test_encode_equals_diffusers_encode_prompt(tiny_components, pipe):
    _, text, _ = tiny_components
    prompts = ["a dreamy watercolor painting of a neon city at night", "dark techno in a concrete warehouse"]
    ref_pe, _, ref_pooled, _ = pipe.encode_prompt(prompts, do_classifier_free_guidance=False)
    enc = PromptEncoder(text)
    pe, pooled = enc.encode(prompts)
    assert pe.shape == (2, 77, text.prompt_dim) and pooled.shape == (2, text.pooled_dim)
    assert torch.equal(pe, ref_pe) and torch.equal(pooled, ref_pooled)
    single, _, single_pooled, _ = pipe.encode_prompt(prompts[0], do_classifier_free_guidance=False)
    pe1, pooled1 = PromptEncoder(text).encode(prompts[0])
    assert torch.equal(pe1, single) and torch.equal(pooled1, single_pooled)


def test_negative_encoding_equals_pipeline(tiny_components, pipe):
    _, text, _ = tiny_components
    enc = PromptEncoder(text)
    _, neg, _, neg_pooled = pipe.encode_prompt("a city", do_classifier_free_guidance=True, negative_prompt="blurry")
    n, npool = enc.encode_negative("blurry")
    assert torch.equal(n, neg) and torch.equal(npool, neg_pooled)
    _, zero, _, zero_pooled = pipe.encode_prompt("a city", do_classifier_free_guidance=True)
    z, zp = enc.encode_negative(None)
    assert torch.equal(z, zero) and torch.equal(zp, zero_pooled) and not z.any()


def test_lru_cache_serves_repeats_and_evicts_oldest(tiny_components, monkeypatch):
    _, text, _ = tiny_components
    enc = PromptEncoder(text, cache_size=2)
    a = enc.encode("calm ocean")
    calls = []
    orig = enc._encode_uncached
    monkeypatch.setattr(enc, "_encode_uncached", lambda p, **k: calls.append(list(p)) or orig(p, **k))
    b = enc.encode("calm ocean")
    assert calls == [] and torch.equal(a[0], b[0])
    enc.encode(["neon city", "dark forest"])  # evicts "calm ocean"
    enc.encode("calm ocean")
    assert calls == [["neon city", "dark forest"], ["calm ocean"]]


def _window(seconds: float, t_end: float, freq: float) -> Window:
    t = np.arange(int(seconds * 48_000)) / 48_000
    return Window((0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), t_end=t_end)


def test_understanding_step_zeroshot(tiny_components, tmp_path):
    clap, text, _ = tiny_components
    u = build_understanding("tiny", head="zeroshot", style="oil painting", cache_dir=tmp_path, clap=clap,
                            text=text, smoothing_s=1.0, audio_weight=0.8, scene_threshold=2.0)
    c1 = u.step(_window(10, 10.0, 220))
    assert c1.prompt_embeds.shape == (1, 77, text.prompt_dim)
    assert c1.pooled_prompt_embeds.shape == (1, text.pooled_dim)
    assert c1.labels and c1.prompt.endswith("oil painting") and c1.t == 10.0
    assert u.info.heard is not None and -1 <= u.info.heard.valence <= 1
    c2 = u.step(_window(10, 10.5, 880))
    # smoothed: between the previous output and the new raw conditioning
    assert not u.info.scene_change
    alpha = 1 - np.exp(-0.5 / 1.0)
    torch.testing.assert_close(c2.prompt_embeds, torch.lerp(c1.prompt_embeds, u.info.raw.prompt_embeds, alpha),
                               atol=1e-5, rtol=1e-5)


def test_understanding_step_transformer_and_cut(tiny_components, tmp_path):
    clap, text, _ = tiny_components
    u = build_understanding("tiny", head="transformer", clap=clap, on_scene_change="cut", scene_threshold=0.0)
    c = u.step(_window(10, 10.0, 220))
    assert c.prompt_embeds.shape == (1, 77, text.prompt_dim) and c.pooled_prompt_embeds.shape == (1, text.pooled_dim)
    u.scene.min_interval_s = 0.0
    c2 = u.step(_window(10, 10.5, 3000))
    assert u.info.scene_change  # cut: no smoothing toward the old look
    assert torch.equal(c2.prompt_embeds, u.info.raw.prompt_embeds)
    assert not torch.equal(c2.prompt_embeds, c.prompt_embeds)
    path = u.head.save(tmp_path / "h.safetensors")
    u2 = build_understanding("tiny", head="transformer", head_path=path, clap=clap)
    assert u2.head.config == u.head.config


def test_unknown_head_is_a_user_error(tiny_components):
    with pytest.raises(BeatcanvasError, match="unknown head"):
        build_understanding("tiny", head="magic", clap=tiny_components[0])


def test_analyze_rows_report_each_window(tiny_components, tmp_path):
    import soundfile as sf

    from live.commands.analyze import head_rows

    clap, text, _ = tiny_components
    u = build_understanding("tiny", head="zeroshot", cache_dir=tmp_path, clap=clap, text=text)
    path = tmp_path / "t.wav"
    sf.write(str(path), _window(12, 12.0, 440).samples, 48_000)
    rows = head_rows(u, path, hop_s=5.0)
    assert [r["t"] for r in rows] == [5.0, 10.0, 12.0]
    r = rows[0]
    assert set(r["labels"]) >= {"genre", "mood"} and len(r["labels"]["genre"]) == 3
    assert -1 <= r["valence"] <= 1 and r["prompts"][0][0]
