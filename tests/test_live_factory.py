"""One seam from settings to stages: the resolver reads the preset once, the builder makes the stages."""

from engine.types import Features
from live.session.factory import build_stages
from live.presets.library import load_preset
from live.session.show import ShowOptions, resolve


def test_procedural_renderer_draws_at_the_composition_size_not_the_sdxl_size():
    preset = load_preset("default")  # an SDXL preset: 512x512
    stages = build_stages(resolve(preset, ShowOptions(renderer="procedural", canvas=(320, 180), live=True)))
    assert (stages.render.width, stages.render.height) == (320, 180)
    h, w, _ = stages.render.render(None, Features(), 0.0).image.shape
    assert abs(w / h - 320 / 180) < 0.05 and w <= 320  # smaller only in a window on software GL
    export = build_stages(resolve(preset, ShowOptions(renderer="procedural", canvas=(320, 180), live=False)))
    assert export.render.render(None, Features(), 0.0).image.shape == (180, 320, 3)


def test_explicit_size_wins_over_the_canvas_for_export():
    preset = load_preset("default")
    spec = resolve(preset, ShowOptions(renderer="procedural", canvas=(320, 180), size=(128, 64)))
    stages = build_stages(spec)
    assert (stages.render.width, stages.render.height) == (128, 64)


def test_each_preset_section_lands_in_the_part_of_the_spec_its_stage_reads():
    preset = load_preset("default").model_copy(update={"name": "x"})
    spec = resolve(preset, ShowOptions(renderer="procedural", seed=9))
    assert spec.render.seed == 9  # the command line wins over [motion].seed
    assert spec.render.feedback == preset.motion.feedback and spec.render.model == preset.model.model
    assert spec.understanding.style == preset.conditioning.style
    assert spec.compositor.crossfade_ms == preset.motion.crossfade_ms
    assert spec.compositor.reactivity.beat_zoom == preset.reactivity.beat_zoom
    assert spec.transitions == preset.transitions


def test_only_a_window_draws_the_shader_look_smaller_on_software_gl(monkeypatch):
    """A one-off render (no `live=True`) promises and gets its full size even on Mesa's rasteriser."""
    import live.session.show

    monkeypatch.setattr(live.session.show, "_software_gl", lambda: True)
    preset = load_preset("default")
    shader = ("shader", "test")
    one_off = resolve(preset, ShowOptions(size=(64, 64)), kind=shader)
    window = resolve(preset, ShowOptions(canvas=(320, 180), live=True), kind=shader)
    assert not one_off.render.adaptive and window.render.adaptive
