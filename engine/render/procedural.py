"""The weights-free renderer: an evolving abstract image that follows the music.

It is what `beatcanvas play` shows on a machine without a GPU or SDXL weights, and what a show
falls back to when the GPU dies, so it has the same interface as the SDXL renderer
(`engine.render.base.Renderer`) and must be cheap: the field is computed with numpy at a low internal
resolution (1/4 of the output by default) and upscaled bilinearly.

How the music drives it (the seed thesis found the colour/valence link, so valence owns the palette):
- valence  → palette: warm (crimson, orange, gold) when positive, cool (navy, teal, ice) when negative,
  a violet in between;
- arousal  → motion speed, contrast and complexity (how many finer layers of the field are mixed in);
  the speed is a blend of a slow and a fast animation of the same field, each a fixed rate times the
  track time, so the picture at t does not depend on where rendering started (an export's chunks
  start from short warm-ups and must meet without a seam);
- beat     → a brightness pulse and a ring that expands from the centre;
- low band → warp depth; high band → fine shimmer; mid band → a small palette shift;
- `conditioning.labels` (when CLAP is running) → motif: flowing bands, pulsing rings or soft cells.

Feature values are smoothed over time inside the renderer so the picture glides instead of flickering;
everything depends only on the seed and the sequence of (features, t) passed in, so two runs with one
seed give the same frames (export relies on this).

Speed: `render_small()` returns the internal-resolution array (e.g. 320×180) for a compositor that scales
on its own (pygame's `smoothscale`); `render()` returns the full-size frame.
"""

from __future__ import annotations

import os

import logging
import math

import numpy as np

from engine.types import Conditioning, Features, Frame

log = logging.getLogger(__name__)

# Palette stops, dark → light, RGB in 0..1.
WARM = np.array(
    [(0.10, 0.02, 0.04), (0.42, 0.04, 0.10), (0.82, 0.22, 0.08), (0.98, 0.58, 0.16), (1.00, 0.88, 0.60)],
    np.float32,
)
NEUTRAL = np.array(
    [(0.05, 0.02, 0.09), (0.26, 0.08, 0.36), (0.58, 0.22, 0.52), (0.86, 0.52, 0.62), (0.98, 0.88, 0.86)],
    np.float32,
)
COOL = np.array(
    [(0.01, 0.03, 0.09), (0.04, 0.10, 0.33), (0.06, 0.38, 0.58), (0.30, 0.72, 0.84), (0.84, 0.95, 1.00)],
    np.float32,
)

MOTIFS = ("flow", "rings", "cells")
# Label keywords → motif. Labels come from the zero-shot head's descriptor bank (genre, mood, ...).
MOTIF_KEYWORDS = {
    "rings": ("techno", "house", "edm", "electronic", "dance", "trance", "dubstep", "drum", "beat", "club",
              "hip hop", "hip-hop", "trap", "disco", "pulse"),
    "cells": ("ambient", "classical", "piano", "acoustic", "folk", "jazz", "strings", "orchestra", "calm",
              "soft", "chill", "lofi", "lo-fi", "organic", "nature"),
}

_LAYER_FREQS = (1.0, 1.7, 2.9, 4.6, 7.3)  # relative spatial frequencies, coarse → fine
_SMOOTH_S = 1.2  # time constant of the mood smoothing (s): palette and speed glide, never jump
_MOTIF_SMOOTH_S = 2.5
_BEAT_DECAY_S = 0.18
_SLOW_RATE, _FAST_RATE = 0.16, 1.0  # animation phase per second of track, calm and energetic
_MAX_DT = 0.25  # a seek or a stall must not fling the animation forward


def _palette_lut(valence: float, shift: float) -> np.ndarray:
    """256×3 float32 colour lookup for a valence in -1..1 (cool ↔ violet ↔ warm)."""
    v = float(np.clip(valence, -1.0, 1.0))
    # Ease-out with a gain: estimated valence rarely leaves ±0.5, and the neutral violet should be brief.
    w = math.copysign(1.0 - (1.0 - min(1.0, 1.4 * abs(v))) ** 2, v)
    stops = NEUTRAL + (WARM - NEUTRAL) * w if w >= 0 else NEUTRAL + (COOL - NEUTRAL) * (-w)
    pos = np.linspace(0.0, 1.0, len(stops), dtype=np.float32)
    x = np.clip(np.linspace(0.0, 1.0, 256, dtype=np.float32) + shift, 0.0, 1.0)
    return np.stack([np.interp(x, pos, stops[:, c]) for c in range(3)], axis=1).astype(np.float32)


