"""Model registry: where models are found offline, what a missing model says, `beatcanvas models`,
and that the shipped full-size configs build the real architectures (on the meta device: no memory)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.models import registry
from engine.errors import BeatcanvasError

CONFIGS = Path(registry.__file__).parent / "configs"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """Every test sees an empty HF cache and no BEATCANVAS_MODELS, whatever the machine has."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.delenv(registry.ENV_MODELS_DIR, raising=False)


def _fill(root: Path, name: str) -> Path:
    """Write placeholder files satisfying `name`'s required globs under root."""
    for pattern in registry.MODELS[name].required:
        f = root / pattern.replace("*", "4step" if "step" in pattern else "")
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("{}")
    return root


def _fake_model_dir(base: Path, name: str) -> Path:
    return _fill(base / name, name)


def _fake_hf_cache(cache: Path, name: str, commit: str = "c" * 40) -> Path:
    """The hub cache layout: models--org--repo/{refs/<rev>, snapshots/<commit>/...}."""
    s = registry.MODELS[name]
    repo = cache / f"models--{s.repo_id.replace('/', '--')}"
    if len(s.revision) == 40:
        commit = s.revision
    else:
        ref = repo / "refs" / s.revision
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(commit)
    return _fill(repo / "snapshots" / commit, name)


# ------------------------------------------------------------------------------------- resolution


def test_resolution_order_explicit_dir_then_env_then_hf_cache(tmp_path, monkeypatch):
    name = "taesdxl"
    explicit = tmp_path / "explicit"
    env_dir = tmp_path / "env"
    cached = _fake_hf_cache(tmp_path / "hf-cache", name)
    _fake_model_dir(explicit, name)
    _fake_model_dir(env_dir, name)
    monkeypatch.setenv(registry.ENV_MODELS_DIR, str(env_dir))

    assert registry.resolve(name, explicit) == (explicit / name).resolve()
    assert registry.locate(name, explicit).source == "models-dir"
    assert registry.resolve(name) == (env_dir / name).resolve()
    assert registry.locate(name).source == registry.ENV_MODELS_DIR

    monkeypatch.delenv(registry.ENV_MODELS_DIR)
    assert registry.resolve(name) == cached
    assert registry.locate(name).source == "hf-cache"


def test_incomplete_local_dir_falls_through_to_next_source(tmp_path):
    name = "sdxl-turbo"
    half = tmp_path / "models" / name
    (half / "unet").mkdir(parents=True)
    (half / "unet" / "config.json").write_text("{}")  # weights never finished copying
    cached = _fake_hf_cache(tmp_path / "hf-cache", name)
    assert registry.resolve(name, tmp_path / "models") == cached


def test_ref_revision_is_found_in_hf_cache(tmp_path):
    # clap is pinned to the safetensors conversion ref (refs/pr/1), not a commit hash
    cached = _fake_hf_cache(tmp_path / "hf-cache", "clap", commit="d" * 40)
    assert registry.resolve("clap") == cached
    assert (cached / "model.safetensors").is_file()


def test_missing_model_offline_names_model_and_fetch_command(tmp_path):
    with pytest.raises(BeatcanvasError) as e:
        registry.resolve("sdxl-turbo", tmp_path / "empty")
    msg = str(e.value)
    assert "'sdxl-turbo' (stabilityai/sdxl-turbo)" in msg
    assert "beatcanvas models fetch sdxl-turbo" in msg
    assert "--models-dir" in msg
    assert "\n" not in msg


def test_unknown_model_lists_known_names():
    with pytest.raises(BeatcanvasError, match="unknown model 'sdxl-turob'.*sdxl-turbo"):
        registry.resolve("sdxl-turob")


# ------------------------------------------------------------------------------------------ fetch


def test_fetch_failure_is_one_clean_line(tmp_path, monkeypatch):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise ConnectionError("Name or service not known\nlong traceback text")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(BeatcanvasError) as e:
        registry.fetch("taesdxl", tmp_path / "models", progress=False)
    msg = str(e.value)
    assert "could not download 'taesdxl' (madebyollin/taesdxl" in msg
    assert "\n" not in msg
    assert not (tmp_path / "models" / "taesdxl").exists()  # no empty folder posing as a model


