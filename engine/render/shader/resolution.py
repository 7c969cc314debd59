"""The shader renderer's internal resolution in a live window on software OpenGL (Mesa's llvmpipe).

A software rasteriser draws the 1280x720 look in ~190 ms on two cores: far too slow for a window,
and the CPU it burns is the CPU the display loop needs. Most of what makes the look (thin
anti-aliased lines, the feedback warp, the palette) survives a lower internal resolution and a
bilinear upscale, so the renderer draws at a fraction of the output size, chosen to hold the display
rate:

- at start, from the first frames' cost per pixel against the render budget (one frame interval);
- while playing, over a window of renders: one step down the ladder when the display falls below
  its target rate or renders overrun the budget by a margin; one step up only when the display is
  comfortably above its target and the next step's predicted render time still fits the budget with
  room to spare. The gap between the two thresholds, the window and the pause after each change
  are the hysteresis: the picture does not hunt between two sizes.

Pure logic on numbers (no clock, no GL): tests drive it with made-up timings.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

# Linear scales of the output size, largest first (the area falls ~30 % a step).
LADDER: tuple[float, ...] = (1.0, 0.84, 0.7, 0.6, 0.5, 0.42, 0.35, 0.3, 0.25)
START = 6  # the ladder step of the measuring frames (0.35): quick to draw, big enough to time
WARMUP = 2  # renders not timed at start (the first compiles shaders and allocates)
WINDOW = 8  # renders per decision
SLOW = 1.25  # renders over budget by this factor: step down
FITS = 0.8  # a step up must be predicted to take at most this share of the budget
LATE = 0.92  # display rate under this share of its target: step down
EASY = 1.1  # display rate at least this share of its target before stepping up
HOLD = 4 * WINDOW  # renders after a step down before trying up again; doubles each time a step up failed
MAX_HOLD = 600  # 30 s at 20 renders a second


@dataclass
class ResolutionGovernor:
    """Chooses the ladder step; `observe` after every render, read `scale`."""

    budget_s: float  # the render interval the show asks for (1 / max render fps)
    display_target_fps: float  # the display rate to hold
    step: int = START
    measured: bool = False
    changes: int = 0
    _renders: list[float] = field(default_factory=list)
    _displays: list[float] = field(default_factory=list)
    _skip: int = WARMUP
    _hold: int = 0  # renders left before a step up is allowed
    _hold_len: int = HOLD
    _went_up: bool = False  # the last change was a step up (a step down right after it is hunting)

    @property
    def scale(self) -> float:
        return LADDER[self.step]

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The internal size for an output of width x height (even sides, at least 64x36)."""
        return max(64, round(width * self.scale / 2) * 2), max(36, round(height * self.scale / 2) * 2)

    def observe(self, render_s: float, display_fps: float) -> bool:
        """One render's duration and the display rate now; True when the scale changed."""
        if self._skip > 0:
            self._skip -= 1
            return False
        self._renders.append(render_s)
        self._hold = max(0, self._hold - 1)
        if display_fps > 0:
            self._displays.append(display_fps)
        if not self.measured:
            return len(self._renders) >= 3 and self._first_choice()
        if len(self._renders) < WINDOW:
            return False
        render = statistics.median(self._renders)
        display = statistics.median(self._displays) if self._displays else self.display_target_fps
        late = display < LATE * self.display_target_fps or render > SLOW * self.budget_s
        if late and self.step < len(LADDER) - 1:
            # Down at once; up again only after a hold, longer each time going up did not last.
            self._hold_len = min(MAX_HOLD, self._hold_len * 2) if self._went_up else HOLD
            self._hold = self._hold_len
            return self._go(self.step + 1)
        if not late and self.step > 0 and self._hold == 0 and display >= EASY * self.display_target_fps:
            grow = (LADDER[self.step - 1] / LADDER[self.step]) ** 2
            if render * grow <= FITS * self.budget_s:
                return self._go(self.step - 1)
        self._renders.clear()
        self._displays.clear()
        return False

    def _first_choice(self) -> bool:
        """From the measuring frames: the largest step whose predicted time fits the budget."""
        self.measured = True
        per_area = statistics.median(self._renders) / self.scale**2
        fits = [i for i, s in enumerate(LADDER) if per_area * s * s <= FITS * self.budget_s]
        return self._go(fits[0] if fits else len(LADDER) - 1)

    def _go(self, step: int) -> bool:
        changed = step != self.step
        self._went_up = step < self.step
        self.step = step
        self.changes += changed
        self._renders.clear()
        self._displays.clear()
        self._skip = 1  # the first render at a new size allocates its textures
        return changed
