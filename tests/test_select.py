"""`--renderer auto|sdxl|procedural|shader|numpy` picks as documented for every machine we can simulate."""

from __future__ import annotations

import itertools

import pytest

from engine.errors import BeatcanvasError
from engine.render import select
from engine.render.select import choose_renderer, select_renderer

NO_GL = "no OpenGL 3.3 context (egl: no display): install a GPU driver, or Mesa"
# (weights, gpu, allow_cpu) -> what `auto` must pick when OpenGL works ("procedural" = weights-free)
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


@pytest.mark.parametrize("gl", [None, NO_GL])
@pytest.mark.parametrize("weights,gpu,allow", list(itertools.product([True, False], repeat=3)))
def test_auto_truth_table(weights: bool, gpu: bool, allow: bool, gl: str | None) -> None:
    got = select_renderer("auto", weights_present=weights, gpu_present=gpu, allow_cpu_diffusion=allow,
                          gl_unavailable=gl)
    want = AUTO_TABLE[(weights, gpu, allow)]
    if want == "procedural" and gl is None:
        want = "shader"  # the weights-free look runs on OpenGL when a context can be made
    assert got.kind == want
    assert got.reason.startswith(f"{got.kind} renderer")
    assert "\n" not in got.reason
    if not weights:  # the user is told how to get diffusion
        assert "beatcanvas models fetch sdxl-turbo" in got.reason
    if weights and not gpu and not allow:
        assert "--allow-cpu-diffusion" in got.reason


@pytest.mark.parametrize("weights,gpu,allow", list(itertools.product([True, False], repeat=3)))
def test_explicit_procedural_is_weights_free(weights: bool, gpu: bool, allow: bool) -> None:
    got = select_renderer("procedural", weights_present=weights, gpu_present=gpu, allow_cpu_diffusion=allow)
    assert got.kind == "shader"
    got = select_renderer("procedural", weights_present=weights, gpu_present=gpu, allow_cpu_diffusion=allow,
                          gl_unavailable=NO_GL)
    assert got.kind == "procedural"


def test_no_gl_falls_back_to_numpy_with_one_line_saying_why() -> None:
    got = select_renderer("auto", weights_present=False, gpu_present=False, allow_cpu_diffusion=False,
                          gl_unavailable=NO_GL)
    assert got.kind == "procedural" and "\n" not in got.reason
    assert "numpy" in got.reason and "no OpenGL 3.3" in got.reason and "Mesa" in got.reason


def test_shader_and_numpy_pin_one_renderer() -> None:
    kw = dict(weights_present=True, gpu_present=True, allow_cpu_diffusion=False)
    assert select_renderer("numpy", **kw).kind == "procedural"
    assert select_renderer("shader", **kw).kind == "shader"
    with pytest.raises(BeatcanvasError, match="--renderer shader needs OpenGL 3.3.*--renderer numpy"):
        select_renderer("shader", **kw, gl_unavailable=NO_GL)


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
    assert got.kind in ("shader", "procedural") and "no SDXL weights" in got.reason


def test_choose_renderer_uses_probed_facts(monkeypatch) -> None:
    monkeypatch.setattr(select, "probe", lambda model, models_dir: (True, True))
    assert choose_renderer("auto").kind == "sdxl"
    monkeypatch.setattr(select, "probe", lambda model, models_dir: (True, False))
    monkeypatch.setattr(select, "gl_unavailable", lambda: NO_GL)
    assert choose_renderer("auto").kind == "procedural"
    monkeypatch.setattr(select, "gl_unavailable", lambda: None)
    monkeypatch.setattr(select, "gl_software", lambda: False)
    assert choose_renderer("auto").kind == "shader"
    monkeypatch.setattr(select, "gl_software", lambda: True)
    assert choose_renderer("auto").kind == "shader" and choose_renderer("auto", live=False).kind == "shader"
    assert choose_renderer("auto", allow_cpu_diffusion=True).kind == "sdxl"


def test_software_gl_runs_shaders_in_a_live_window_too_drawn_smaller():
    """Mesa's llvmpipe: the live window still gets the shader look (at a lower internal resolution,
    upscaled), and the reason says so; numpy only where no context can be made."""
    facts = dict(weights_present=False, gpu_present=False, allow_cpu_diffusion=False, gl_unavailable=None, gl_software=True)
    live = select_renderer("auto", **facts, live=True)
    assert live.kind == "shader" and "software OpenGL: drawn smaller, upscaled" in live.reason
    export = select_renderer("auto", **facts, live=False)
    assert export.kind == "shader" and "smaller" not in export.reason  # export draws at full size
    assert select_renderer("shader", **facts, live=True).kind == "shader"
    gpu_gl = select_renderer("auto", **{**facts, "gl_software": False}, live=True)
    assert gpu_gl.kind == "shader" and "smaller" not in gpu_gl.reason
    no_gl = select_renderer("auto", **{**facts, "gl_unavailable": "no EGL"}, live=True)
    assert no_gl.kind == "procedural" and "numpy, no EGL" in no_gl.reason
