"""The weights-free look in export, as a viewer would judge it: no strobing (≤ 3 large full-frame
flashes in any second), no flat-black first frame, a beat visible in the frame it lands on, and the
GPU compositor giving the numpy compositor's picture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.render.procedural import ProceduralRenderer
from engine.render.shader import ShaderRenderer
from engine.types import Features, Frame
from live.screen.compositor import Compositor, Reactivity
from live.export.run import ExportSettings, frame_path, run_export
from live.screen.flash import FlashLimiter, max_flashes_per_second, mean_luminance
import machine
from audio_synth import SR, click_track, noise_bursts

needs_gl = pytest.mark.usefixtures("gl_context")


@pytest.fixture
def gl_context() -> None:
    """A GL test runs wherever scripts/setup could provision OpenGL and fails if it then has none."""
    machine.gl_context()

W, H, FPS = 160, 96, 30.0


@pytest.fixture(scope="module")
def loud_busy_track(tmp_path_factory) -> Path:
    """Kicks on every beat at 128 BPM under 12 Hz noise bursts: loud, busy, strobe-prone."""
    clicks, _ = click_track(bpm=128.0, seconds=6.0)
    x = np.clip(clicks * 1.2 + noise_bursts(6.0, rate_hz=12.0), -1, 1)
    path = tmp_path_factory.mktemp("audio") / "loud.wav"
    sf.write(path, x, SR)
    return path


def read_frames(out: Path, n: int) -> list[np.ndarray]:
    import pygame

    frames = []
    for i in range(n):
        surf = pygame.image.load(str(frame_path(out, i)))
        frames.append(np.frombuffer(pygame.image.tobytes(surf, "RGB"), np.uint8).reshape(H, W, 3))
    return frames


def export_look(track: Path, out: Path, gl: bool, reactivity=None):
    s = ExportSettings(track=track, out_dir=out, fps=FPS, width=W, height=H, end=5.0,
                       reactivity=reactivity or Reactivity(band_brightness=2.0, beat_zoom=2.0, warp=1.0))
    if gl:
        from live.screen.gl_compositor import GLCompositor

        renderer = ShaderRenderer(W, H, seed=0)
        compositor = lambda: GLCompositor(W, H, s.reactivity, s.crossfade_ms, context=renderer.context)  # noqa: E731
    else:
        renderer, compositor = ProceduralRenderer(W, H, seed=0), None
    run_export(s, renderer, make_compositor=compositor)
    log = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    return read_frames(out, len(log)), log


@pytest.mark.parametrize("gl", [True, False], ids=["shader+gl", "numpy"])
def test_loud_busy_export_has_at_most_3_flashes_a_second_and_no_black_frame(loud_busy_track, tmp_path, gl):
    if gl:
        machine.gl_context()
    frames, _ = export_look(loud_busy_track, tmp_path / "o", gl)
    lums = [mean_luminance(f, step=1) for f in frames]
    assert max_flashes_per_second(lums, FPS) <= 3
    flat = [i for i, f in enumerate(frames) if f.max() < 24 or f.std() < 2]  # black, or one flat colour
    assert not flat, f"flat frames {flat[:5]}"
    assert frames[0].std() > 2, "the first frame must show the first rendered picture"


def test_the_limiter_is_what_keeps_a_strobe_under_3_a_second():
    strobe = [0.05 if i % 3 else 0.5 for i in range(90)]  # 10 Hz full-frame flashing at 30 fps
    assert max_flashes_per_second(strobe, FPS) >= 5
    limiter, shown = FlashLimiter(3.0), []
    for i, lum in enumerate(strobe):
        out = lum * limiter.gain(lum, i / FPS)
        limiter.record(out, i / FPS)
        shown.append(out)
    assert max_flashes_per_second(shown, FPS) <= 3
    assert max(shown) - min(shown) > 0.2, "limited, not flattened: the first flashes still show"


@needs_gl
def test_a_beat_shows_in_the_exported_frame_it_lands_on(tmp_path):
    clicks, _ = click_track(bpm=100.0, seconds=6.0)
    track = tmp_path / "clicks.wav"
    sf.write(track, clicks, SR)
    frames, log = export_look(track, tmp_path / "o", gl=True, reactivity=Reactivity())
    change = [0.0] + [np.abs(frames[i].astype(int) - frames[i - 1]).mean() for i in range(1, len(frames))]
    beats = [i for i, rec in enumerate(log) if rec["features"]["beat"] and i > 0]
    others = [change[i] for i in range(1, len(frames)) if i not in beats and i - 1 not in beats]
    assert len(beats) >= 4
    assert np.median([change[i] for i in beats]) > 2.0 * np.median(others)


@needs_gl
@pytest.mark.parametrize("knobs", [dict(beat_zoom=0, band_brightness=0, band_hue=0, warp=0),
                                   dict(beat_zoom=1, band_brightness=1, band_hue=1, warp=0),
                                   dict(beat_zoom=1, band_brightness=1, band_hue=1, warp=1)])
def test_gpu_compositor_matches_the_numpy_compositor(knobs):
    from live.screen.gl_compositor import GLCompositor

    w, h = 320, 180
    yy, xx = np.mgrid[0:h, 0:w]
    first = np.stack([xx / w * 200 + 20, yy / h * 180 + 30, (xx + yy) / (w + h) * 150 + 50], -1).astype(np.uint8)
    second = first[:, ::-1].copy()
    cpu, gpu = Compositor(w, h, Reactivity(**knobs)), GLCompositor(w, h, Reactivity(**knobs))
    for i in range(20):
        t = i / FPS
        if i in (0, 8):
            frame = Frame(first if i == 0 else second)
            cpu.push(frame, t)
            gpu.push(frame, t)
        f = Features(t=t, beat=i % 10 == 0, beat_phase=(i % 10) / 10, low=1.3, mid=1.0, high=1.6, onset=0.4)
        a, b = cpu.to_array(cpu.compose(f, t)), gpu.to_array(gpu.compose(f, t))
        assert np.abs(a.astype(int) - b).mean() < 4.0, f"frame {i}"
        assert np.percentile(np.abs(a.astype(int) - b), 99) < 24, f"frame {i}"


def test_holding_a_fall_never_lifts_a_dark_frame_to_white_or_flat_grey():
    from live.screen.flash import exposure_lut

    limiter = FlashLimiter(3.0)
    for i in range(40):  # use up the budget with a strobe, then ask to hold a plunge to black
        lum = 0.6 if i % 2 else 0.05
        limiter.record(lum * limiter.gain(lum, i / FPS), i / FPS)
    gain = limiter.gain(0.001, 40 / FPS)
    assert gain <= 4.0
    lut = exposure_lut(4.0 ** (1 / 2.2))  # the largest hold
    assert lut[0] == 0 and lut[255] == 255  # black stays black, white is not exceeded
    assert lut[40] - lut[10] > 40 - 10  # the shadows' contrast grows instead of washing out


def test_a_held_fall_on_a_lit_frame_stays_within_the_threshold_of_the_last_bright_frame():
    """The lift curve is not a plain multiply: the exposure is fitted on the frame, so a held plunge
    after a used-up budget really is held (it was 0.22 for a 0.28 target, a 4th flash on export)."""
    from live.screen.flash import THRESHOLD, exposure_lut, fit_exposure

    limiter = FlashLimiter(3.0)
    for i in range(12):  # use up the budget with a strobe between 0.09 and 0.6
        lum = 0.6 if i % 2 else 0.09
        limiter.record(lum, i / FPS)
    rng = np.random.default_rng(0)
    dark = (rng.random((H, W, 3)) ** 1.5 * 170).astype(np.uint8)  # a lit but dim, textured frame
    lum = mean_luminance(dark)
    gain = limiter.gain(lum, 12 / FPS)
    assert gain > 4.0  # more than the near-black cap: a lit frame may be lifted this far
    held = exposure_lut(fit_exposure(dark, lum * gain))[dark]
    assert 0.6 - mean_luminance(held) < THRESHOLD  # no change registered: no 4th flash
    assert 0.6 - mean_luminance(held, step=1) < THRESHOLD  # nor on every pixel
    assert held.min() == dark.min() and held.max() <= 255  # black stays black