def motif_weights(labels: dict[str, float] | None) -> np.ndarray:
    """Target weights for (flow, rings, cells) from the head's labels; flow when nothing matches."""
    w = np.array([1.0, 0.0, 0.0], np.float32)
    if not labels:
        return w
    for label, weight in labels.items():
        name = label.lower()
        for i, motif in enumerate(MOTIFS):
            if any(k in name for k in MOTIF_KEYWORDS.get(motif, ())):
                w[i] += max(float(weight), 0.0) * 2.0
    return w / w.sum()


def upscale(small: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear HxWx3 uint8 upscale with pygame's SIMD smoothscale (~1.3 ms 320x180 -> 1280x720 here;
    no display needed, and unlike torch's kernel it costs no second of import in a weights-free show)."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    src = pygame.image.frombuffer(np.ascontiguousarray(small), (small.shape[1], small.shape[0]), "RGB")
    big = pygame.transform.smoothscale(src, (width, height))
    out = np.empty((height, width, 3), np.uint8)
    out[:] = pygame.surfarray.pixels3d(big).transpose(1, 0, 2)
    return out


class ProceduralRenderer:
    """Abstract, music-driven images without weights. See the module docstring for the mapping."""

    name = "procedural"

    def __init__(self, width: int = 1280, height: int = 720, seed: int = 0, scale: int = 4) -> None:
        self.width = int(width)
        self.height = int(height)
        self.scale = max(1, int(scale))
        self.internal_size = (max(16, self.width // self.scale), max(16, self.height // self.scale))
        w, h = self.internal_size
        aspect = self.width / self.height
        self._x = np.linspace(-aspect, aspect, w, dtype=np.float32)[None, :]
        self._y = np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None]
        r2 = (self._x / aspect) ** 2 + self._y**2
        self._vignette = (1.0 - 0.45 * np.clip(r2 / 2.0, 0, 1) ** 1.5).astype(np.float32)
        self._radius = np.sqrt(self._x * self._x + self._y * self._y)  # the beat ring's distance field
        self.reset(seed)

    def reset(self, seed: int) -> None:
        """Forget the animation phase and smoothed mood; derive the field's shape from `seed`."""
        self.seed = int(seed)
        rng = np.random.default_rng(self.seed)
        angles = rng.uniform(0, 2 * np.pi, len(_LAYER_FREQS))
        self._dirs = np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)
        self._offsets = rng.uniform(0, 2 * np.pi, 16).astype(np.float32)
        self._omegas = rng.uniform(0.6, 1.4, len(_LAYER_FREQS)).astype(np.float32) * rng.choice(
            [-1.0, 1.0], len(_LAYER_FREQS)
        ).astype(np.float32)
        self._base_k = float(rng.uniform(1.6, 2.4))
        self._cells = rng.uniform(0.5, 1.6, (5, 4)).astype(np.float32)  # Lissajous rates/phases
        self._last_t: float | None = None
        self._beat_env = 0.0
        self._mood: np.ndarray | None = None  # smoothed valence, arousal, low, mid, high
        self._motif = motif_weights(None)

    # --- state -------------------------------------------------------------------------------
    def _advance(self, features: Features, labels: dict[str, float] | None, t: float) -> tuple[float, np.ndarray]:
        dt = 0.0 if self._last_t is None else float(np.clip(t - self._last_t, 0.0, _MAX_DT))
        self._last_t = t
        target = np.array(
            [features.valence, features.arousal, features.low, features.mid, features.high], np.float32
        )
        target = np.nan_to_num(target, nan=0.0, posinf=4.0, neginf=-4.0)
        if self._mood is None:  # the first frame starts at the music, not at a neutral default
            mood = target
            self._motif = motif_weights(labels)
        else:
            mood = self._mood + (target - self._mood) * (1.0 - math.exp(-dt / _SMOOTH_S))
            self._motif = self._motif + (motif_weights(labels) - self._motif) * (
                1.0 - math.exp(-dt / _MOTIF_SMOOTH_S)
            )
        self._mood = mood
        arousal01 = float(np.clip((mood[1] + 1) / 2, 0, 1))
        self._beat_env *= math.exp(-dt / _BEAT_DECAY_S)
        if features.beat:
            self._beat_env = 1.0
        return arousal01, mood

    # --- drawing -----------------------------------------------------------------------------
    def render_small(self, conditioning: Conditioning | None, features: Features, t: float) -> np.ndarray:
        """The frame at the internal resolution (`internal_size`), HxWx3 uint8; advances the state."""
        labels = conditioning.labels if conditioning is not None else None
        c, mood = self._advance(features, labels, t)
        valence, _, low, mid, high = (float(v) for v in mood)
        low, mid, high = (float(np.clip(b, 0.0, 3.0)) for b in (low, mid, high))
        # Energetic music shows the fast animation, calm music the slow one, in between a blend.
        fast = float(np.clip((c - 0.2) / 0.6, 0.0, 1.0))
        fast = fast * fast * (3.0 - 2.0 * fast)
        field = self._field(t * _SLOW_RATE, c, low) if fast < 0.99 else 0.0
        if fast > 0.01:
            field = (1.0 - fast) * field + fast * self._field(t * _FAST_RATE, c, low)
        value = 0.5 + 0.5 * np.tanh((1.1 + 1.6 * c) * field)
        # Brightness: vignette, energy, the beat pulse and its expanding ring, high-band shimmer.
        # Beats accent energetic music; a pad's occasional "beat" should only glimmer.
        beat = self._beat_env * (0.3 + 0.7 * c)
        shade = self._vignette * (0.62 + 0.28 * c + 0.30 * beat)
        if beat > 0.02:
            radius = 0.15 + 1.6 * (1.0 - self._beat_env)
            shade = shade + 0.45 * beat * np.exp(-(((self._radius - radius) / 0.09) ** 2))
        if high > 1.05:
            shade = shade * (1.0 + 0.12 * min(high - 1.0, 1.5) * np.sin(9.0 * (self._x - self._y) + 5.0 * _FAST_RATE * t))

        lut = _palette_lut(valence, 0.05 * (mid - 1.0))
        idx = (value * 255.0).astype(np.uint8)
        rgb = lut[idx] * shade[..., None]
        return np.clip(rgb * 255.0, 0, 255).astype(np.uint8)

    def _field(self, ph: float, c: float, low: float) -> np.ndarray:
        """The pattern (about -1..1) at animation phase `ph`: domain-warped plane waves and the motif."""
        o = self._offsets
        x, y = self._x, self._y

        # Two-level domain warp: the first level is separable (1-D sines, broadcast), the second 2-D.
        warp = (0.30 + 0.45 * c) * (0.85 + 0.15 * low)
        u = x + warp * np.sin(1.3 * y + 1.1 * ph + o[0])
        v = y + warp * np.sin(1.7 * x - 0.9 * ph + o[1])
        u2 = u + 0.35 * warp * np.sin(2.1 * v + 1.3 * ph + o[2])
        v2 = v + 0.35 * warp * np.sin(2.4 * u - 0.7 * ph + o[3])

        # Flow: a sum of plane waves; arousal opens up the finer layers.
        field = np.zeros_like(u2)
        total = 0.0
        mw = self._motif
        # Flow is the base every motif is drawn over; the other motifs take over part of its weight.
        for i, f in enumerate(_LAYER_FREQS):
            wi = float(np.clip(c * len(_LAYER_FREQS) - i + 1.5, 0.0, 1.0)) / (1.0 + 0.35 * i)
            if wi <= 0.0:
                continue
            d = self._dirs[i]
            arg = self._base_k * f * (d[0] * u2 + d[1] * v2) + self._omegas[i] * ph * (1 + 0.3 * i) + o[4 + i]
            field += wi * np.sin(arg)
            total += wi
        field *= (1.0 - 0.6 * (mw[1] + mw[2])) / max(total, 1e-6)
        if mw[1] > 0.01:  # rings: concentric waves travelling outwards
            r = np.sqrt(u2 * u2 + v2 * v2)
            field += mw[1] * np.sin((5.0 + 6.0 * c) * r - 3.0 * ph + o[10])
        if mw[2] > 0.01:  # cells: soft blobs on Lissajous paths
            blobs = np.zeros_like(u2)
            for a, b, p, q in self._cells:
                cx = 1.2 * math.sin(a * ph * 0.7 + p * 3)
                cy = 0.7 * math.sin(b * ph * 0.6 + q * 3)
                blobs += np.exp(-((u2 - cx) ** 2 + (v2 - cy) ** 2) * (3.0 + 2.0 * c))
            field += mw[2] * (2.0 * np.tanh(blobs) - 1.0)
        return field

    def render(self, conditioning: Conditioning | None, features: Features, t: float) -> Frame:
        """The full-size frame (`height`×`width`×3 uint8) for time `t`."""
        small = self.render_small(conditioning, features, t)
        return Frame(image=upscale(small, self.width, self.height), t=t, seed=self.seed, renderer=self.name)
