"""The `real` profile's loading code, exercised on tiny models saved in the published layouts.

No download: the tiny components are saved with `save_pretrained` into a local models directory laid
out as `beatcanvas models fetch` leaves it (fp16 variant files where the registry says so), and the
`real` builders must load them back unchanged.
"""

import pytest
import torch

from engine.models import profiles
from engine.models import tiny
from engine.errors import BeatcanvasError


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory, tiny_components):
    clap, text, sdxl = tiny_components
    root = tmp_path_factory.mktemp("models")
    turbo = root / "sdxl-turbo"
    sdxl.unet.save_pretrained(turbo / "unet", variant="fp16")
    text.text_encoder.save_pretrained(turbo / "text_encoder", variant="fp16")
    text.text_encoder_2.save_pretrained(turbo / "text_encoder_2", variant="fp16")
    for sub in ("tokenizer", "tokenizer_2"):  # the published layout: vocab.json + merges.txt
        text.tokenizer.save_pretrained(turbo / sub)
        (turbo / sub / "tokenizer.json").unlink()
        tiny.write_vocab_files(turbo / sub, "clip")
    sdxl.taesd.save_pretrained(root / "taesdxl")
    sdxl.vae.save_pretrained(root / "sdxl-vae-fp16-fix")
    clap.model.save_pretrained(root / "clap")
    clap.processor.save_pretrained(root / "clap")
    clap.processor.feature_extractor.save_pretrained(root / "clap")  # preprocessor_config.json
    return root


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_real_profile_loads_sdxl_from_models_dir(models_dir, tiny_components):
    _, _, tiny = tiny_components
    loaded = profiles.build_sdxl("real", models_dir=models_dir, with_vae=True)
    assert _same_weights(loaded.unet, tiny.unet)
    assert _same_weights(loaded.taesd, tiny.taesd)
    assert _same_weights(loaded.vae, tiny.vae)


def test_real_profile_loads_text_encoders_and_tokenizers(models_dir, tiny_components):
    _, tiny, _ = tiny_components
    loaded = profiles.build_text_encoders("real", models_dir=models_dir)
    assert _same_weights(loaded.text_encoder_2, tiny.text_encoder_2)
    prompt = "a dreamy watercolor city"
    assert loaded.tokenizer_2(prompt).input_ids == tiny.tokenizer_2(prompt).input_ids


def test_real_profile_loads_clap(models_dir, tiny_components):
    tiny, _, _ = tiny_components
    loaded = profiles.build_clap("real", models_dir=models_dir)
    assert _same_weights(loaded.model, tiny.model)
    assert loaded.processor.feature_extractor.sampling_rate == 48_000


def test_missing_real_model_is_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("BEATCANVAS_MODELS", raising=False)
    with pytest.raises(BeatcanvasError, match="beatcanvas models fetch sdxl-turbo") as e:
        profiles.build_sdxl("real", models_dir=tmp_path)
    assert "\n" not in str(e.value)
