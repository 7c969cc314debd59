"""OSC out: what beatcanvas hears, broadcast so lights and other visuals can follow it.

Per display frame (or only on beats), one bundle:

    /beatcanvas/out/bpm f        /beatcanvas/out/phase f (0..1 between beats)
    /beatcanvas/out/beat i       1 in the frame a beat lands, else 0 (frame mode)
    /beatcanvas/out/downbeat i   1 on the first beat of a bar (when the tracker knows bars)
    /beatcanvas/out/rms f        /beatcanvas/out/onset f
    /beatcanvas/out/low f, /mid f, /high f   band energies (1.0 = typical for this track)
    /beatcanvas/out/bands fff    the same three in one message
    /beatcanvas/out/valence f    /beatcanvas/out/arousal f   (-1..1)
    /beatcanvas/out/stems ffff   percussive, bass, harmonic, voice levels (1.0 = the mix's typical level)

and on each conditioning hop: `/beatcanvas/out/labels s f s f s f` (what the head heard, top three
with weights) and `/beatcanvas/out/prompt s`. UDP, non-blocking: a missing receiver costs nothing.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import UDPClient

from engine.errors import BeatcanvasError
from engine.types import Conditioning, Features

log = logging.getLogger(__name__)

OUT = "/beatcanvas/out"
Every = Literal["frame", "beat"]


# address (under /beatcanvas/out) → (OSC types, what it carries), for `beatcanvas osc-map`.
OUT_ADDRESSES: dict[str, tuple[str, str]] = {
    "bpm": ("f", "tempo, beats per minute"),
    "phase": ("f", "0..1 from one beat to the next"),
    "beat": ("i", "1 in the frame a beat lands, else 0"),
    "downbeat": ("i", "1 on the first beat of a bar"),
    "rms": ("f", "loudness (RMS)"),
    "onset": ("f", "onset strength"),
    "low": ("f", "bass energy, 1.0 = typical for the track"),
    "mid": ("f", "mid energy"),
    "high": ("f", "treble energy"),
    "bands": ("fff", "low, mid, high in one message"),
    "valence": ("f", "-1 negative .. 1 positive"),
    "arousal": ("f", "-1 calm .. 1 energetic"),
    "stems": ("ffff", "percussive, bass, harmonic, voice levels, 1.0 = the mix's typical level"),
    "labels": ("sfsfsf", "per hop: what the head heard, top three with weights"),
    "prompt": ("s", "per hop: the prompt the head encoded"),
}


def parse_target(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """'HOST:PORT' or 'PORT' → (host, port)."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 < number < 65536:
        raise BeatcanvasError(f"--osc-out {text!r} is not HOST:PORT or PORT; write it like --osc-out 127.0.0.1:9001")
    return host or default_host, number


def _message(address: str, *args: Any) -> Any:
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return b.build()


class OscBroadcast:
    """Sends features to one host:port; `every` is "frame" or "beat"."""

    def __init__(self, host: str, port: int, every: Every = "frame", client: Any = None) -> None:
        if every not in ("frame", "beat"):
            raise BeatcanvasError(f"--osc-out-every {every!r}: use frame or beat")
        self.target = (host, int(port))
        self.every = every
        self.client = client or UDPClient(host, int(port))
        self.sent = 0
        self.errors = 0
        self._last_t: float | None = None
        self._last_phase: float | None = None
        self._last_error_log = -1e9

    def _landed(self, f: Features) -> bool:
        """A beat landed since the last call: the tracker's flag, or the phase wrapping (the
        display can skip the one feature block that carried the flag)."""
        if f.t == self._last_t:
            return False
        wrapped = self._last_phase is not None and f.beat_phase < self._last_phase - 0.5
        self._last_t, self._last_phase = f.t, f.beat_phase
        return bool(f.beat) or wrapped

    def features(self, f: Features | None) -> None:
        """Once per display frame with the newest features."""
        if f is None:
            return
        landed = self._landed(f)
        if self.every == "beat" and not landed:
            return
        # Features gains `downbeat` with the beat-grid work; until then no bar is known.
        downbeat = landed and bool(getattr(f, "downbeat", False))
        bundle = OscBundleBuilder(IMMEDIATELY)
        for address, *args in (
            ("bpm", float(f.tempo_bpm)), ("phase", float(f.beat_phase)),
            ("beat", int(landed)), ("downbeat", int(downbeat)),
            ("rms", float(f.rms)), ("onset", float(f.onset)),
            ("low", float(f.low)), ("mid", float(f.mid)), ("high", float(f.high)),
            ("bands", float(f.low), float(f.mid), float(f.high)),
            ("valence", float(f.valence)), ("arousal", float(f.arousal)),
            ("stems", *(float(v) for v in f.stems.level)),
        ):
            bundle.add_content(_message(f"{OUT}/{address}", *args))
        self._send(bundle.build())

    def hop(self, cond: Conditioning | None) -> None:
        """Once per conditioning hop: the head's top labels and the prompt it encoded."""
        if cond is None:
            return
        top = sorted(cond.labels.items(), key=lambda kv: -kv[1])[:3]
        bundle = OscBundleBuilder(IMMEDIATELY)
        bundle.add_content(_message(f"{OUT}/labels", *[x for k, v in top for x in (str(k), float(v))]))
        bundle.add_content(_message(f"{OUT}/prompt", cond.prompt or ""))
        self._send(bundle.build())

    def _send(self, packet: Any) -> None:
        try:
            self.client.send(packet)
            self.sent += 1
        except OSError as e:  # unreachable host, full buffer: drop this one, say so now and then
            self.errors += 1
            now = time.monotonic()
            if now - self._last_error_log > 10.0:
                self._last_error_log = now
                log.warning("OSC out to %s:%d: %s", *self.target, e)

    def close(self) -> None:
        self.client.close()
