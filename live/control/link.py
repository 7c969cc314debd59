"""Ableton Link (aalink): the beat grid follows the Link session's tempo and phase.

`LinkFollower` reads a Link session object and turns it into what the show needs: `retime` puts
Link's tempo, beat phase and beat/downbeat triggers into each Features block (used as is until the
phase-locked grid lands), and `push` hands (bpm, beat phase, time) to any grid that implements
`TempoSink`, which then lets the audio tracker correct phase only within its own tolerance. Tap
tempo while Link is on sets the session's tempo for every peer.

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

    def hud(self) -> str:
        return f"Link {self.bpm:.1f} BPM, beat {self.bar_position + 1}, {self.peers} peer{'s' * (self.peers != 1)}"


class LinkFollower:
    """Reads `link` once per call; keeps just enough state to fire a beat trigger once per beat."""

    def __init__(self, link: LinkSession, quantum: int = 4, closer: Callable[[], None] | None = None) -> None:
        self.link = link
        self.quantum = max(1, int(quantum))
        self._closer = closer
        self._last_beat: int | None = None
        self._taps: deque[float] = deque(maxlen=6)

    def state(self) -> LinkState:
        beat = float(self.link.beat)
        whole = math.floor(beat)
        return LinkState(float(self.link.tempo), beat, beat - whole, int(whole % self.quantum), int(self.link.num_peers))

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

    def close(self) -> None:
        if self._closer is not None:
            self._closer()
            self._closer = None


def open_link(bpm: float = 120.0, quantum: int = 4, timeout: float = 5.0) -> LinkFollower:
    """Join (or start) a Link session on the local network. aalink needs a running asyncio loop,
    so one runs on its own thread; reading the session from other threads is what Link's
    app-thread API is for."""
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

    return LinkFollower(link, quantum, closer=close)
