"""A schedule placed in time, and the show's settings at any moment of it.

`Timeline(schedule, base, grid, sections)` puts every key at a time (its `at`, its bar on the beat
grid, or its section's start; a `cut` moves to the first beat at or after that) and builds one
keyframe track per knob it sets (engine.directing.keyframes). Tracks are per knob, so a key that
only changes `beat_zoom` does not interrupt a style ramp around it.

`at(t)` → `ScheduledState`: the base preset with every scheduled knob at its value for t, and the
style prompts with their weights. Numbers glide (ints round); the style text blends as prompts
(the director slerps their encodings); words and switches change at the key's time. Before a
knob's first key it has the base preset's value, as if keyed at 0:00.

Keys of one knob may not overlap: two at the same time, or a fade that starts before the previous
key of that knob, is an error naming both lines.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from engine.directing.grid import BarGrid
from engine.directing.keyframes import Keyframe, sample
from engine.directing.quantize import Quantize, land
from engine.directing.timecode import Span, format_time
from live.presets.schema import GROUPS, Preset
from live.schedule.schema import SCHEDULED, KeySpec, Schedule, ScheduleError

STYLE = "conditioning.style"
SAME_TIME_S = 1e-3
CHANGES = ("hold", "cut")  # keys that switch (glides arrive gradually and are not quantised)


@dataclass(frozen=True)
class ScheduledState:
    preset: Preset  # the base preset with the scheduled knobs at t
    style: tuple[tuple[str, float], ...]  # the style prompts in play and their weights (sum 1)
    cue: str = ""  # "key 3/7 · next 1:32.50", for the HUD


def _kinds() -> tuple[set[str], set[str]]:
    numbers, integers = set(), set()
    for g in SCHEDULED:
        for name, info in GROUPS[g].model_fields.items():
            if info.annotation in (int, float):
                numbers.add(f"{g}.{name}")
                if info.annotation is int:
                    integers.add(f"{g}.{name}")
    return numbers, integers


NUMBERS, INTEGERS = _kinds()


class Timeline:
    def __init__(self, schedule: Schedule, base: Preset, grid: BarGrid | None = None,
                 sections: tuple[float, ...] = (), live: bool = False) -> None:
        """`live`: bar keys the grid cannot place yet wait (live input grows its grid) instead of failing."""
        self.schedule = schedule
        self.base = base
        self.grid = dataclasses.replace(grid, beats_per_bar=schedule.beats_per_bar) if grid is not None else None
        self.sections = schedule.sections or tuple(sections)
        self.live = live
        self.quantize = Quantize.parse(base.transitions.quantize)
        placed = sorted(((self._place(k), k) for k in schedule.keys), key=lambda p: (p[0], p[1].number))
        self.times = [t for t, _ in placed]
        self.keys = [k for _, k in placed]
        dumped = base.model_dump()
        self.base_values = {f"{g}.{k}": v for g in SCHEDULED for k, v in dumped[g].items()}
        self.tracks = self._tracks(placed)
        for t, key in placed:
            self._validate(key)
        self._last: tuple[dict[str, Any], Preset] | None = None
        self._recalled: tuple[tuple[Any, ...], ScheduledState, Preset, Preset] | None = None

    # -- placing ----------------------------------------------------------------------------------

    def _fail(self, key: KeySpec, message: str) -> ScheduleError:
        return ScheduleError(f"{self.schedule.source}, {key.where}: {message}", file=self.schedule.source, line=key.line)

    def _place(self, key: KeySpec) -> float:
        if key.at is not None:
            t = key.at
        elif key.bar is not None:
            placed = self.grid.bar_time(key.bar, key.beat) if self.grid is not None else None
            if placed is None:
                if self.live:
                    return math.inf  # placed once the live tracker has heard beats
                raise self._fail(key, f"bar = {key.bar} needs the track's beats, and none were found; "
                                      "place this key with at = \"m:ss\" instead")
            t = placed
        else:
            assert key.section is not None  # the schema places every key by exactly one of at, bar, section
            if not self.sections:
                raise self._fail(key, f"section = {key.section} needs the track's sections: run "
                                      "`beatcanvas analyze TRACK --sections` and keep its `sections` list in this file")
            if key.section > len(self.sections):
                raise self._fail(key, f"section = {key.section}, but there are {len(self.sections)} sections; "
                                      f"use 1..{len(self.sections)} or add a start to `sections`")
            t = self.sections[key.section - 1]
        if key.mode in CHANGES and self.quantize.on and self.grid is not None:
            t = land(self.quantize, t, self.grid)  # a change waits for its beat, downbeat or bar
        elif key.mode == "cut" and self.grid is not None:
            t = self.grid.next_beat(t)  # without beats (yet), a cut happens at its own time
        return max(0.0, t)

    def _fade_s(self, span: Span) -> float:
        period = self.grid.period() if self.grid is not None else BarGrid().period()
        per = {"s": 1.0, "beats": period, "bars": period * self.schedule.beats_per_bar}[span.unit]
        return span.amount * per

    def _tracks(self, placed: list[tuple[float, KeySpec]]) -> dict[str, list[Keyframe]]:
        tracks: dict[str, list[Keyframe]] = {}
        owners: dict[str, KeySpec] = {}
        for t, key in placed:
            for name, value in key.values.items():
                track = tracks.setdefault(name, [])
                prev_t = track[-1].t if track else 0.0
                if track and math.isfinite(t) and t - prev_t < SAME_TIME_S:
                    raise self._fail(key, f"{owners[name].where} also sets {name} at {format_time(t)}; "
                                          "move one of the two keys or merge them")
                start = None
                if key.mode in ("linear", "ease"):
                    start = t - self._fade_s(key.fade) if key.fade is not None else prev_t
                    if track and start < prev_t - 1e-6:
                        raise self._fail(key, f"its fade starts at {format_time(start)}, before the key at "
                                              f"{owners[name].where} ({format_time(prev_t)}) that also sets {name}; "
                                              "shorten the fade or move a key")
                    start = max(0.0, start)
                track.append(Keyframe(t, value, key.mode, start, key.line))
                owners[name] = key
        return tracks

    def _validate(self, key: KeySpec) -> None:
        """The base preset with this key's knobs must still be a valid preset."""
        try:
            self._preset(key.values)
        except ValidationError as e:
            first = e.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            raise self._fail(key, f"{where}: {first['msg']}") from None

    def _preset(self, values: dict[str, Any]) -> Preset:
        merged = self.base.model_dump()
        for name, value in values.items():
            group, knob = name.split(".", 1)
            merged[group][knob] = value
        return Preset.model_validate(merged)

    # -- sampling ---------------------------------------------------------------------------------

    def at(self, t: float) -> ScheduledState:
        values: dict[str, Any] = {}
        style: tuple[tuple[str, float], ...] = ((self.base.conditioning.style, 1.0),)
        for name, track in self.tracks.items():
            s = sample(track, t, self.base_values[name])
            if name == STYLE:
                settled = s.u >= 1.0 or s.before == s.after
                style = ((s.after, 1.0),) if settled else ((s.before, 1.0 - s.u), (s.after, s.u))
                values[name] = s.switched()
            elif name in NUMBERS:
                values[name] = s.number(integer=name in INTEGERS)
            else:
                values[name] = s.switched()
        last = self._last
        if last is not None and last[0] == values:
            preset = last[1]
        else:
            preset = self._preset(values)
            self._last = (values, preset)
        return ScheduledState(preset, style, self.cue(t))

    def recall(self, now: ScheduledState, then: ScheduledState, weight: float) -> ScheduledState:
        """`now` with a returning section's earlier look (`then`) recalled by `weight` (0..1): numbers
        blend, switches (the seed among them) and words take the earlier value from 0.5, the style
        prompts mix by weight."""
        if weight <= 0:
            return now
        key = (id(now.preset), id(then.preset), now.style, then.style, weight)
        if self._recalled is not None and self._recalled[0] == key:
            return ScheduledState(self._recalled[1].preset, self._recalled[1].style, now.cue)
        a, b = now.preset.model_dump(), then.preset.model_dump()
        values: dict[str, Any] = {}
        for g in SCHEDULED:
            for k, v in a[g].items():
                name, old = f"{g}.{k}", b[g][k]
                if old == v:
                    continue
                if name in NUMBERS:
                    x = (1 - weight) * v + weight * old
                    values[name] = int(round(x)) if name in INTEGERS and name != "motion.seed" else x
                    if name == "motion.seed":
                        values[name] = old if weight >= 0.5 else v
                elif weight >= 0.5:
                    values[name] = old
        style = tuple((s, w * (1 - weight)) for s, w in now.style) + tuple((s, w * weight) for s, w in then.style)
        merged: dict[str, float] = {}
        for s, w in style:
            merged[s] = merged.get(s, 0.0) + w
        preset = self._preset({**{n: v for n, v in ((f"{g}.{k}", v) for g in SCHEDULED for k, v in a[g].items())},
                               **values}) if values else now.preset
        out = ScheduledState(preset, tuple((s, w) for s, w in merged.items() if w > 0), now.cue)
        self._recalled = (key, out, now.preset, then.preset)  # the presets kept: their ids stay theirs
        return out

    def cue(self, t: float) -> str:
        i = bisect.bisect_right(self.times, t)
        text = f"key {i}/{len(self.keys)}"
        if i < len(self.times) and math.isfinite(self.times[i]):
            text += f" · next {format_time(self.times[i])} ({self.keys[i].where})"
        return text

    def changes(self) -> list[tuple[float, str]]:
        """(time, which key) of every key that switches something at once (hold or cut), in time order:
        the moments a new look must be on screen."""
        return [(t, f"key {k.number} ({k.where})") for t, k in zip(self.times, self.keys)
                if k.mode in CHANGES and math.isfinite(t)]

    def texts(self) -> list[str]:
        """Every style text the schedule can show (to encode before the show)."""
        return [self.base.conditioning.style] + [k.value for k in self.tracks.get(STYLE, [])]