def test_fetch_into_models_dir_then_resolves_there(tmp_path, monkeypatch):
    import huggingface_hub

    calls = {}

    def fake_download(repo_id, *, local_dir, revision, allow_patterns, **kwargs):
        calls.update(repo_id=repo_id, revision=revision, allow_patterns=allow_patterns)
        _fill(Path(local_dir), "sdxl-vae-fp16-fix")
        return str(local_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    result = registry.fetch("sdxl-vae-fp16-fix", tmp_path / "models", progress=False)
    assert calls["repo_id"] == "madebyollin/sdxl-vae-fp16-fix"
    assert result.path == tmp_path / "models" / "sdxl-vae-fp16-fix"
    assert registry.resolve("sdxl-vae-fp16-fix", tmp_path / "models") == result.path.resolve()


def test_fetch_patterns_never_pull_pickles_or_every_variant():
    for s in registry.MODELS.values():
        weights = [p for p in s.allow_patterns if not p.endswith((".json", ".txt", ".md", "/*"))]
        assert weights, s.name
        assert all(p.endswith(".safetensors") for p in weights), (s.name, weights)
        assert "*" not in "".join(weights), f"{s.name} would fetch every variant"


def test_licences_mark_turbo_non_commercial():
    assert registry.MODELS["sdxl-turbo"].commercial_ok is False
    for name in ("sdxl-lightning", "sdxl-base", "taesdxl", "sdxl-vae-fp16-fix", "clap"):
        assert registry.MODELS[name].commercial_ok, name
    assert "sdxl-base" in registry.MODELS["sdxl-lightning"].depends_on


# -------------------------------------------------------------------------------------------- CLI


def test_models_list_shows_presence_and_location(tmp_path, capsys, monkeypatch):
    from live.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    _fake_model_dir(tmp_path / "models", "taesdxl")
    assert main(["models", "list", "--models-dir", str(tmp_path / "models")]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = {name: next(line for line in lines if f" {name} " in line) for name in ("taesdxl", "sdxl-turbo")}
    assert "yes (models-dir)" in row["taesdxl"] and "taesdxl" in row["taesdxl"]
    assert "sai-nc-community" in row["sdxl-turbo"] and row["sdxl-turbo"].rstrip(" │").endswith("no")


def test_models_fetch_offline_exits_1_with_one_line(tmp_path, capsys, monkeypatch):
    import huggingface_hub

    from live.cli import main

    def offline(*args, **kwargs):
        raise OSError("offline")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    assert main(["models", "fetch", "taesdxl", "--models-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "could not download 'taesdxl'" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------------------------------- configs


def _config(name: str) -> dict:
    data = json.loads((CONFIGS / f"{name}.json").read_text())
    return {k: v for k, v in data.items() if not k.startswith("_") or k == "_class_name"}


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_full_size_configs_build_the_published_architectures():
    """Exact parameter counts of the published checkpoints: a wrong config value changes them."""
    import torch
    from diffusers import AutoencoderKL, AutoencoderTiny, UNet2DConditionModel
    from transformers import ClapConfig, ClapModel, CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    with torch.device("meta"):
        counts = {
            "sdxl_unet": _params(UNet2DConditionModel.from_config(_config("sdxl_unet"))),
            "sdxl_vae": _params(AutoencoderKL.from_config(_config("sdxl_vae"))),
            "taesdxl": _params(AutoencoderTiny.from_config(_config("taesdxl"))),
            "clip_text": _params(CLIPTextModel(CLIPTextConfig.from_dict(_config("clip_text")))),
            "clip_text_2": _params(CLIPTextModelWithProjection(CLIPTextConfig.from_dict(_config("clip_text_2")))),
            "clap": _params(ClapModel(ClapConfig.from_dict(_config("clap")))),
        }
    assert counts == {
        "sdxl_unet": 2_567_463_684,
        "sdxl_vae": 83_653_863,
        "taesdxl": 2_445_063,
        "clip_text": 123_060_480,
        "clip_text_2": 694_659_840,
        "clap": 193_913_882,  # 776 MB of fp32 in laion/larger_clap_music
    }


def test_scheduler_and_feature_extractor_configs():
    from diffusers import EulerAncestralDiscreteScheduler, EulerDiscreteScheduler
    from transformers import ClapFeatureExtractor

    turbo = EulerAncestralDiscreteScheduler.from_config(_config("scheduler_turbo"))
    lightning = EulerDiscreteScheduler.from_config(_config("scheduler_lightning"))
    assert turbo.config.timestep_spacing == lightning.config.timestep_spacing == "trailing"
    turbo.set_timesteps(1)
    assert int(turbo.timesteps[0]) == 999  # one-step turbo starts from pure noise
    fe = ClapFeatureExtractor(**_config("clap_feature_extractor"))
    assert (fe.sampling_rate, fe.nb_max_samples, fe.truncation) == (48_000, 480_000, "rand_trunc")
    assert _config("clap")["audio_config"]["enable_fusion"] is False  # rand_trunc pairs with non-fusion


def test_pretrained_kwargs_load_the_fp16_files_fetch_downloads(tmp_path):
    """An fp16-only folder (what `fetch` leaves for sdxl-turbo) loads with pretrained_kwargs, not without."""
    from diffusers import AutoencoderTiny

    small = AutoencoderTiny(encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8))
    small.save_pretrained(tmp_path / "unet", variant="fp16")
    with pytest.raises(OSError):
        AutoencoderTiny.from_pretrained(tmp_path, subfolder="unet", local_files_only=True)
    kwargs = registry.pretrained_kwargs("sdxl-turbo")
    loaded = AutoencoderTiny.from_pretrained(tmp_path, subfolder="unet", **kwargs).state_dict()
    saved = small.state_dict()
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k].float(), saved[k].float()) for k in saved)
    assert "variant" not in registry.pretrained_kwargs("taesdxl")


def test_models_fetch_lightning_also_fetches_sdxl_base_and_skips_present(tmp_path, capsys, monkeypatch):
    import huggingface_hub

    from live.cli import main

    fetched = []
    by_repo = {s.repo_id: s.name for s in registry.MODELS.values()}

    def fake_download(repo_id, *, local_dir, **kwargs):
        fetched.append(by_repo[repo_id])
        _fill(Path(local_dir), by_repo[repo_id])
        return str(local_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    assert main(["models", "fetch", "sdxl-lightning", "--models-dir", str(tmp_path)]) == 0
    assert fetched == ["sdxl-base", "sdxl-lightning"]
    assert main(["models", "fetch", "sdxl-lightning", "--models-dir", str(tmp_path)]) == 0
    assert fetched == ["sdxl-base", "sdxl-lightning"]  # second run: both already present
    assert "already present" in capsys.readouterr().out
