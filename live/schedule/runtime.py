"""A directed show at run time: the schedule and the lyrics, asked "what now?" every frame.

`ShowDirection` is what the session and the exporter hold. Per frame (or render):

    d = direction.at(t)                      # Directed: preset knobs, style/lyric mix, lyric, cue
    compositor.configure(d.preset.reactivity, d.preset.motion.crossfade_ms)   # when d.preset changed
    cond = direction.condition(music, d)     # the conditioning to render (per frame, exact)

and once: `attach(understanding)` (the director takes over the style share and uses its prompt
encoder), `set_base(preset)` after a preset edit or switch, `observe(features)` for live input
(its beats grow the bar grid), `watch(on_error)` / `stop()` for hot reload: a schedule or lyrics
edit that fails to parse or to fit the track is reported and the last good one stays.
`at` is a pure function of t (and of the grid, for live input), so export's replay and resume
reproduce it exactly.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from engine.directing.director import Direction, Director
from engine.directing.grid import BarGrid
from engine.directing.imagery import LyricPrompter
from engine.directing.leitmotif import MoodTrack
from engine.directing.lyrics import LyricLine, Lyrics, lyrics_beside, read_lrc
from engine.errors import BeatcanvasError
from engine.types import Conditioning, Features
from live.presets.schema import Preset
from live.schedule.schema import Schedule, read_schedule
from live.schedule.timeline import ScheduledState, Timeline

log = logging.getLogger(__name__)

class Encodes(Protocol):
    """An understanding stage, as the director needs it: SDXL's text encoders, or None."""

    prompt_encoder: Any


@dataclass(frozen=True)
class Directed:
    preset: Preset  # the base preset with the scheduled knobs at t
    direction: Direction  # what the director mixes into the music's conditioning
    lyric: LyricLine | None = None
    sung: str = ""  # the words of `lyric` sung by t (all of them without word timings)
    cue: str = ""  # where the schedule is, for the HUD


