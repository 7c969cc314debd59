"""Flash safety: count and limit large full-frame luminance flashes (≤ 3 per second).

The photosensitivity guideline (WCAG 2.3.1, after ITU-R BT.1702) counts a flash as a pair of
opposing changes in relative luminance of 10 % of full scale or more, where the darker state is
below 0.8, and allows at most three in any one second. We apply it to the whole frame's mean
relative luminance (linear light, Rec. 709 weights) — the "large full-frame" case a beat-pushed
compositor can cause; small bright shapes do not move the frame mean enough to count.

`FlashCounter` finds the changes; `FlashLimiter` sits at the end of a compositor: it lets the picture
change freely until a change would be the sixth in a second (one short of the fourth flash), then holds the
frame's mean luminance just short of the threshold with an exposure gain, so pulses keep their
shape but lose their strobe. `max_flashes_per_second` is what the tests and `scripts/look_metrics.py`
measure on exported frames.
"""

from __future__ import annotations

import logging
import math
from collections import deque

import numpy as np

log = logging.getLogger(__name__)

THRESHOLD = 0.10  # relative luminance change that counts
DARK_LIMIT = 0.80  # one of the two states must be darker than this
GUIDELINE_PER_S = 3.0
_MARGIN = 0.5  # a held frame stays within half the threshold of the last extreme
MAX_LIFT = 4.0  # the most a near-black held frame's linear luminance is raised
MAX_LIFT_LIT = 8.0  # ... and a lit one's (mean ≥ NEAR_BLACK): the lift curve keeps black black, white white
NEAR_BLACK = 0.05

_SRGB_TO_LINEAR = np.where(
    (x := np.arange(256) / 255.0) <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4
).astype(np.float32)
_Y = np.array([0.2126, 0.7152, 0.0722], np.float32)


def mean_luminance(rgb: np.ndarray, step: int = 4) -> float:
    """Mean relative luminance (0..1, linear light) of an HxWx3 uint8 sRGB image, on every
    `step`-th pixel each way (a flash is a whole-frame change; 1/16 of the pixels measure it)."""
    sample = rgb[::step, ::step, :3]
    return float((_SRGB_TO_LINEAR[sample] @ _Y).mean())


class FlashCounter:
    """Registers luminance changes ≥ THRESHOLD against the last extreme, alternating direction."""

    def __init__(self) -> None:
        self.direction = 0  # +1 rising, -1 falling, 0 not yet known
        self.extreme: float | None = None
        self.times: deque[float] = deque()

    def would_change(self, lum: float) -> bool:
        """Whether `lum` would complete a change (without registering it)."""
        e = self.extreme
        if e is None:
            return False
        rise = self.direction <= 0 and lum - e >= THRESHOLD and e < DARK_LIMIT
        fall = self.direction >= 0 and e - lum >= THRESHOLD and lum < DARK_LIMIT
        return rise or fall

    def feed(self, lum: float, t: float) -> bool:
        """Track `lum` at time `t`; True when it completed a change."""
        e = self.extreme
        if e is None:
            self.extreme = lum
            return False
        if self.would_change(lum):
            self.direction = 1 if lum > e else -1
            self.extreme = lum
            self.times.append(t)
            return True
        if (self.direction >= 0 and lum > e) or (self.direction <= 0 and lum < e):
            self.extreme = lum  # still going the same way: the extreme moves with it
        return False

    def changes_within(self, t: float, seconds: float = 1.0) -> int:
        # A change exactly `seconds` ago still counts (frame times in floats land on either side).
        while self.times and self.times[0] < t - seconds - 1e-6:
            self.times.popleft()
        return len(self.times)


def max_flashes_per_second(lums: list[float] | np.ndarray, fps: float) -> int:
    """The most flashes (pairs of opposing changes, rounded up) in any one-second window."""
    counter = FlashCounter()
    times = [i / fps for i, lum in enumerate(lums) if counter.feed(float(lum), i / fps)]
    worst = 0
    for j, t in enumerate(times):
        n = sum(1 for u in times[: j + 1] if u > t - 1.0)
        worst = max(worst, math.ceil(n / 2))
    return worst


class FlashLimiter:
    """Per composed frame: `gain(lum, t)` is the exposure (multiplier on linear luminance) that
    keeps the output within `max_per_s` flashes in any second; then `record(actual, t)`."""

    def __init__(self, max_per_s: float = GUIDELINE_PER_S) -> None:
        self.configure(max_per_s)
        self.counter = FlashCounter()
        self.held = 0  # frames whose exposure was changed (for the bench and the HUD)

    def configure(self, max_per_s: float) -> None:
        if max_per_s > GUIDELINE_PER_S and getattr(self, "max_per_s", None) != max_per_s:
            log.warning("flash limit raised to %.1f per second (the photosensitivity guideline is 3)", max_per_s)
        self.max_per_s = float(max_per_s)
        # Changes per second: one fewer than the pairs allow, so a change our 1/16-pixel measurement
        # misses is still inside the limit for a whole-frame measurement.
        self.budget = max(1, int(math.floor(2 * self.max_per_s + 1e-9)) - 1)

    def gain(self, lum: float, t: float) -> float:
        c = self.counter
        if c.extreme is None or not c.would_change(lum) or c.changes_within(t) < self.budget:
            return 1.0
        e = c.extreme
        target = e + math.copysign(_MARGIN * THRESHOLD, lum - e)
        self.held += 1
        # Holding a fall brightens the frame: a near-black frame at most 4x (it is not lifted to grey);
        # a lit one far enough to hold a plunge from a bright frame (about 5x in a loud strobe).
        return min(max(target, 1e-4) / max(lum, 1e-4), MAX_LIFT if lum < NEAR_BLACK else MAX_LIFT_LIT)

    def record(self, lum: float, t: float) -> None:
        self.counter.feed(lum, t)


def exposure_lut(g: float) -> np.ndarray:
    """uint8 → uint8 table applying the sRGB gain `g` to a frame: `g` < 1 scales down; `g` > 1
    brightens along c' = 1 − (1 − c)^g, which is about g·c in the shadows (structure keeps its
    contrast: a dark frame is not lifted to a flat grey) and never clips a highlight to white."""
    c = np.arange(256) / 255.0
    out = c * g if g <= 1.0 else 1.0 - (1.0 - c) ** g
    return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)


def fit_exposure(rgb: np.ndarray, target: float, step: int = 4) -> float:
    """The sRGB gain whose `exposure_lut` brings `rgb`'s `mean_luminance` to `target`, on the safe side:
    not above it when darkening, not below it when brightening. The brightening curve is not a plain
    multiply, so the linear ratio ** (1/2.2) falls short; this solves on the image's per-channel
    histograms (bisection, exact for the table as applied)."""
    sample = rgb[::step, ::step, :3].reshape(-1, 3)
    hists = np.stack([np.bincount(sample[:, c], minlength=256) for c in range(3)]).astype(np.float64)
    weights = (hists * _Y[:, None]).sum(axis=0) / max(len(sample), 1)  # Y weight per input code value

    def lum(g: float) -> float:
        return float(weights @ _SRGB_TO_LINEAR[exposure_lut(g)])

    now = lum(1.0)
    darken = target < now
    lo, hi = (0.0, 1.0) if darken else (1.0, 16.0)
    for _ in range(24):
        mid = 0.5 * (lo + hi)
        if lum(mid) > target:  # luminance grows with g: lo stays at or below the target, hi above
            hi = mid
        else:
            lo = mid
    return lo if darken else hi
