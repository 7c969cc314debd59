"""The procedural renderer follows the music: cool & slow for calm minor, warm & fast for energetic
major; beats flash; same seed and inputs → same frames."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from engine.render.base import Renderer
from engine.render.procedural import ProceduralRenderer, upscale
from engine.types import Conditioning, Features, Frame

CALM_MINOR = dict(valence=-0.7, arousal=-0.7, rms=0.05, low=0.8, mid=0.9, high=0.7)
ENERGETIC_MAJOR = dict(valence=0.7, arousal=0.8, rms=0.3, low=1.5, mid=1.1, high=1.4)
FPS = 30


def _frames(mood: dict, seconds: float = 2.0, seed: int = 0, beats: bool = False, labels=None, size=(640, 360)):
    r = ProceduralRenderer(*size, seed=seed)
    cond = None
    if labels is not None:
        cond = Conditioning(torch.zeros(1, 77, 8), torch.zeros(1, 8), labels=labels)
    out = []
    for i in range(int(seconds * FPS)):
        t = i / FPS
        beat = beats and i % 15 == 0
        out.append(r.render_small(cond, Features(t=t, beat=beat, **mood), t))
    return out


def _hue_deg(img: np.ndarray) -> np.ndarray:
    """Per-pixel hue (degrees) of pixels that have some colour."""
    rgb = img.reshape(-1, 3).astype(np.float64) / 255
    mx, mn = rgb.max(1), rgb.min(1)
    keep = (mx - mn) > 0.05
    r, g, b = rgb[keep].T
    return np.degrees(np.arctan2(np.sqrt(3) * (g - b), 2 * r - g - b)) % 360


def _circular_mean_deg(h: np.ndarray) -> float:
    rad = np.radians(h)
    return float(np.degrees(np.arctan2(np.sin(rad).mean(), np.cos(rad).mean())) % 360)


def _motion(frames: list[np.ndarray]) -> float:
    a = np.stack(frames).astype(np.float32)
    return float(np.abs(np.diff(a, axis=0)).mean())


def test_is_a_renderer_and_renders_full_size() -> None:
    r = ProceduralRenderer(1280, 720, seed=3)
    assert isinstance(r, Renderer) and r.name == "procedural"
    frame = r.render(None, Features(), 0.0)
    assert isinstance(frame, Frame)
    assert frame.image.shape == (720, 1280, 3) and frame.image.dtype == np.uint8
    assert frame.size == (1280, 720) and frame.seed == 3 and frame.renderer == "procedural"
    assert frame.image.std() > 10  # an image, not a flat fill
    odd = ProceduralRenderer(333, 201).render(None, Features(), 0.0)
    assert odd.image.shape == (201, 333, 3)


def test_palette_warm_for_positive_cool_for_negative() -> None:
    calm = _frames(CALM_MINOR, seconds=1.0)[-1]
    energetic = _frames(ENERGETIC_MAJOR, seconds=1.0)[-1]
    calm_hue, warm_hue = _circular_mean_deg(_hue_deg(calm)), _circular_mean_deg(_hue_deg(energetic))
    assert 180 <= calm_hue <= 270, calm_hue  # cyan → blue
    assert warm_hue <= 60 or warm_hue >= 330, warm_hue  # red → orange → yellow
    calm_rgb, warm_rgb = calm.reshape(-1, 3).mean(0), energetic.reshape(-1, 3).mean(0)
    assert calm_rgb[2] > calm_rgb[0] + 20 and warm_rgb[0] > warm_rgb[2] + 40


def test_energetic_moves_faster_than_calm() -> None:
    calm = _motion(_frames(CALM_MINOR))
    energetic = _motion(_frames(ENERGETIC_MAJOR))
    assert energetic > 3 * calm, (calm, energetic)
    assert calm > 0.05  # calm still evolves


def test_mood_glides_instead_of_jumping() -> None:
    r = ProceduralRenderer(320, 180)
    r.render_small(None, Features(**CALM_MINOR), 0.0)
    before = r.render_small(None, Features(**CALM_MINOR), 1 / FPS)
    after = r.render_small(None, Features(**ENERGETIC_MAJOR), 2 / FPS)
    later = [r.render_small(None, Features(**ENERGETIC_MAJOR), (3 + i) / FPS) for i in range(120)][-1]
    jump = np.abs(after.astype(int) - before.astype(int)).mean()
    assert jump < 12  # one frame after the switch: still mostly the old look
    assert later.reshape(-1, 3).mean(0)[0] > after.reshape(-1, 3).mean(0)[0] + 20  # then it warms up


def test_beat_flashes() -> None:
    a, b = ProceduralRenderer(320, 180, seed=1), ProceduralRenderer(320, 180, seed=1)
    for i in range(10):
        f = Features(t=i / FPS, **ENERGETIC_MAJOR)
        a.render_small(None, f, i / FPS), b.render_small(None, f, i / FPS)
    t = 10 / FPS
    plain = a.render_small(None, Features(t=t, **ENERGETIC_MAJOR), t)
    beat = b.render_small(None, Features(t=t, beat=True, **ENERGETIC_MAJOR), t)
    assert beat.mean() > plain.mean() * 1.15


def test_labels_pick_a_motif() -> None:
    plain = _frames(ENERGETIC_MAJOR, seconds=0.5)[-1]
    techno = _frames(ENERGETIC_MAJOR, seconds=0.5, labels={"techno": 0.9, "dark": 0.1})[-1]
    unrelated = _frames(ENERGETIC_MAJOR, seconds=0.5, labels={"zzz": 1.0})[-1]
    assert np.abs(techno.astype(int) - plain.astype(int)).mean() > 10
    assert np.array_equal(unrelated, plain)  # unknown labels keep the default motif


def test_deterministic_for_seed_and_inputs() -> None:
    a = _frames(ENERGETIC_MAJOR, seconds=0.5, seed=7, beats=True)
    b = _frames(ENERGETIC_MAJOR, seconds=0.5, seed=7, beats=True)
    c = _frames(ENERGETIC_MAJOR, seconds=0.5, seed=8, beats=True)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert np.abs(a[-1].astype(int) - c[-1].astype(int)).mean() > 10


def test_reset_restarts_the_animation() -> None:
    r = ProceduralRenderer(320, 180, seed=5)
    first = [r.render(None, Features(**ENERGETIC_MAJOR), i / FPS).image for i in range(5)]
    r.reset(5)
    again = [r.render(None, Features(**ENERGETIC_MAJOR), i / FPS).image for i in range(5)]
    assert all(np.array_equal(x, y) for x, y in zip(first, again))


def test_bad_inputs_do_not_crash() -> None:
    r = ProceduralRenderer(320, 180)
    r.render(None, Features(valence=float("nan"), arousal=float("inf"), low=-3.0), 5.0)
    img = r.render(None, Features(), 1.0).image  # time went backwards (a seek): no jump, no crash
    assert np.isfinite(img).all() and img.shape == (180, 320, 3)


def test_upscale_is_smooth_and_sized() -> None:
    small = np.zeros((4, 4, 3), np.uint8)
    small[:, 2:] = 200
    big = upscale(small, 16, 16)
    assert big.shape == (16, 16, 3)
    row = big[8, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 200 and 0 < row[8] < 200  # bilinear ramp, not a hard step


def test_small_frames_go_through_the_compositor() -> None:
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    from live.screen.compositor import Compositor

    r = ProceduralRenderer(1280, 720)
    small = r.render_small(None, Features(**ENERGETIC_MAJOR), 0.0)
    comp = Compositor(1280, 720)
    comp.push(Frame(image=small, renderer=r.name), 0.0)
    out = comp.to_array(comp.compose(Features(**ENERGETIC_MAJOR), 1.0))
    assert out.shape == (720, 1280, 3)
    assert out.reshape(-1, 3).mean(0)[0] > out.reshape(-1, 3).mean(0)[2]  # still warm after scaling
