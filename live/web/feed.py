"""What the studio page sees of the show: filled by the rig's frame hook on the display thread,
read by the web server's thread. The display thread only copies references and, while a page
asks for the preview, shrinks the picture at most 10 times a second (~0.3 ms); JPEG encoding
happens on the server's side.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.types import Features
from live.screen.hud import HudState

PREVIEW_SIZE = (320, 180)
PREVIEW_FPS = 10.0
HISTORY_S = 60.0
HISTORY_HZ = 4.0


@dataclass
class Mark:
    """A knob change sent by a page, waiting for the first frame whose preset holds it."""

    address: str
    value: Any
    received: float  # monotonic, when the server read the message
    ident: int | str | None = None


@dataclass
class Applied:
    """A mark seen in a composed frame: `shown_at - received` is the knob-to-picture latency."""

    address: str
    ident: int | str | None
    received: float
    shown_at: float

    @property
    def latency_ms(self) -> float:
        return (self.shown_at - self.received) * 1000.0


@dataclass
class Scopes:
    """One snapshot for the page's scopes (plain data: it becomes JSON)."""

    t: float = 0.0
    spectrum: list[float] = field(default_factory=list)
    bands: list[float] = field(default_factory=list)  # low, mid, high
    beat_phase: float = 0.0
    beat_in_bar: int = 0
    beats_per_bar: int = 4
    locked: bool = False
    bpm: float = 0.0
    display_fps: float = 0.0
    render_fps: float = 0.0
    latency_ms: float | None = None
    preset: str = ""
    renderer: str = ""
    cue: str = ""
    lyric: str = ""
    ahead: list[list[Any]] = field(default_factory=list)  # [seconds from now, lyric line]
    show_t: float | None = None  # the track's clock, for the section timeline
    sections: list[float] = field(default_factory=list)
    error: str = ""
    message: str = ""
    frozen: bool = False
    history: list[list[float]] = field(default_factory=list)  # [seconds ago, valence, arousal, display fps]


