"""One setting's keyframes over time, and where its value is at any moment.

A keyframe says: the value is `value` from time `t` on. Its `mode` says how the value gets there from
the previous keyframe of the same setting:

- `hold`: the previous value stays until `t`, then the new one — a switch at `t`;
- `cut`: a switch too, placed (by whoever builds the keyframe) on the first beat at or after the time
  written, so the change lands on the music;
- `linear` / `ease`: a ramp that starts at `start` (the previous keyframe's time, or `t − fade`) and
  arrives at `t`; `ease` is smoothstep, gentle at both ends.

`sample` answers with the two values in play and the weight `u` of the newer one; the caller decides
what a blend means for its setting (numbers mix, prompts mix their encodings, words switch at `t`).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MODES = ("linear", "ease", "hold", "cut")


@dataclass(frozen=True)
class Keyframe:
    t: float  # the value is fully `value` from here on
    value: Any
    mode: str = "hold"
    start: float | None = None  # where a linear/ease ramp begins (None: at `t`, a switch)
    line: int | None = None  # the schedule line that wrote it, for error messages and the HUD


@dataclass(frozen=True)
class Sample:
    """`before` weighted 1 − u and `after` weighted u; u = 1 (or `before is after`) means settled."""

    before: Any
    after: Any
    u: float
    index: int  # the keyframe `after` belongs to (−1: the value before the first keyframe)

    def number(self, integer: bool = False) -> float | int:
        v = float(self.before) + (float(self.after) - float(self.before)) * self.u
        return int(round(v)) if integer else v

    def switched(self) -> Any:
        """For values that cannot blend (words, switches): the new one once the ramp has arrived."""
        return self.after if self.u >= 1.0 else self.before


def shape(u: float, mode: str) -> float:
    u = min(1.0, max(0.0, u))
    return u * u * (3.0 - 2.0 * u) if mode == "ease" else u


def sample(track: Sequence[Keyframe], t: float, base: Any) -> Sample:
    """The value of a setting at `t`: `base` before its first keyframe, keyframes sorted by `t`."""
    times = [k.t for k in track]
    i = bisect.bisect_right(times, t)  # keyframes [0, i) have arrived
    current = track[i - 1].value if i else base
    if i == len(track):
        return Sample(current, current, 1.0, i - 1)
    nxt = track[i]
    if nxt.mode in ("linear", "ease") and nxt.start is not None and nxt.start < t:
        span = nxt.t - nxt.start
        return Sample(current, nxt.value, shape((t - nxt.start) / span, nxt.mode), i)
    return Sample(current, current, 1.0, i - 1)
