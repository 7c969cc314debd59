"""Drops that are ready before they hit (issue 26, part 2): a build predicts a drop on a downbeat; the
drop's look is prepared from the build on and cut to on the drop's downbeat, or discarded when no drop
comes within `WINDOW_BARS` bars of the prediction (the normal path goes on).

Offline (export), the section events come from one pass over the whole track — the live tracker's own
`SectionDetector` on the same 10 ms loudness, its events placed on the offline beat map's beats, as the
export's beats are — so a chunk's frames do not depend on where the chunk starts. `plan_drops` turns
the events into `DropCue`s on the track's `BarGrid`. Everything here is pure: the caller owns the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.audio.accents import SectionDetector
from engine.audio.beatmap import BeatMap
from engine.audio.io import iter_audio_blocks
from engine.directing.grid import BarGrid
from engine.directing.quantize import Quantize, beats_until, land
from engine.types import SAMPLE_RATE, BeatGrid

HOP = 480  # 10 ms: the live tracker's hop
BUILD_BARS = 4  # a build's drop is predicted on the next bar line that starts a group of this many bars
WINDOW_BARS = 2  # a drop this many bars after the predicted downbeat still uses the prepared look
DROP_AROUSAL = 1.0  # the drop look's arousal (-1 calm … 1 energetic)
DROP_JUMP = 2.0  # live: the audio after the predicted downbeat this many times louder (rms) than a beat before: it came
JUDGE_S = 0.25  # live: no such jump this long after the predicted downbeat: it fizzled


@dataclass(frozen=True)
class DropCue:
    """One build and what became of it."""

    prepared: float  # the build event: the drop look is prepared from here
    predicted: float  # the downbeat the drop is expected on
    lands: float | None  # the drop's downbeat (the cut), or None: no drop came, the look is discarded
    decided: float  # when used or discarded is known: the drop's downbeat, or the end of the window

    @property
    def used(self) -> bool:
        return self.lands is not None


def section_events(track: str | Path, beats: BeatMap) -> list[tuple[float, str]]:
    """(time, "build" | "drop" | "break") events of a whole track, fired as the live tracker fires them
    (on the first downbeat after the moment was heard), with the offline beats as its beats; each is
    timed when it was heard (a drop is then placed on its downbeat by `plan_drops`)."""
    det = SectionDetector(SAMPLE_RATE / HOP)
    b, down = beats.beats, set(np.flatnonzero(beats.positions == 0).tolist())
    bar_known = beats.downbeat_confidence > 0
    events: list[tuple[float, str]] = []
    n, k = 0, 0  # hops seen, next beat index
    for block in iter_audio_blocks(track, HOP, SAMPLE_RATE):
        x = np.asarray(block, np.float32).reshape(-1)
        for a in range(0, len(x) - HOP + 1, HOP):
            n += 1
            t = n * HOP / SAMPLE_RATE
            det.update(float(np.sqrt(np.mean(x[a:a + HOP] ** 2))), t)
            beat = k < len(b) and b[k] <= t
            here = k
            while k < len(b) and b[k] <= t:
                k += 1
            heard = det.pending
            kind = det.take(t, beat, beat and here in down, bar_known)
            if kind and heard is not None:
                events.append((heard[1], kind))
    return events


def plan_drops(events: Iterable[tuple[float, str]], grid: BarGrid, build_bars: int = BUILD_BARS,
               window_bars: int = WINDOW_BARS) -> list[DropCue]:
    """A cue per build: its drop predicted on the next group of `build_bars` bars, used when a drop
    event comes between the build and `window_bars` bars after the prediction (the cut is on that
    drop's downbeat), else discarded at the end of that window."""
    ev = sorted(events)
    bar = bar_seconds(grid)
    cues: list[DropCue] = []
    for t, kind in ev:
        if kind != "build":
            continue
        predicted = land(Quantize("bar", build_bars), t + 1e-3, grid)
        until = predicted + window_bars * bar
        drop = next((d for d, k in ev if k == "drop" and t < d <= until + 1e-6), None)
        if drop is not None:  # on the beat nearest the moment it was heard: the jump in energy places the
            # drop more surely than a bar count does (the demo's learned bar lines are a beat off, confidence 0.12)
            lands = land(Quantize("beat"), drop - 0.5 * grid.period(), grid) if grid.beats else drop
            cues.append(DropCue(t, predicted, lands, lands))
        else:
            cues.append(DropCue(t, predicted, None, until))
    return cues


def drop_changes(cues: Sequence[DropCue]) -> list[tuple[float, str]]:
    """The used drops as changes on the show's timeline: (the drop's downbeat, "drop")."""
    return [(c.lands, "drop") for c in cues if c.lands is not None]


class DropWatch:
    """Live: a "build" event prepares a cue (its drop predicted on the next group of `build_bars` bars of
    the live grid), a "drop" event within `window_bars` bars of the prediction uses it, the window's end
    discards it. `step` says what happened in this hop; `text` is the HUD's queued line."""

    def __init__(self, build_bars: int = BUILD_BARS, window_bars: int = WINDOW_BARS) -> None:
        self.build_bars, self.window_bars = build_bars, window_bars
        self.prepared: float | None = None
        self.predicted = 0.0
        self.until = 0.0

    def step(self, t: float, event: str, grid: BeatGrid | BarGrid | None) -> str:
        """"prepared" | "used" | "discarded" | "" for this hop's features (time `t`, section `event`)."""
        if event == "build" and self.prepared is None:
            self.prepared, self.predicted = t, land(Quantize("bar", self.build_bars), t + 1e-3, grid)
            self.until = self.predicted + self.window_bars * bar_seconds(grid)
            return "prepared"
        if self.prepared is None:
            return ""
        if event == "drop":
            self.prepared = None
            return "used"
        if t > self.until:
            self.prepared = None
            return "discarded"
        return ""

    def text(self, t: float, grid: BeatGrid | BarGrid | None) -> str:
        """"drop ready · 2 beats" while a cue waits for its predicted downbeat ("… · now" past it)."""
        if self.prepared is None:
            return ""
        n = beats_until(t, self.predicted, grid)
        return f"drop ready · {'now' if n == 0 else f'{n} beat' + ('s' if n > 1 else '')}"


def drop_came(after: np.ndarray, before: np.ndarray) -> bool:
    """Live, at the predicted downbeat: did the drop come? `after` is the audio heard since the
    downbeat, `before` the same stretch one beat earlier (so a kick on the beat is compared with the
    kick before it, not with the beat's quiet tail): a jump of `DROP_JUMP` in rms is the drop."""
    if len(after) == 0:
        return False
    rms = lambda x: float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0  # noqa: E731
    return rms(after) >= DROP_JUMP * max(rms(before), 1e-4)


def bar_seconds(grid: BeatGrid | BarGrid | None) -> float:
    if isinstance(grid, BarGrid) and grid.beats:
        return grid.period() * grid.beats_per_bar
    if isinstance(grid, BeatGrid) and grid.anchor is not None:
        return grid.period * grid.beats_per_bar
    return 2.0
