"""The director: music in, scene out. Which motifs show, in which colours, how fast things move.

Pure Python and deterministic (the seed and the sequence of features decide everything), so export
reproduces a show and tests run without a GPU. The shader renderer turns a `Scene` into uniforms.

- Mood → palette: valence picks warm or cool, arousal picks calm or vivid (the seed thesis's
  colour–valence link); four designed anchors are blended, never a muddy average of all four.
- Mood and labels → motifs: each motif has an affinity for calm and for energetic music and for
  a few label words (when CLAP runs); the best two share the screen over the feedback warp.
- Sections → scene changes: a jump in loudness or arousal (a drop, the end of a build) or a scene
  that has run 32 beats asks for a change; it happens on the next bar line (every 4th beat, or a
  downbeat when the caller knows them), so the picture turns over with the music, not mid-phrase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.audio.stems import StemRouting
from engine.types import Features

MOTIFS = ("warp", "ink", "kaleidoscope", "tunnel", "ribbons", "particles")
DRAWN = MOTIFS[1:]  # the warp is the feedback every motif is drawn into, not a scene choice

# (affinity when calm, affinity when energetic)
AFFINITY = {
    "ink": (1.0, 0.25),
    "kaleidoscope": (0.8, 0.6),
    "tunnel": (0.2, 1.0),
    "ribbons": (0.7, 0.8),
    "particles": (0.35, 0.9),
}
LABEL_WORDS = {
    "ink": ("ambient", "classical", "piano", "calm", "soft", "chill", "lofi", "lo-fi", "jazz", "folk", "dream"),
    "kaleidoscope": ("psychedelic", "trance", "world", "strings", "orchestra", "choir", "ethereal", "indian"),
    "tunnel": ("techno", "edm", "electronic", "trance", "drum", "club", "dubstep", "epic", "cinematic", "industrial"),
    "ribbons": ("rock", "metal", "guitar", "hip hop", "hip-hop", "funk", "pop", "vocal", "bass", "orchestral"),
    "particles": ("house", "dance", "disco", "synth", "trap", "energetic", "battle", "space", "sparkle"),
}

# Palette anchors, dark → light, display RGB 0..1: [cool, warm] × [calm, vivid].
PALETTES = {
    "ocean": ((0.01, 0.02, 0.06), (0.02, 0.10, 0.26), (0.04, 0.36, 0.56), (0.32, 0.70, 0.86), (0.86, 0.96, 1.00)),
    "neon": ((0.02, 0.00, 0.08), (0.16, 0.04, 0.58), (0.00, 0.48, 1.00), (0.16, 0.95, 1.00), (1.00, 0.42, 0.92)),
    "dusk": ((0.06, 0.02, 0.04), (0.36, 0.10, 0.18), (0.78, 0.40, 0.30), (0.96, 0.72, 0.48), (1.00, 0.94, 0.82)),
    "ember": ((0.08, 0.00, 0.00), (0.62, 0.05, 0.02), (1.00, 0.36, 0.00), (1.00, 0.76, 0.10), (1.00, 1.00, 0.76)),
    "mono": ((0.02, 0.02, 0.02), (0.20, 0.20, 0.22), (0.50, 0.50, 0.52), (0.80, 0.80, 0.82), (1.00, 1.00, 1.00)),
}
PALETTE_CHOICES = ("auto", *PALETTES)

_MOOD_TAU = 1.5  # s: palette and speed glide
_WEIGHT_TAU = 0.9  # s: a scene change crossfades the motifs over about 2 s
_BEAT_DECAY = 0.22  # s
_MAX_DT = 0.25  # a stall or a seek must not fling the animation
_SCENE_BEATS = 32
_CHANGE_DB = 6.0
_CHANGE_AROUSAL = 0.35


@dataclass(frozen=True)
class Look:
    """The preset's say in the weights-free look (`[procedural]`); every field has a default."""

    motifs: dict[str, float] = field(default_factory=lambda: {m: 1.0 for m in MOTIFS})
    palette: str = "auto"
    line_width: float = 2.0  # px at 720 lines; scaled with the output height
    symmetry: int = 6
    trails: float = 1.0  # 0 = no feedback trails, 2 = long trails
    stems: StemRouting = StemRouting()  # the warp stem turns and pushes the feedback; the mood stem vivifies

    def weight(self, motif: str) -> float:
        return float(self.motifs.get(motif, 1.0))

    @classmethod
    def from_settings(cls, s: Any) -> Look:
        """From a preset's validated `[procedural]` section (same field names)."""
        return cls(motifs=dict(s.motifs), palette=s.palette, line_width=s.line_width, symmetry=s.symmetry,
                   trails=s.trails)


