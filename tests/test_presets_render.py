"""Every shipped preset loads and renders a frame with the tiny profile, through the same factory
that `play`, `live`, `demo` and `export` use."""

import numpy as np
import pytest

from engine.audio.io import window_at
from engine.types import Features
from live.session.factory import build_stages
from live.presets.library import BUILTIN_DIR, load_preset
from live.session.show import ShowOptions, resolve

BUILT_IN = sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))


def test_library_ships_at_least_ten_presets():
    assert len(BUILT_IN) >= 10


@pytest.fixture
def shared_tiny_sdxl(monkeypatch, tiny_components):
    """Build the tiny SDXL components once for all presets (the renderer never mutates them)."""
    import engine.models.profiles

    monkeypatch.setattr(engine.models.profiles, "build_sdxl", lambda *a, **k: tiny_components[2])


@pytest.mark.parametrize("name", BUILT_IN)
def test_preset_renders_one_frame_with_tiny_profile(name, shared_tiny_sdxl):
    preset = load_preset(BUILTIN_DIR / f"{name}.toml")
    stages = build_stages(resolve(preset, ShowOptions(profile="tiny", size=(64, 64), device="cpu")))
    t = 10.0
    rng = np.random.default_rng(0)
    track = (0.2 * rng.standard_normal(int(48_000 * t))).astype(np.float32)
    conditioning = stages.understanding.step(window_at(track, t)) if stages.understanding else None
    frame = stages.render.render(conditioning, Features(t=t, rms=0.2, arousal=0.5, valence=0.3), t)
    assert frame.image.dtype == np.uint8 and frame.image.shape == (64, 64, 3)
    assert frame.image.std() > 0  # a picture, not a blank