class ShowDirection:
    def __init__(self, base: Preset, schedule: Schedule | None = None, lyrics: Lyrics | None = None,
                 grid: BarGrid | None = None, sections: tuple[float, ...] = (), live: bool = False,
                 prompter: LyricPrompter | None = None, schedule_path: Path | None = None,
                 lyrics_path: Path | None = None, letters: tuple[str, ...] = (), moods: MoodTrack | None = None) -> None:
        """`letters`: one per section start in `sections` (engine/directing/leitmotif.py); with the
        preset's `transitions.recall` > 0, a section whose letter came before recalls that look."""
        self.base = base
        self.letters = tuple(letters)
        self.moods = moods  # the track's feature scalars (a file track, recall on): the mood a return recalls
        self.schedule = schedule
        self.lyrics = lyrics
        self.grid = grid if grid is not None else (BarGrid() if live else None)
        self.sections = tuple(sections)
        self.live = live
        self.prompter = prompter or LyricPrompter()
        self.paths = {"schedule": schedule_path, "lyrics": lyrics_path}
        self.director: Director | None = None
        self._lock = threading.Lock()
        self._watchers: list[Any] = []
        self._grid_version = 0
        self._timeline = self._resolve(schedule, base)

    def _resolve(self, schedule: Schedule | None, base: Preset) -> Timeline | None:
        if schedule is None:
            return None
        return Timeline(schedule, base, self.grid, self.sections, live=self.live)

    # -- per frame --------------------------------------------------------------------------------

    def at(self, t: float) -> Directed:
        timeline = self._timeline
        if timeline is not None:
            state = timeline.at(t)
            then = self._recalled(t, timeline)
            if then is not None:
                state = timeline.recall(state, then, self.base.transitions.recall)
            preset, style, cue = state.preset, state.style, state.cue
        else:
            preset, style, cue = self.base, ((self.base.conditioning.style, 1.0),), ""
        line = self.lyrics.at(t) if self.lyrics is not None else None
        lyric, weight = "", 0.0
        if line is not None:
            imagery = self.prompter(line.text)
            lyric = imagery.text
            weight = min(1.0, preset.conditioning.lyrics_weight * imagery.emphasis) if lyric else 0.0
        direction = Direction(style, preset.conditioning.audio_weight, lyric, weight)
        return Directed(preset, direction, line, line.sung(t) if line else "", cue)

    def lyrics_ahead(self, t: float, count: int = 2) -> list[tuple[float, str]]:
        """The next `count` lyric lines after `t` as (start, text), for the studio page."""
        if self.lyrics is None:
            return []
        return [(ln.start, ln.text) for ln in self.lyrics.lines if ln.start > t][:count]

    def _then(self, t: float) -> float | None:
        """When a returning section (recall on) was at this point the first time it was heard; else None."""
        if self.base.transitions.recall <= 0 or len(self.letters) != len(self.sections) or not self.sections:
            return None
        k = bisect.bisect_right(self.sections, t) - 1
        if k < 0:
            return None
        first = self.letters.index(self.letters[k])
        return None if first == k else self.sections[first] + (t - self.sections[k])

    def _recalled(self, t: float, timeline: Timeline) -> ScheduledState | None:
        """The schedule's state at the same moment of this section's first occurrence (a pure function of t)."""
        then = self._then(t)
        return None if then is None else timeline.at(then)

    def recall_shift(self, t: float) -> float:
        """How far back the beats of `t` are read (0 outside a returning section): with recall ≥ ½ a
        returning section pulses on the beats found at its first occurrence (shifted to now), so its look
        returns whichever tracker made the grid (a tracker may lock later, or at another tempo level,
        the first time round)."""
        then = self._then(t)
        return 0.0 if then is None or self.base.transitions.recall < 0.5 else then - t

    def recall_render(self, t: float, features: Features) -> tuple[Features, float]:
        """What a renderer is given at `t`: in a returning section, the music's mood moved `recall` of the
        way to the mood of its first occurrence (a file track's; unchanged live), and the animation
        clock moved as far toward that moment (the procedural renderers' motion is a function of it)."""
        then = self._then(t)
        if then is None:
            return features, t
        w = self.base.transitions.recall
        heard = self.moods.recall(features, then, w) if self.moods is not None else features
        return heard, t + w * (then - t)

    def condition(self, music: Conditioning | None, directed: Directed) -> Conditioning | None:
        """The conditioning to render at this frame (the music's own without text encoders)."""
        if self.director is None:
            return music
        return self.director.condition(music, directed.direction)

    # -- wiring -----------------------------------------------------------------------------------

    def attach(self, understanding: Encodes | None) -> None:
        """Use this understanding's prompt encoder and take over its style share (call again after
        a rebuild). Without text encoders, only the compositor's knobs follow the schedule."""
        if understanding is None or understanding.prompt_encoder is None:
            self.director = None
            log.warning("schedule/lyrics: no text encoders in this show, so style and lyrics do not reach the "
                        "picture (the SDXL renderer with a zero-shot head or a style text has them)")
            return
        # The director mixes the style in per frame: the show was resolved with ShowOptions(directed=True),
        # so the understanding's own style share is off (live/session/show.py).
        director = Director(understanding.prompt_encoder)
        director.prepare(self.texts())
        self.director = director

    def changes(self) -> list[tuple[float, str]]:
        """(time, which key) of the schedule's switching keys: when each new look must be seen."""
        return self._timeline.changes() if self._timeline is not None else []

    def texts(self) -> list[str]:
        out = [self.base.conditioning.style]
        if self._timeline is not None:
            out += self._timeline.texts()
        if self.lyrics is not None:
            out += [self.prompter(line.text).text for line in self.lyrics.lines]
        return [t for t in dict.fromkeys(out) if t]

    def set_base(self, preset: Preset) -> None:
        """A preset edit or switch: the schedule now changes that preset's knobs."""
        try:
            timeline = self._resolve(self.schedule, preset)
        except BeatcanvasError as e:  # a preset the schedule does not fit: keep the old base
            log.warning("schedule does not fit preset %s: %s", preset.name, e)
            return
        self.base, self._timeline = preset, timeline

    def observe(self, features: Features) -> None:
        """Live input: a beat the tracker heard extends the grid (bar keys are placed on it)."""
        if not (self.live and features.beat and self.grid is not None):
            return
        with self._lock:
            grown = self.grid.with_beat(features.t)
            if grown is self.grid:
                return
            self.grid = grown
            if self.schedule is not None and self.schedule.needs_grid:
                self._timeline = self._resolve(self.schedule, self.base)

    def fingerprint(self) -> str:
        """What export's manifest records: another schedule or lyrics file means other frames."""
        h = hashlib.sha256()
        h.update((self.schedule.digest if self.schedule else "").encode())
        for line in self.lyrics.lines if self.lyrics else ():
            h.update(f"{line.start:.4f}|{line.end:.4f}|{line.text}\n".encode())
        return h.hexdigest()[:32]

    # -- hot reload -------------------------------------------------------------------------------

    def watch(self, on_error: Callable[[str], None]) -> None:
        from live.presets.watch import PresetWatcher

        watched: list[tuple[str, Path | None, Callable[[Path], Any], Callable[[Any], None]]] = [
            ("schedule", self.paths["schedule"], read_schedule, lambda new: self._new_schedule(new, on_error)),
            ("lyrics", self.paths["lyrics"], read_lrc, lambda new: self._new_lyrics(new, on_error)),
        ]
        for what, path, loader, apply in watched:
            if path is not None:
                watcher = PresetWatcher(path, apply, on_error, loader=loader, what=what)
                watcher.start()
                self._watchers.append(watcher)

    def stop(self) -> None:
        for w in self._watchers:
            w.stop(timeout=0.2)
        self._watchers.clear()

    def _new_schedule(self, schedule: Schedule, on_error: Callable[[str], None]) -> None:
        try:
            timeline = Timeline(schedule, self.base, self.grid, self.sections, live=self.live)
        except BeatcanvasError as e:  # it parsed but does not fit this track
            on_error(f"{e} (keeping the last good schedule)")
            return
        if self.director is not None:
            self.director.prepare(timeline.texts())
        self.schedule, self._timeline = schedule, timeline
        log.info("schedule reloaded (%d keys)", len(schedule.keys))

    def _new_lyrics(self, lyrics: Lyrics, on_error: Callable[[str], None]) -> None:
        for problem in lyrics.problems:
            on_error(problem)
        if self.director is not None:
            self.director.prepare(self.prompter(line.text).text for line in lyrics.lines)
        self.lyrics = lyrics


