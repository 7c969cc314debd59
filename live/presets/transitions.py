"""projectM-style preset transitions as a pure, clock-driven state machine.

Feed `step(t, features)` the time (seconds, from whatever clock drives the run: the audio clock
live, frame i / fps in export) and the newest `Features`; it answers which preset is active, which
one is fading out, and how far the blend has got. Nothing here reads a wall clock, sleeps or
draws, so the live session and export make identical decisions from identical inputs.

The rules, after projectM (the preset being *left* governs, like a DJ deciding when to mix out):
- auto-advance: after `transitions.duration_s` (0 = never) soft-cut to the next preset;
- soft cut: the new preset's weight `blend` rises linearly 0 → 1 over `soft_cut_s`;
- hard cut: with `hard_cut` on, at least `hard_cut_min_s` after the last switch, a beat strong
  enough (see `beat_is_strong`: its bass, up to `BEAT_HIT_S` after it) cuts at once (blend = 1);
- lock: no auto-advance and no hard cuts (manual switches still work);
- manual switches (`switch_to`, `next`, `previous`) cut at once or soft-cut, per `switch`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal, Sequence

from engine.errors import BeatcanvasError
from engine.types import Features
from live.presets.schema import Preset

# A hard cut needs bass (MilkDrop-normalised: 1.0 = typical for the track) times the sensitivity to
# reach this level on a beat: sensitivity 1 cuts on beats 50 % louder than usual, 2 on most beats,
# 0 never.
HARD_CUT_LEVEL = 1.5
# A beat's hit: a tracker that predicts the beat flags it on the hop that ends where the kick begins,
# so its bass arrives in the next block. The beat's strength is the loudest `low_peak` this soon after it.
BEAT_HIT_S = 0.1
# Block times are sums of float block lengths, so `t - since` for exactly 4 s of audio may come out a
# rounding step short (0.02 s → 4.02 s: 3.9999999999999996); a rule's time is up within this much.
TIME_TOLERANCE_S = 1e-6

Event = Literal["start", "auto", "hard_cut", "manual"]


def beat_is_strong(features: Features, sensitivity: float, in_hit: bool = False) -> bool:
    """Whether this block's beat — or, `in_hit`, the beat that the block began within `BEAT_HIT_S`
    of — hits hard enough for a hard cut at `sensitivity` (0..2): the block's loudest bass."""
    near = bool(features.beat) or in_hit
    return near and sensitivity > 0 and max(features.low, features.low_peak) * sensitivity >= HARD_CUT_LEVEL


@dataclass(frozen=True)
class TransitionState:
    """What to show at one instant.

    Draw `previous` with weight 1 - blend and `preset` with weight `blend`; when `previous` is
    None, `preset` alone (blend is 1). `event` is set only on the step where a switch happened.
    """

    t: float
    index: int
    preset: Preset
    blend: float = 1.0
    previous: Preset | None = None
    previous_index: int | None = None
    since: float = 0.0  # when the active preset was switched to
    fade_s: float = 0.0  # length of the soft cut in progress
    event: Event | None = None
    locked: bool = False

    @property
    def blending(self) -> bool:
        return self.previous is not None and self.blend < 1.0