@dataclass(frozen=True)
class Scene:
    """Everything a frame needs from the director (the shader's uniforms, in Python)."""

    weights: dict[str, float]
    palette: np.ndarray  # 5×3 float32, dark → light
    saturation: float
    time: float  # animation phase (advances faster when the music is energetic)
    beat: float  # 1 on the beat, decays
    bass: float
    onset: float
    high: float
    zoom: float  # per-frame feedback zoom factor (>1 pushes the picture outwards)
    rotate: float  # per-frame feedback rotation, radians
    decay: float  # per-frame feedback persistence 0..1
    flow: float  # flow-field strength (ink)
    symmetry: int
    line_width: float
    scene_index: int
    valence: float
    arousal: float


def _ease(x: float, gain: float = 3.0) -> float:
    """-1..1 → 0..1 with a short middle: moods sit on one side or the other, not in grey."""
    return 0.5 + 0.5 * math.tanh(gain * x) / math.tanh(gain)


def palette_for(valence: float, arousal: float, name: str = "auto") -> tuple[np.ndarray, float]:
    """(5×3 palette, saturation) for a mood; a named palette ignores the mood's hue."""
    vivid = _ease(arousal, 2.0)
    saturation = 0.7 + 0.45 * vivid
    if name != "auto":
        return np.asarray(PALETTES[name], np.float32), saturation
    warm = _ease(valence)
    cool = (1 - vivid) * np.asarray(PALETTES["ocean"]) + vivid * np.asarray(PALETTES["neon"])
    hot = (1 - vivid) * np.asarray(PALETTES["dusk"]) + vivid * np.asarray(PALETTES["ember"])
    return ((1 - warm) * cool + warm * hot).astype(np.float32), saturation


def label_boost(labels: dict[str, float] | None) -> dict[str, float]:
    """How much the head's labels favour each motif (0 = no opinion)."""
    boost = {m: 0.0 for m in DRAWN}
    for label, weight in (labels or {}).items():
        text = str(label).lower()
        for motif, words in LABEL_WORDS.items():
            if any(w in text for w in words):
                boost[motif] += max(float(weight), 0.0)
    return boost