def direction_for_track(track: Path | None, base: Preset, schedule_path: Path | None = None,
                        lyrics_path: Path | None = None, say: Callable[[str], None] = log.warning,
                        live: bool = False) -> ShowDirection | None:
    """The show's direction from --schedule / --lyrics (or `track.lrc` beside the track); None when
    there is neither. A file track's beats and sections are analysed here when the schedule needs
    them (a few hundred times faster than real time). `say` gets one line per problem worth seeing."""
    schedule = read_schedule(schedule_path) if schedule_path is not None else None
    if lyrics_path is None and track is not None:
        lyrics_path = lyrics_beside(track)
        if lyrics_path is not None:
            say(f"lyrics: using {lyrics_path} (found beside the track)")
    lyrics = read_lrc(lyrics_path) if lyrics_path is not None else None
    if schedule is None and lyrics is None:
        return None
    for problem in lyrics.problems if lyrics else ():
        say(problem)
    grid: BarGrid | None = None
    sections: tuple[float, ...] = ()
    letters: tuple[str, ...] = ()
    moods: MoodTrack | None = None
    if schedule is not None and track is not None and not live:
        if schedule.needs_grid or base.transitions.quantize != "off":
            from engine.audio.beatnet.choice import analyze_track_beats

            grid = BarGrid.from_beatmap(analyze_track_beats(track)[0], schedule.beats_per_bar)
        if schedule.needs_sections or base.transitions.recall > 0:
            from engine.audio.io import iter_audio_blocks
            from engine.directing.sections import find_sections, section_features
            from engine.types import SAMPLE_RATE

            found = find_sections(section_features(iter_audio_blocks(track, 48_000), SAMPLE_RATE))
            sections = tuple(s.start for s in found)
            letters = tuple(s.letter for s in found)
            if base.transitions.recall > 0:
                from engine.audio.analysis import analyze_track

                moods = MoodTrack.from_frames(analyze_track(track)["frames"])
            if schedule.sections and len(schedule.sections) != len(found):
                letters = ()  # the file's own sections: the letters were found for others
    return ShowDirection(base, schedule, lyrics, grid, sections, live=live,
                         schedule_path=schedule_path, lyrics_path=lyrics_path, letters=letters, moods=moods)
