"""Ableton Link (aalink): beatcanvas follows a Link session's beat (`--link`) or leads it (`--link-lead`).

`LinkFollower` reads a Link session object and turns it into what the show needs: `retime` puts
Link's tempo, beat phase and beat/downbeat triggers into each Features block (used as is until the
phase-locked grid lands), and `push` hands (bpm, beat phase, time) to any grid that implements
`TempoSink`, which then lets the audio tracker correct phase only within its own tolerance. Tap
tempo while Link is on sets the session's tempo for every peer.

`LinkLeader` goes the other way: the beat beatcanvas hears (its tracker's grid) becomes the session's,
so a DAW, a lighting desk or another visualizer on the network plays in time with the music in the
room. It sends the tempo whenever it moves, and re-aligns the session's beat (and bar, where the
tracker knows the downbeat) when they drift apart by more than `PHASE_TOLERANCE_S`, at most once a
bar, so peers are not jerked around on every estimate. While the tracker is unsure (confidence below
`LEAD_MIN_CONFIDENCE`, or no beat yet) the session keeps its last tempo and phase.

The Link object is anything with aalink's surface (`LinkSession`); tests pass a fake.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from engine.errors import BeatcanvasError
from engine.types import Features

INSTALL_HINT = "pip install 'beatcanvas[link]' (aalink)"


class LinkSession(Protocol):
    """The part of `aalink.Link` used here."""

    enabled: bool
    quantum: float
    tempo: float

    @property
    def beat(self) -> float: ...

    @property
    def num_peers(self) -> int: ...

    def force_beat(self, beat: float) -> None:
        """Map `beat` to now, for every peer (Link's forceBeatAtTime)."""


class TempoSink(Protocol):
    """A beat grid that can be steered: beats at `at_time - beat_phase * 60 / bpm + k * 60 / bpm`."""

    def set_tempo_phase(self, bpm: float, beat_phase: float, at_time: float) -> None: ...


@dataclass(frozen=True)
class LinkState:
    bpm: float
    beat: float  # Link's running beat count
    phase: float  # 0..1 within the beat
    bar_position: int  # 0 = downbeat, up to quantum - 1
    peers: int

    def hud(self, role: str = "Link") -> str:
        return f"{role} {self.bpm:.1f} BPM, beat {self.bar_position + 1}, {self.peers} peer{'s' * (self.peers != 1)}"


class LinkPeer:
    """A joined Link session: its state for the HUD, and leaving it."""

    role = "Link"

    def __init__(self, link: LinkSession, quantum: int = 4, closer: Callable[[], None] | None = None) -> None:
        self.link = link
        self.quantum = max(1, int(quantum))
        self._closer = closer

    def state(self) -> LinkState:
        beat = float(self.link.beat)
        whole = math.floor(beat)
        return LinkState(float(self.link.tempo), beat, beat - whole, int(whole % self.quantum), int(self.link.num_peers))

    def hud(self) -> str:
        return self.state().hud(self.role)

    def close(self) -> None:
        if self._closer is not None:
            self._closer()
            self._closer = None


class LinkFollower(LinkPeer):
    """Reads `link` once per call; keeps just enough state to fire a beat trigger once per beat."""

    def __init__(self, link: LinkSession, quantum: int = 4, closer: Callable[[], None] | None = None) -> None:
        super().__init__(link, quantum, closer)
        self._last_beat: int | None = None
        self._taps: deque[float] = deque(maxlen=6)

    def retime(self, features: Features) -> Features:
        """`features` with Link's tempo and phase; `beat` is True in the first block of each beat
        and `downbeat` on the first beat of each bar."""
        s = self.state()
        index = math.floor(s.beat)
        landed = self._last_beat is not None and index > self._last_beat
        self._last_beat = index
        return dataclasses.replace(features, tempo_bpm=s.bpm, beat_phase=s.phase, beat=landed,
                                   downbeat=landed and s.bar_position == 0)

    def push(self, sink: TempoSink, at_time: float) -> LinkState:
        s = self.state()
        sink.set_tempo_phase(s.bpm, s.phase, at_time)
        return s

    def tap(self, t: float) -> float | None:
        """Tap tempo: from the fourth tap on, the median interval sets Link's tempo (for every
        peer). A pause longer than two seconds starts over. Returns the new BPM, if any."""
        if self._taps and t - self._taps[-1] > 2.0:
            self._taps.clear()
        self._taps.append(t)
        if len(self._taps) < 4:
            return None
        gaps = sorted(b - a for a, b in zip(self._taps, list(self._taps)[1:]))
        bpm = 60.0 / gaps[len(gaps) // 2]
        if not 20.0 <= bpm <= 999.0:  # Link's own tempo range
            return None
        self.link.tempo = bpm
        return bpm


LEAD_MIN_CONFIDENCE = 0.4  # below this grid confidence the session is left alone (drums: ~0.55; soft drumless music: ~0.2)
PHASE_TOLERANCE_S = 0.02  # the session's beat is re-aligned when it is this far off the heard beat
TEMPO_STEP_BPM = 0.05  # smaller tempo moves are not sent


class LinkLeader(LinkPeer):
    """Sends the tracker's beat grid to the Link session; see the module's docstring."""

    role = "Link lead"

    def __init__(self, link: LinkSession, quantum: int = 4, closer: Callable[[], None] | None = None) -> None:
        super().__init__(link, quantum, closer)
        self._last_align: float | None = None

    def lead(self, features: Features) -> None:
        """Called with each Features block, as soon as it is computed: `features.t` (the newest audio
        heard) is taken as Link's now."""
        g = features.grid
        if g.anchor is None or g.confidence < LEAD_MIN_CONFIDENCE:
            return
        if abs(float(self.link.tempo) - g.bpm) > TEMPO_STEP_BPM:
            self.link.tempo = g.bpm
        t = features.t
        into = (t - g.anchor) / g.period - g.beat_index(t)  # how far into its beat t is (the grid's own rounding)
        position = g.position_at(t)
        if position >= 0:  # the bar is known: the session's bars start on the heard downbeats
            if g.beats_per_bar != self.quantum:
                self.quantum = g.beats_per_bar
                self.link.quantum = float(g.beats_per_bar)
            wanted, span = position + into, self.quantum
        else:  # only the beat: its phase
            wanted, span = into, 1
        now = float(self.link.beat)
        off = (wanted - now + span / 2) % span - span / 2  # beats, the shorter way round
        bar_s = g.period * max(1, g.beats_per_bar)
        if abs(off) * g.period <= PHASE_TOLERANCE_S or (self._last_align is not None and t - self._last_align < bar_s):
            return
        self.link.force_beat(now + off)
        self._last_align = t


def open_link(bpm: float = 120.0, quantum: int = 4, timeout: float = 5.0, lead: bool = False) -> LinkFollower | LinkLeader:
    """Join (or start) a Link session on the local network, to follow it or (`lead`) to lead it.
    aalink needs a running asyncio loop, so one runs on its own thread; reading the session from
    other threads is what Link's app-thread API is for."""
    try:
        import aalink
    except ImportError:
        raise BeatcanvasError(f"Ableton Link needs aalink: {INSTALL_HINT}") from None
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="beatcanvas-link", daemon=True)
    thread.start()

    async def make() -> LinkSession:
        link = aalink.Link(bpm)
        link.quantum = quantum
        link.enabled = True
        return link

    try:
        link = asyncio.run_coroutine_threadsafe(make(), loop).result(timeout)
    except Exception as e:  # noqa: BLE001
        loop.call_soon_threadsafe(loop.stop)
        raise BeatcanvasError(f"Ableton Link could not start ({e}); running without it") from None

    def close() -> None:
        link.enabled = False
        loop.call_soon_threadsafe(loop.stop)
        thread.join(1.0)

    return (LinkLeader if lead else LinkFollower)(link, quantum, closer=close)