class Director:
    """Turns (features, labels, t) into a `Scene`, one call per frame. Not thread-safe."""

    def __init__(self, look: Look | None = None, seed: int = 0) -> None:
        self.look = look or Look()
        self.reset(seed)

    def reset(self, seed: int) -> None:
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)
        self._last_t: float | None = None
        self._mood = np.zeros(2)  # valence, arousal (smoothed)
        self._energy_db = -60.0  # ~0.4 s loudness follower
        self._time = float(self._rng.uniform(0, 100))
        self._beat = 0.0
        self._beats = 0
        self._scene_index = -1
        self._scene_start = (0, -60.0, 0.0)  # beat count, energy, arousal at the last change
        self._change_wanted = False
        self._spin = float(self._rng.choice([-1.0, 1.0]))
        self._targets: dict[str, float] = {}
        self._weights: dict[str, float] = {}

    def set_look(self, look: Look) -> None:
        """A hot-reloaded preset, from any thread: the next frame starts a scene with it."""
        self._pending_look = look

    _pending_look: Look | None = None

    # -- scene choice ---------------------------------------------------------------------------
    def _scores(self, labels: dict[str, float] | None) -> dict[str, float]:
        vivid = _ease(self._mood[1], 2.0)
        boost = label_boost(labels)
        jitter = self._rng.uniform(0.75, 1.25, len(DRAWN))  # variety between scenes, seeded
        return {
            m: ((1 - vivid) * AFFINITY[m][0] + vivid * AFFINITY[m][1]) * (1 + 2 * boost[m]) * j * self.look.weight(m)
            for m, j in zip(DRAWN, jitter)
        }

    def _choose(self, labels: dict[str, float] | None, keep_primary: bool) -> None:
        scores = self._scores(labels)
        ranked = [m for m in sorted(scores, key=lambda m: -scores[m]) if scores[m] > 0]
        primary = max(self._targets, key=lambda m: self._targets[m] if m != "warp" else -1, default=None)
        if not keep_primary and primary in ranked and len(ranked) > 1:
            ranked.remove(primary)  # a change of scene shows something new
        chosen = ranked[:2]
        vivid = _ease(self._mood[1], 2.0)
        self._targets = {m: 0.0 for m in DRAWN}
        for rank, m in enumerate(chosen):
            self._targets[m] = 1.0 if rank == 0 else 0.6
        self._targets["warp"] = (0.4 + 0.6 * vivid) * self.look.weight("warp")
        self._scene_index += 1
        self._scene_start = (self._beats, self._energy_db, float(self._mood[1]))
        self._spin = -self._spin
        self._change_wanted = False

    def _section_changed(self) -> bool:
        beats0, energy0, arousal0 = self._scene_start
        return (
            abs(self._energy_db - energy0) > _CHANGE_DB
            or abs(self._mood[1] - arousal0) > _CHANGE_AROUSAL
            or self._beats - beats0 >= _SCENE_BEATS
        )

    # -- per frame ----------------------------------------------------------------------------------
    def step(self, features: Features, labels: dict[str, float] | None, t: float, downbeat: bool | None = None) -> Scene:
        """The scene for time `t`. `downbeat`: the caller's bar line when it knows one; otherwise
        every 4th beat counts as one."""
        last, first = self._last_t, self._last_t is None
        dt = 0.0 if last is None else float(np.clip(t - last, 0.0, _MAX_DT))
        self._last_t = t
        f = features
        mood = np.nan_to_num(np.array([f.valence, f.arousal], float), nan=0.0).clip(-1, 1)
        db = 20 * math.log10(max(float(f.rms) if math.isfinite(f.rms) else 0.0, 1e-5))
        if self._pending_look is not None and not first:
            self.look, self._pending_look = self._pending_look, None
            self._choose(labels, keep_primary=False)
        if first:
            self._mood, self._energy_db = mood, db
            self._choose(labels, keep_primary=True)
            self._weights = dict(self._targets)
        else:
            self._mood = self._mood + (mood - self._mood) * (1 - math.exp(-dt / _MOOD_TAU))
            self._energy_db += (db - self._energy_db) * (1 - math.exp(-dt / 0.4))
        self._beat *= math.exp(-dt / _BEAT_DECAY)
        if f.beat:
            self._beat = 1.0
            self._beats += 1
        self._change_wanted = self._change_wanted or self._section_changed()
        bar_line = downbeat if downbeat is not None else (f.beat and self._beats % 4 == 0)
        if self._change_wanted and bar_line and self._beats - self._scene_start[0] >= 4:
            self._choose(labels, keep_primary=False)
        k = 1 - math.exp(-dt / _WEIGHT_TAU)
        self._weights = {m: w + (self._targets[m] - w) * k for m, w in self._weights.items()}
        return self._scene(dt, f)

    def _scene(self, dt: float, f: Features) -> Scene:
        valence, arousal = (float(v) for v in self._mood)
        stems = self.look.stems
        arousal = min(1.0, arousal + 0.5 * stems.drive(f.stems, "mood"))  # the mood stem: a more vivid palette
        push = stems.drive(f.stems, "warp")
        vivid = _ease(arousal, 2.0)
        bass = float(np.clip(np.nan_to_num(f.low), 0.0, 4.0))
        self._time += dt * (0.15 + 0.9 * vivid**1.3) * (1.0 + 0.15 * min(bass, 2.0))
        palette, saturation = palette_for(valence, arousal, self.look.palette)
        warp = self._weights["warp"]
        zoom_per_s = warp * (0.03 + 0.3 * vivid + 0.9 * self._beat * vivid + 0.25 * push)
        trails_s = (0.25 + 1.1 * (1 - vivid)) * self.look.trails  # half-life of the trails
        return Scene(
            weights=dict(self._weights),
            palette=palette,
            saturation=saturation,
            time=self._time,
            beat=self._beat * (0.4 + 0.6 * vivid),
            bass=bass,
            onset=float(np.clip(np.nan_to_num(f.onset), 0.0, 1.0)),
            high=float(np.clip(np.nan_to_num(f.high), 0.0, 4.0)),
            zoom=math.exp(zoom_per_s * dt),
            rotate=self._spin * warp * (0.04 + 0.25 * vivid + 0.3 * push) * dt,
            decay=0.0 if trails_s <= 0.01 or dt <= 0 else 0.5 ** (dt / trails_s),
            flow=self._weights["ink"] * (0.6 + 0.6 * (1 - vivid)),
            symmetry=int(self.look.symmetry),
            line_width=float(self.look.line_width),
            scene_index=self._scene_index,
            valence=valence,
            arousal=arousal,
        )