class Transitioner:
    """Steps through an ordered list of presets (a playlist) under the transition rules.

    `durations[i]`, when given and not None, overrides preset i's `transitions.duration_s` (a
    playlist entry's own duration). With `loop` False the last preset stays once reached.
    """

    def __init__(
        self,
        presets: Sequence[Preset],
        durations: Sequence[float | None] | None = None,
        start: int = 0,
        t0: float = 0.0,
        loop: bool = True,
    ) -> None:
        if not presets:
            raise BeatcanvasError("a playlist needs at least one preset; add an [[entry]]")
        if durations is not None and len(durations) != len(presets):
            raise ValueError("durations must match presets one to one")
        self.presets = list(presets)
        self.durations = list(durations) if durations is not None else [None] * len(presets)
        self.loop = loop
        self.lock_override: bool | None = None  # None: follow the active preset's `lock`
        self._t = t0
        self.last_beat = -math.inf  # when the newest beat was stepped (its hit is judged for BEAT_HIT_S)
        self.in_beat_hit = False  # the newest step was a beat's block or began within BEAT_HIT_S after one
        first = start % len(presets)
        self._state = self._with_lock(
            TransitionState(t=t0, index=first, preset=self.presets[first], since=t0, event="start")
        )

    # --- queries -----------------------------------------------------------------------------

    @property
    def state(self) -> TransitionState:
        return self._state

    def duration(self, index: int) -> float:
        override = self.durations[index]
        return self.presets[index].transitions.duration_s if override is None else float(override)

    def locked(self) -> bool:
        if self.lock_override is not None:
            return self.lock_override
        return self._state.preset.transitions.lock

    # --- controls ----------------------------------------------------------------------------

    def set_lock(self, locked: bool | None) -> None:
        """True/False overrides the preset's `lock`; None goes back to it."""
        self.lock_override = locked

    def toggle_lock(self) -> bool:
        self.lock_override = not self.locked()
        return self.lock_override

    def switch_to(self, index: int, t: float, immediate: bool | None = None) -> TransitionState:
        """Manual switch. `immediate` None follows the current preset's `switch` setting."""
        t = self._advance_clock(t)
        if immediate is None:
            immediate = self._state.preset.transitions.switch == "immediate"
        return self._switch(index % len(self.presets), t, hard=immediate, event="manual")

    def update(self, index: int, preset: Preset) -> None:
        """Replace preset `index` (its file was edited); the active one changes in place, no switch."""
        self.presets[index] = preset
        if self._state.index == index:
            self._state = self._with_lock(replace(self._state, preset=preset))

    def next(self, t: float, immediate: bool | None = None) -> TransitionState:
        return self.switch_to(self._state.index + 1, t, immediate)

    def previous(self, t: float, immediate: bool | None = None) -> TransitionState:
        return self.switch_to(self._state.index - 1, t, immediate)

    # --- the clock ---------------------------------------------------------------------------

    def step(self, t: float, features: Features | None = None) -> TransitionState:
        """Advance to time `t` (earlier times count as no time passing) and apply the rules."""
        began = self._t
        t = self._advance_clock(t)
        beat = features is not None and features.beat
        self.in_beat_hit = beat or began - self.last_beat <= BEAT_HIT_S
        if beat:
            self.last_beat = t
        s = self._state
        rules = s.preset.transitions
        elapsed = t - s.since + TIME_TOLERANCE_S
        target = self._following(s.index)
        if not self.locked() and target is not None:
            if (
                rules.hard_cut
                and features is not None
                and elapsed >= rules.hard_cut_min_s
                and beat_is_strong(features, rules.hard_cut_sensitivity, self.in_beat_hit)
            ):
                return self._switch(target, t, hard=True, event="hard_cut")
            duration = self.duration(s.index)
            if duration > 0 and elapsed >= duration:
                return self._switch(target, t, hard=False, event="auto")
        self._state = self._blended(s, t)
        return self._state

    # --- internals ---------------------------------------------------------------------------

    def _advance_clock(self, t: float) -> float:
        self._t = max(self._t, float(t))
        return self._t

    def _following(self, index: int) -> int | None:
        if len(self.presets) == 1:
            return None
        if index + 1 < len(self.presets):
            return index + 1
        return 0 if self.loop else None

    def _switch(self, index: int, t: float, hard: bool, event: Event) -> TransitionState:
        s = self._state
        soft_s = s.preset.transitions.soft_cut_s
        if hard or soft_s <= 0:
            new = TransitionState(t=t, index=index, preset=self.presets[index], since=t, event=event)
        else:
            # A switch during a blend drops the preset that was already fading out (as projectM).
            new = TransitionState(
                t=t,
                index=index,
                preset=self.presets[index],
                blend=0.0,
                previous=s.preset,
                previous_index=s.index,
                since=t,
                fade_s=soft_s,
                event=event,
            )
        self._state = self._with_lock(new)
        return self._state

    def _blended(self, s: TransitionState, t: float) -> TransitionState:
        if s.previous is None:
            return self._with_lock(replace(s, t=t, event=None))
        blend = min(1.0, (t - s.since) / s.fade_s)
        if blend >= 1.0:
            return self._with_lock(replace(s, t=t, blend=1.0, previous=None, previous_index=None, event=None))
        return self._with_lock(replace(s, t=t, blend=blend, event=None))

    def _with_lock(self, s: TransitionState) -> TransitionState:
        locked = self.lock_override if self.lock_override is not None else s.preset.transitions.lock
        return s if s.locked == locked else replace(s, locked=locked)

