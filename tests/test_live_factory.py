"""The factory builds what a show needs from a preset plus command-line options."""

from engine.types import Features
from live.factory import RenderOptions, build_stages
from live.presets.library import load_preset


def test_procedural_renderer_draws_at_the_composition_size_not_the_sdxl_size():
    preset = load_preset("default")  # an SDXL preset: 512x512
    stages, _ = build_stages(preset, RenderOptions(renderer="procedural", canvas=(320, 180)))
    assert (stages.renderer.width, stages.renderer.height) == (320, 180)
    assert stages.renderer.render(None, Features(), 0.0).image.shape == (180, 320, 3)


def test_explicit_size_wins_over_the_canvas_for_export():
    preset = load_preset("default")
    opts = RenderOptions(renderer="procedural", canvas=(320, 180), width=128, height=64)
    stages, _ = build_stages(preset, opts)
    assert (stages.renderer.width, stages.renderer.height) == (128, 64)