class WebFeed:
    """Thread-safe hand-over from the display loop to the page."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._features: Features | None = None
        self._state: HudState | None = None
        self._history: deque[tuple[float, float, float, float]] = deque(maxlen=int(HISTORY_S * HISTORY_HZ) + 8)
        self._preview: np.ndarray | None = None
        self._preview_seq = 0
        self._preview_at = -1e9
        self.viewers = 0  # pages that asked for the preview; 0: the display thread does nothing for it
        self._marks: list[Mark] = []
        self._applied: deque[Applied] = deque(maxlen=512)
        self._applied_total = 0
        self.frames = 0

    # -- display thread ----------------------------------------------------------------------------

    def frame(self, picture: Any, features: Features | None, state: HudState | None,
              current: Callable[[], Any] | None = None) -> None:
        now = self.clock()
        with self._lock:
            self.frames += 1
            self._features, self._state = features, state
            if state is not None and (not self._history or now - self._history[-1][0] >= 1.0 / HISTORY_HZ):
                self._history.append((now, state.valence, state.arousal, state.display_fps))
            marks = list(self._marks)
            want_preview = self.viewers > 0 and now - self._preview_at >= 1.0 / PREVIEW_FPS
        if marks and current is not None:
            self._check_marks(marks, current(), now)
        if want_preview:
            small = shrink(picture, PREVIEW_SIZE)
            if small is not None:
                with self._lock:
                    self._preview, self._preview_at = small, now
                    self._preview_seq += 1

    def _check_marks(self, marks: list[Mark], preset: Any, now: float) -> None:
        from live.control.knobs import coerce, find_knob

        done = []
        for m in marks:
            try:
                knob = find_knob(m.address)
                shown = knob.read(preset) == coerce(knob, m.value)
            except Exception:  # noqa: BLE001 - a mark that cannot be compared is dropped
                shown = True
                m = Mark(m.address, m.value, m.received, None)
            if shown or now - m.received > 5.0:
                done.append(m)
                if shown and m.ident is not None:
                    with self._lock:
                        self._applied.append(Applied(m.address, m.ident, m.received, now))
                        self._applied_total += 1
        with self._lock:
            self._marks = [m for m in self._marks if all(m is not d for d in done)]

    # -- server thread -----------------------------------------------------------------------------

    def mark(self, mark: Mark) -> None:
        with self._lock:
            self._marks.append(mark)
            del self._marks[:-256]

    def applied_since(self, index: int) -> tuple[list[Applied], int]:
        """Marks shown since the caller's last call (`index` is what the previous call returned)."""
        with self._lock:
            items, total = list(self._applied), self._applied_total
        new = min(total - index, len(items))
        return (items[-new:] if new > 0 else []), total

    def preview(self, after: int) -> tuple[int, np.ndarray] | None:
        with self._lock:
            if self._preview is None or self._preview_seq == after:
                return None
            return self._preview_seq, self._preview

    def scopes(self, history: bool = True) -> Scopes:
        """A snapshot for the page; `history` (the minute-long curves, the costly part) only when asked."""
        with self._lock:
            f, s = self._features, self._state
            past = list(self._history) if history else []
        now = self.clock()
        out = Scopes(t=now)
        if f is not None:
            out.spectrum = [_finite(v) for v in f.spectrum]
            out.bands = [_finite(f.low), _finite(f.mid), _finite(f.high)]
            out.bpm = _finite(f.tempo_bpm, 2)
            grid = f.grid
            out.locked, out.beats_per_bar = grid.locked, grid.beats_per_bar
            pos = (f.t - grid.anchor) / grid.period if grid.locked and grid.anchor is not None and grid.period > 0 else nan
            if math.isfinite(pos):
                out.beat_phase = _finite(pos % 1.0)
                out.beat_in_bar = int((int(pos // 1) + grid.anchor_in_bar) % max(1, grid.beats_per_bar))
            else:
                out.beat_phase = _finite(f.beat_phase)
        if s is not None:
            out.display_fps, out.render_fps = _finite(s.display_fps, 1), _finite(s.render_fps, 2)
            out.latency_ms = _finite(s.latency_ms, 1) if s.latency_ms is not None else None
            out.preset, out.renderer, out.cue, out.lyric = s.preset, s.renderer, s.cue, s.lyric
            out.show_t, out.sections = s.show_t, list(s.sections)
            if s.show_t is not None:
                out.ahead = [[round(start - s.show_t, 1), text] for start, text in s.ahead]
            out.error = s.error if s.error and time.monotonic() - s.error_at < 15.0 else ""
            out.message, out.frozen = s.message, s.frozen
        out.history = [[round(now - t, 2), _finite(v), _finite(a), _finite(fps, 1)] for t, v, a, fps in past
                       if now - t <= HISTORY_S]
        return out


nan = float("nan")


def _finite(x: float, digits: int = 3) -> float:
    """JSON has no NaN or infinity: a value the page cannot parse becomes 0."""
    return round(float(x), digits) if math.isfinite(x) else 0.0


def shrink(picture: Any, size: tuple[int, int]) -> np.ndarray | None:
    """The picture (a pygame Surface, a VideoFrame or an HxWx3/4 array) as a small HxWx3 RGB array."""
    import pygame

    from live.outputs.sender import VideoFrame

    if isinstance(picture, pygame.Surface):
        source = picture if picture.get_bytesize() == 4 else picture.convert(32)
        small = pygame.transform.smoothscale(source, size)
        return np.ascontiguousarray(pygame.surfarray.array3d(small).swapaxes(0, 1))
    bgr = isinstance(picture, VideoFrame) and picture.order == "BGRA"
    pixels = picture.pixels if isinstance(picture, VideoFrame) else picture
    if not isinstance(pixels, np.ndarray) or pixels.ndim != 3 or pixels.shape[2] < 3:
        return None
    h, w = pixels.shape[:2]
    ys = np.linspace(0, h - 1, size[1]).astype(np.intp)
    xs = np.linspace(0, w - 1, size[0]).astype(np.intp)
    rgb = pixels[ys][:, xs, :3]
    return np.ascontiguousarray(rgb[..., ::-1] if bgr else rgb)
