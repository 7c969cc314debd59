"""The shader renderer with a real moderngl context (EGL; Mesa's llvmpipe on CI), judged by what a
viewer would notice: every motif draws crisp structure, a seed repeats, calm and energetic music
look and move differently, a beat shows within one frame."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest

from engine.render.shader import Look, ShaderRenderer
from engine.render.shader.director import DRAWN, MOTIFS
from engine.types import Features
import machine



@pytest.fixture(autouse=True)
def gl_context() -> None:
    """scripts/setup installs Mesa: where it could, a missing context is a failure, not a skip."""
    machine.gl_context()

W, H = 256, 144


def laplacian_variance(rgb: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of the grey image (0..255): blur → small, edges → big."""
    g = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4 * g[1:-1, 1:-1]
    return float(lap.var())


def music(i: int, fps: float = 30.0, energetic: bool = True, beat_every: int = 15) -> Features:
    t = i / fps
    rng = np.random.default_rng(i)
    level = 1.0 if energetic else 0.25
    return Features(
        t=t, rms=0.25 * level, onset=0.6 * level, low=1.0 + 0.8 * level, mid=1.0, high=1.0 + 0.5 * level,
        beat=i % beat_every == 0, beat_phase=(i % beat_every) / beat_every,
        valence=0.6 if energetic else -0.6, arousal=0.75 if energetic else -0.7,
        spectrum=tuple(rng.uniform(0.4, 2.0 * level + 0.5, 16)), wave=tuple(np.sin(np.arange(64) / 5 + t * 7) * level),
    )


def play(renderer: ShaderRenderer, n: int, **kw) -> list[np.ndarray]:
    return [renderer.render(None, music(i, **kw), i / 30).image.copy() for i in range(n)]


def solo(motif: str) -> Look:
    return Look(motifs={m: (1.0 if m in (motif, "warp") else 0.0) for m in MOTIFS})


@pytest.mark.parametrize("motif", DRAWN)
def test_every_motif_draws_crisp_structure_of_its_own(motif):
    frames = {m: play(ShaderRenderer(W, H, seed=1, look=solo(m)), 12)[-1] for m in {motif, "ribbons", "tunnel"}}
    img = frames[motif]
    assert img.shape == (H, W, 3) and img.dtype == np.uint8
    assert img.mean() > 12, "the motif is not visible"
    assert laplacian_variance(img) > 20, "no crisp structure"
    for other, o in frames.items():
        if other != motif:
            assert np.abs(img.astype(int) - o).mean() > 8, f"{motif} looks like {other}"


def test_a_seed_repeats_exactly_and_another_seed_differs():
    a = play(ShaderRenderer(W, H, seed=7), 10)
    b = play(ShaderRenderer(W, H, seed=7), 10)
    c = play(ShaderRenderer(W, H, seed=8), 10)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert np.abs(a[-1].astype(int) - c[-1]).mean() > 5
    r = ShaderRenderer(W, H, seed=7)
    play(r, 5)
    r.reset(7)  # reset forgets the feedback buffer and the animation: the same frames again
    assert all(np.array_equal(x, y) for x, y in zip(a, play(r, 10)))


def _hue_saturation(img: np.ndarray) -> tuple[float, float]:
    mean = img.reshape(-1, 3).astype(np.float64)
    bright = mean[mean.max(axis=1) > 40] / 255.0
    r, g, b = bright.mean(axis=0)
    h, s, _ = colorsys.rgb_to_hsv(r, g, b)
    sat = np.mean([colorsys.rgb_to_hsv(*px)[1] for px in bright[:: max(1, len(bright) // 500)]])
    return h * 360, float(sat)


def test_calm_and_energetic_music_differ_in_hue_saturation_and_motion():
    calm = play(ShaderRenderer(W, H, seed=3), 40, energetic=False)
    hot = play(ShaderRenderer(W, H, seed=3), 40, energetic=True)
    (h_calm, s_calm), (h_hot, s_hot) = _hue_saturation(calm[-1]), _hue_saturation(hot[-1])
    assert 170 < h_calm < 260, f"calm minor music should be cool (blue/teal), hue {h_calm:.0f}"
    assert h_hot < 60 or h_hot > 330, f"energetic major music should be warm, hue {h_hot:.0f}"
    assert s_hot > s_calm
    motion = [np.mean([np.abs(f[i + 1].astype(int) - f[i]).mean() for i in range(20, 39)]) for f in (calm, hot)]
    assert motion[1] > 1.5 * motion[0], f"energetic music should move faster: {motion}"


def test_a_beat_shows_within_one_frame():
    def run(beat_at: int | None) -> list[np.ndarray]:
        r = ShaderRenderer(W, H, seed=2)
        out = []
        for i in range(12):
            f = music(i, beat_every=10_000)
            f = Features(**{**f.__dict__, "beat": i == beat_at, "beat_phase": 0.0 if i == beat_at else 0.5})
            out.append(r.render(None, f, i / 30).image.copy())
        return out

    plain, beat = run(None), run(8)
    assert np.array_equal(plain[7], beat[7])
    assert np.abs(beat[8].astype(int) - plain[8]).mean() > 4, "the beat frame looks like any other"


def test_a_preset_look_applies_on_the_next_frame():
    r = ShaderRenderer(W, H, seed=1, look=solo("tunnel"))
    play(r, 3)

    class Section:  # what a preset's [procedural] section carries
        motifs = {m: (1.0 if m in ("kaleidoscope", "warp") else 0.0) for m in MOTIFS}
        palette, line_width, symmetry, trails = "mono", 3.0, 8, 0.0

    class Preset:
        procedural = Section

    r.apply_preset(Preset)
    img = r.render(None, music(3), 0.1).image
    assert r.director.look.palette == "mono" and r.director._targets["kaleidoscope"] == 1.0
    assert np.abs(img[..., 0].astype(int) - img[..., 2]).mean() < 6, "mono palette should be grey"


def test_renders_at_display_resolution_with_no_upscaling():
    img = play(ShaderRenderer(1280, 720, seed=1, look=solo("ribbons")), 3)[-1]
    assert img.shape == (720, 1280, 3)
    assert laplacian_variance(img) > 20
