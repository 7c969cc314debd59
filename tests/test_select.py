"""`--renderer auto|sdxl|procedural` picks as documented for every machine we can simulate."""

from __future__ import annotations

import itertools

import pytest

from engine.errors import BeatcanvasError
from engine.render import select
from engine.render.select import choose_renderer, select_renderer

# (weights, gpu, allow_cpu) -> what `auto` must pick
AUTO_TABLE = {
    (True, True, False): "sdxl",
    (True, True, True): "sdxl",
    (True, False, True): "sdxl",
    (True, False, False): "procedural",
    (False, True, False): "procedural",
    (False, True, True): "procedural",
    (False, False, True): "procedural",
    (False, False, False): "procedural",
}


@pytest.mark.parametrize("weights,gpu,allow", list(itertools.product([True, False], repeat=3)))
def test_auto_truth_table(weights: bool, gpu: bool, allow: bool) -> None:
    got = select_renderer("auto", weights_present=weights, gpu_present=gpu, allow_cpu_diffusion=allow)
    assert got.kind == AUTO_TABLE[(weights, gpu, allow)]
    assert got.reason.startswith(f"{got.kind} renderer")
    assert "\n" not in got.reason
    if not weights:  # the user is told how to get diffusion
        assert "beatcanvas models fetch sdxl-turbo" in got.reason
    if weights and not gpu and not allow:
        assert "--allow-cpu-diffusion" in got.reason


@pytest.mark.parametrize("weights,gpu,allow", list(itertools.product([True, False], repeat=3)))
def test_explicit_procedural_always_procedural(weights: bool, gpu: bool, allow: bool) -> None:
    got = select_renderer("procedural", weights_present=weights, gpu_present=gpu, allow_cpu_diffusion=allow)
    assert got.kind == "procedural"


def test_explicit_sdxl_without_weights_names_fetch_command() -> None:
    with pytest.raises(BeatcanvasError, match="beatcanvas models fetch sdxl-lightning"):
        select_renderer(
            "sdxl", weights_present=False, gpu_present=True, allow_cpu_diffusion=True, model="sdxl-lightning"
        )


def test_explicit_sdxl_without_gpu_needs_permission() -> None:
    with pytest.raises(BeatcanvasError, match="--allow-cpu-diffusion"):
        select_renderer("sdxl", weights_present=True, gpu_present=False, allow_cpu_diffusion=False)
    got = select_renderer("sdxl", weights_present=True, gpu_present=False, allow_cpu_diffusion=True)
    assert got.kind == "sdxl" and "CPU" in got.reason


def test_unknown_choice_is_a_user_error() -> None:
    with pytest.raises(BeatcanvasError, match="auto, sdxl, procedural"):
        select_renderer("dalle", weights_present=True, gpu_present=True, allow_cpu_diffusion=False)


def test_probe_on_an_empty_models_dir_finds_no_weights(tmp_path, monkeypatch) -> None:
    # No weights anywhere: an empty models dir, env override and HF cache pointed at empty folders.
    monkeypatch.setenv("BEATCANVAS_MODELS", str(tmp_path / "env"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert select.weights_present("sdxl-turbo", models_dir=tmp_path) is False
    monkeypatch.setattr(select, "gpu_present", lambda: False)
    got = choose_renderer("auto", models_dir=tmp_path)
    assert got.kind == "procedural" and "no SDXL weights" in got.reason


def test_choose_renderer_uses_probed_facts(monkeypatch) -> None:
    monkeypatch.setattr(select, "probe", lambda model, models_dir: (True, True))
    assert choose_renderer("auto").kind == "sdxl"
    monkeypatch.setattr(select, "probe", lambda model, models_dir: (True, False))
    assert choose_renderer("auto").kind == "procedural"
    assert choose_renderer("auto", allow_cpu_diffusion=True).kind == "sdxl"
