"""The shader look in a live window on software OpenGL: drawn at an internal resolution that holds the
display rate (chosen from the first frames, lower when frames are late, higher with headroom, without
hunting), upscaled to the window; the HUD names the size."""

from __future__ import annotations

import os

import numpy as np
import pytest

from engine.render.shader import ShaderRenderer, gl_unavailable
from engine.render.shader.resolution import LADDER, START, WARMUP, WINDOW, ResolutionGovernor
from engine.render.stage import RenderSpec, ShaderStage
from engine.types import Features

BUDGET = 0.025  # 25 ms a render
TARGET = 30.0


def cost(scale: float, full_s: float = 0.2) -> float:
    """A rasteriser's time: proportional to the pixels drawn (190 ms at full size on llvmpipe here)."""
    return full_s * scale * scale


def settle(g: ResolutionGovernor, full_s: float, display: float, renders: int) -> list[float]:
    scales = []
    for _ in range(renders):
        g.observe(cost(g.scale, full_s), display)
        scales.append(g.scale)
    return scales


def test_the_first_frames_pick_the_largest_size_that_fits_the_budget() -> None:
    g = ResolutionGovernor(BUDGET, TARGET)
    assert g.scale == LADDER[START]  # small while measuring
    settle(g, full_s=0.2, display=40.0, renders=WARMUP + 3)
    assert g.measured
    assert cost(g.scale) <= 0.8 * BUDGET  # predicted to fit…
    bigger = LADDER[LADDER.index(g.scale) - 1]
    assert cost(bigger) > 0.8 * BUDGET  # …and the next step up would not


def test_a_fast_rasteriser_gets_full_size() -> None:
    g = ResolutionGovernor(BUDGET, TARGET)
    settle(g, full_s=0.005, display=60.0, renders=WARMUP + 3)
    assert g.scale == 1.0
    assert g.size(1280, 720) == (1280, 720)


def test_late_display_frames_step_down_and_headroom_steps_back_up() -> None:
    g = ResolutionGovernor(BUDGET, TARGET)
    settle(g, full_s=0.2, display=40.0, renders=WARMUP + 3)
    start = g.scale
    settle(g, full_s=0.2, display=20.0, renders=WINDOW + 1)  # the display fell behind
    assert g.scale < start
    lowered = g.scale
    settle(g, full_s=0.2, display=45.0, renders=200)  # plenty of headroom again, renders fit
    assert g.scale > lowered


def test_it_does_not_hunt_between_two_sizes() -> None:
    """A machine where the bigger size is always too slow for the display: after a failed step up
    it waits longer and longer before trying again."""
    g = ResolutionGovernor(BUDGET, TARGET)
    for _ in range(600):  # every size's render fits the budget, but the two largest starve the display
        display = 20.0 if g.scale >= 0.84 else 40.0
        g.observe(cost(g.scale, 0.01), display)
    assert g.scale < 0.84
    assert g.changes <= 15  # without the growing hold: 67 changes, one every window


def test_internal_sizes_are_even_and_keep_the_aspect() -> None:
    g = ResolutionGovernor(BUDGET, TARGET)
    for step in range(len(LADDER)):
        g.step = step
        w, h = g.size(1280, 720)
        assert w % 2 == 0 and h % 2 == 0
        assert abs(w / h - 16 / 9) < 0.05


needs_gl = pytest.mark.skipif(gl_unavailable() is not None and not os.environ.get("CI"), reason=f"{gl_unavailable()}")


@needs_gl
def test_an_adaptive_shader_stage_draws_smaller_and_says_so() -> None:
    spec = RenderSpec(kind="shader", width=320, height=180, adaptive=True, max_render_fps=20.0)
    stage = ShaderStage(ShaderRenderer(320, 180, seed=1), spec)
    frames = []
    for i in range(8):
        f = Features(t=i / 20, rms=0.2, low=1.5, beat=i % 4 == 0, wave=tuple(np.sin(np.arange(64) / 4)))
        frames.append(stage.render(None, f, i / 20))
        stage.observe(0.5, 10.0)  # every render far too slow, the display far behind
    assert frames[0].image.shape[0] < 180  # measuring at a small size from the first frame
    assert frames[-1].image.shape[0] < 180 and frames[-1].image.mean() > 5  # smaller, and drawn
    assert (stage.width, stage.height) == (320, 180)  # the output size the compositor scales to
    assert f"{frames[-1].image.shape[1]}x{frames[-1].image.shape[0]} upscaled" in stage.describe()


@needs_gl
def test_export_draws_at_full_size() -> None:
    stage = ShaderStage(ShaderRenderer(320, 180, seed=1), RenderSpec(kind="shader", width=320, height=180))
    frame = stage.render(None, Features(), 0.0)
    stage.observe(0.5, 10.0)
    assert frame.image.shape == (180, 320, 3) and stage.describe() == "shader"
