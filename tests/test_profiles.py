"""The tiny profile builds every component from the real classes, deterministically, offline."""

import numpy as np
import pytest
import torch

from engine.models import profiles
from engine.errors import BeatcanvasError


def test_tiny_profile_builds_every_component(tiny_components):
    clap, text, sdxl = tiny_components
    from diffusers import AutoencoderKL, AutoencoderTiny, UNet2DConditionModel
    from transformers import ClapModel, CLIPTextModel, CLIPTextModelWithProjection

    assert isinstance(clap.model, ClapModel)
    assert isinstance(text.text_encoder, CLIPTextModel)
    assert isinstance(text.text_encoder_2, CLIPTextModelWithProjection)
    assert isinstance(sdxl.unet, UNet2DConditionModel)
    assert isinstance(sdxl.taesd, AutoencoderTiny)
    assert isinstance(sdxl.vae, AutoencoderKL)
    # The UNet's cross-attention width is what the two text encoders produce together.
    assert sdxl.unet.config.cross_attention_dim == text.prompt_dim


def test_tiny_profile_is_deterministic():
    a = profiles.build_sdxl("tiny")
    b = profiles.build_sdxl("tiny")
    for (na, pa), (nb, pb) in zip(a.unet.state_dict().items(), b.unet.state_dict().items()):
        assert na == nb and torch.equal(pa, pb)


def test_tiny_tokenizer_round_trips_prompt_words(tiny_components):
    _, text, _ = tiny_components
    ids = text.tokenizer("a dreamy watercolor painting of a neon city").input_ids
    assert ids[0] == text.tokenizer.bos_token_id and ids[-1] == text.tokenizer.eos_token_id
    assert text.tokenizer.decode(ids, skip_special_tokens=True).strip() == "a dreamy watercolor painting of a neon city"


def test_tiny_clap_takes_real_feature_extractor_output(tiny_components):
    clap, _, _ = tiny_components
    audio = np.random.default_rng(0).standard_normal(480_000).astype(np.float32) * 0.1
    inputs = clap.processor(audio=audio, sampling_rate=48_000, return_tensors="pt")
    with torch.no_grad():
        out = clap.model.get_audio_features(**inputs)
    emb = out if isinstance(out, torch.Tensor) else out.pooler_output
    assert emb.shape == (1, clap.embed_dim)


def test_unknown_profile_and_model_are_user_errors():
    with pytest.raises(BeatcanvasError, match="unknown profile"):
        profiles.build_sdxl("huge")
    with pytest.raises(BeatcanvasError, match="unknown image model"):
        profiles.build_sdxl("tiny", model="sd15")
