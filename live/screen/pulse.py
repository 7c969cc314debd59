"""When and how hard the picture hits: the beat pulse, scheduled for the moment the beat is heard.

Features arrive with the `BeatGrid` they were computed with. A frame does not react to the newest
detected beat (that would be late by the detection delay, the audio output latency and a display
frame); it asks the grid where the beat is at the moment the frame will be *seen* and heard:

    τ = source clock (the audio being heard now)
      + source lead (a live input's reported latency: what the room hears is ahead of what was captured)
      + the performer's offset (`--latency-ms`, or measured with the calibration taps)
      + one display frame (the frame goes on screen at the next refresh)

`PulseClock.at(features, clock, lead_s)` re-times the features to τ; export uses the exact beats of
the offline pass and τ = the frame's time + one frame. `beat_pulse(features)` is the whole pulse
model — a pure function of the re-timed features — so a GPU compositor calls the same thing.

Accents: a downbeat hits hardest, other beats less (all scaled by the tracker's confidence), and
onsets between beats (hi-hats, fills) give small kicks of their own.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass, field

from engine.types import Features

DOWNBEAT, BEAT, OFFBEAT = 1.0, 0.6, 0.3  # pulse heights
PULSE_BEATS = 1.0 / 3.0  # a beat's pulse decays over this fraction of the beat
CALIBRATION_TAPS = 4  # taps needed before a calibration is applied
MAX_OFFSET_S = 0.5


def beat_pulse(f: Features) -> float:
    """0..1: how hard the frame for `f` (re-timed to when it is seen) hits. Peaks on the beat and
    decays (quadratically) over a third of a beat."""
    grid = f.grid
    if not grid.locked:
        return 0.0
    phase = grid.phase_at(f.t)
    beat = 0.0
    if phase < PULSE_BEATS:
        height = DOWNBEAT if grid.position_at(f.t) == 0 else BEAT
        beat = height * min(1.0, 0.3 + grid.confidence) * (1.0 - phase / PULSE_BEATS) ** 2
    between = 0.2 < phase < 0.9
    return max(beat, OFFBEAT * min(1.0, max(0.0, f.onset)) if between else 0.0)


@dataclass
class PulseClock:
    """Re-times features to the moment their frame is seen, and learns the performer's offset.

    `offset_s`: extra lead (s) on top of the source's own; `--latency-ms` sets it, calibration
    taps replace it. `display_s`: how long a composed frame takes to reach the screen.
    """

    offset_s: float = 0.0
    display_s: float = 1.0 / 60.0
    _last_t: float | None = None
    _taps: list[float] = field(default_factory=list)

    def at(self, features: Features, clock: float, lead_s: float = 0.0) -> Features:
        """`features` as seen at τ: `t` = τ, phase from the grid, `beat`/`downbeat` set on the
        first frame at or after each grid beat (never twice, never skipped)."""
        tau = clock + lead_s + self.offset_s + self.display_s
        grid = features.grid
        last = grid.last_beat(tau)
        beat = last is not None and self._last_t is not None and self._last_t < last <= tau
        self._last_t = tau
        return dataclasses.replace(
            features, t=tau, beat=beat, beat_phase=grid.phase_at(tau),
            downbeat=beat and grid.position_at(tau) == 0,
        )

    def calibrate_tap(self, features: Features, clock: float, lead_s: float = 0.0) -> float | None:
        """The performer tapped along with the beat they hear, at source time `clock`. After
        CALIBRATION_TAPS taps the median gap between the taps and the grid's beats becomes the
        offset; returns it then (None while still collecting)."""
        grid = features.grid
        if not grid.locked:
            return None
        heard = clock + lead_s  # where the grid thinks the heard audio is, before any offset
        nearest = grid.last_beat(heard + grid.period / 2)
        if nearest is None:
            return None
        self._taps.append(nearest - heard)
        if len(self._taps) < CALIBRATION_TAPS:
            return None
        self.offset_s = min(max(statistics.median(self._taps[-8:]), -MAX_OFFSET_S), MAX_OFFSET_S)
        return self.offset_s

    def reset_calibration(self) -> None:
        self._taps = []
