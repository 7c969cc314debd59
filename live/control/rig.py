"""The VJ rig around the show: OSC in/out, MIDI, Ableton Link and NDI / Spout / Syphon video out.

`Rig` builds what the options ask for and gives the session five hooks (see `Session`):

    drain(preset) -> Drained   once per display frame: knob changes (a new preset), commands, HUD lines
    features(f) -> Features    on the feature thread, per block: Link's tempo and phase (when on)
    frame(picture, features)   once per display frame, after composing and before the HUD is drawn
    hop(conditioning)          once per conditioning step: labels and prompt for OSC out
    tap(t)                     tap tempo (sets Link's tempo when Link is on)

Each part that cannot start (a port in use, a library or device missing) is one line at start
and the show goes on without it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import BeatcanvasError
from engine.types import Conditioning, Features
from live.control.hub import ControlHub, Drained
from live.control.knobs import Command, ControlError, ControlInputError
from live.control import DEFAULT_HOST
from live.screen.hud import HudState

log = logging.getLogger(__name__)

DEFAULT_MIDI_MAP = Path("beatcanvas-midi.toml")


@dataclass
class RigOptions:
    osc_port: int | None = None  # OSC in; None = off
    osc_host: str = DEFAULT_HOST
    osc_out: str | None = None  # "HOST:PORT" or "PORT"; None = off
    osc_out_every: str = "frame"  # frame | beat
    midi: str | None = None  # part of a MIDI input's name ("" = the first); None = off
    midi_map: Path | None = None
    link: bool = False  # follow a Link session's beat
    link_lead: bool = False  # lead it: the beat heard here goes to every peer
    ndi: bool = False
    spout: bool = False
    syphon: bool = False
    fps: float = 60.0  # announced to NDI receivers
    web: bool = False  # the studio page (live/web)
    web_host: str = DEFAULT_HOST
    web_port: int = 8765  # 0 asks the OS for a free port
    web_preset_dirs: tuple[Path, ...] = ()  # folders of presets started by path (the page may edit them)

    @property
    def any(self) -> bool:
        return any((self.osc_port is not None, self.osc_out, self.midi is not None, self.link, self.link_lead,
                    self.ndi, self.spout, self.syphon, self.web))


@dataclass
class Rig:
    options: RigOptions
    hub: ControlHub = field(default_factory=ControlHub)
    osc_in: Any = None
    osc_out: Any = None
    midi: Any = None
    link: Any = None
    senders: list[Any] = field(default_factory=list)
    web: Any = None  # live.web.server.WebServer
    feed: Any = None  # live.web.feed.WebFeed: what the page sees, filled every display frame
    current: Callable[[], Any] | None = None
    problems: list[str] = field(default_factory=list)
    _last_knob: str | None = None
    _last_failure: float = -1e9

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self, current: Callable[[], Any], say: Callable[[str], None] = log.warning) -> None:
        """Start every part asked for; `current()` returns the running preset."""
        o = self.options
        self.current = current
        for wanted, starter in (
            (o.osc_port is not None, self._start_osc_in), (bool(o.osc_out), self._start_osc_out),
            (o.midi is not None, self._start_midi), (o.link or o.link_lead, self._start_link),
            (o.ndi, self._start_ndi), (o.spout, self._start_spout), (o.syphon, self._start_syphon),
            (o.web, self._start_web),
        ):
            if not wanted:
                continue
            try:
                say(starter(current))
            except BeatcanvasError as e:
                self.problems.append(str(e))
                say(str(e))

    def _start_osc_in(self, current: Callable[[], Any]) -> str:
        from live.control.osc import OscIn

        self.osc_in = OscIn(self.hub, self.options.osc_host, int(self.options.osc_port or 0), current=current)
        self.osc_in.start()
        host, port = self.osc_in.address
        scope = ("only this machine can reach it; --osc-host 0.0.0.0 opens it to the network"
                 if host == "127.0.0.1" else "reachable from the network")
        return f"OSC in: listening on {host}:{port} ({scope})"

    def _start_osc_out(self, current: Callable[[], Any]) -> str:
        from live.outputs.osc_out import OscBroadcast, parse_target

        host, port = parse_target(str(self.options.osc_out))
        self.osc_out = OscBroadcast(host, port, every=self.options.osc_out_every)  # type: ignore[arg-type]
        return f"OSC out: features to {host}:{port} every {self.options.osc_out_every}"

    def _start_midi(self, current: Callable[[], Any]) -> str:
        from live.control.midi import MidiControl
        from live.control.midi_map import load_mapping

        path = self.options.midi_map or DEFAULT_MIDI_MAP
        midi = MidiControl(self.hub, load_mapping(path), current, path)
        name = midi.open(self.options.midi or None)
        self.midi = midi
        return f"MIDI in: {name} ({len(midi.mapping.bind)} bindings from {path}; M or /beatcanvas/learn to learn)"

    def _start_link(self, current: Callable[[], Any]) -> str:
        from live.control.link import open_link

        self.link = open_link(lead=self.options.link_lead)
        role = "leading: peers follow the beat heard here" if self.options.link_lead else "following its tempo and phase"
        return f"Ableton Link: joined, {role} ({self.link.hud()})"

    def _start_web(self, current: Callable[[], Any]) -> str:
        try:
            from engine.models.cache import cache_dir
            from live.web.editor import PresetFiles
            from live.web.feed import WebFeed
            from live.web.server import Studio, WebOptions, WebServer
            from live.web.thumbs import Thumbnails
        except ImportError:
            raise BeatcanvasError("studio page: its web libraries are missing: pip install 'beatcanvas[web]'") from None

        o = self.options
        feed = WebFeed()
        studio = Studio(self.hub, feed, current, midi_ready=lambda: self.midi is not None,
                        files=PresetFiles(o.web_preset_dirs), thumbs=Thumbnails(cache_dir() / "thumbnails"))
        server = WebServer(studio, WebOptions(host=o.web_host, port=o.web_port))
        server.start()
        self.web, self.feed = server, feed
        scope = ("only this machine can reach it; --web-host 0.0.0.0 opens it to phones on the network"
                 if server.guard.loopback else "reachable from the network with its token; open this URL once")
        return f"studio page: {server.url} ({scope})"

    def _add_sender(self, backend: Any) -> str:
        from live.outputs.sender import SenderThread

        self.senders.append(SenderThread(backend, on_error=self._sender_error))
        return f"{backend.name} out: sending as \"{backend.sender_name}\""

    def _start_ndi(self, current: Callable[[], Any]) -> str:
        from live.outputs.ndi import NdiBackend

        return self._add_sender(NdiBackend(fps=self.options.fps))

    def _start_spout(self, current: Callable[[], Any]) -> str:
        from live.outputs.spout import SpoutBackend

        return self._add_sender(SpoutBackend())

    def _start_syphon(self, current: Callable[[], Any]) -> str:
        from live.outputs.syphon import SyphonBackend

        return self._add_sender(SyphonBackend())

    def _sender_error(self, message: str) -> None:
        self.hub.put(ControlError(message))

    def stop(self) -> None:
        for part in (self.web, self.osc_in, self.midi, self.link, self.osc_out, *self.senders):
            if part is None:
                continue
            try:
                part.close()
            except Exception as e:  # noqa: BLE001 - shutting down: report, never raise
                log.info("stopping %s: %s", type(part).__name__, e)

    # -- hooks ------------------------------------------------------------------------------------

    def drain(self, preset: Any) -> Drained:
        d = self.hub.drain(preset)
        if d.changed:
            self._last_knob = d.changed[-1]
        kept = []
        for c in d.commands:
            if c.name == "learn":
                self._learn(c, d)
            else:
                kept.append(c)
        d.commands = kept
        return d

    def _learn(self, c: Command, d: Drained) -> None:
        target = c.arg if isinstance(c.arg, str) else self._last_knob
        if self.midi is None:
            d.errors.append("MIDI learn needs a MIDI input: start with --midi (and --midi-map FILE)")
        elif target is None:
            d.errors.append("MIDI learn: say which knob (/beatcanvas/learn ADDRESS) or move one over OSC first")
        else:
            try:
                d.notices.append(self.midi.arm(target))
            except ControlInputError as e:
                d.errors.append(str(e))

    # The hooks below run inside the show's loops: a failure is reported (at most every few
    # seconds) and that part skips a beat; it never reaches the loop.

    def _failed(self, where: str, e: Exception) -> None:
        now = time.monotonic()
        if now - self._last_failure > 5.0:
            self._last_failure = now
            log.warning("rig %s: %s", where, e, exc_info=log.isEnabledFor(logging.DEBUG))
            self.hub.put(ControlError(f"{where}: {e}"))

    def features(self, f: Features) -> Features:
        if self.link is None:
            return f
        try:
            if self.options.link_lead:  # the picture keeps its own beat; the session gets it
                self.link.lead(f)
                return f
            return self.link.retime(f)
        except Exception as e:  # noqa: BLE001
            self._failed("Link", e)
            return f

    def frame(self, picture: Any, features: Features | None, state: HudState | None = None) -> None:
        """`picture`: the composed frame without the HUD, as a pygame Surface or, from a GL
        compositor's readback, a `VideoFrame` (HxWx4 uint8, BGRA or RGBA). `state`: the HUD's
        numbers, for the studio page's scopes."""
        try:
            if self.feed is not None:
                self.feed.frame(picture, features, state, self.current)
            if self.osc_out is not None:
                self.osc_out.features(features)
            if self.senders:
                from live.outputs.sender import VideoFrame, surface_frame

                self.video(picture if isinstance(picture, VideoFrame) else surface_frame(picture))
        except Exception as e:  # noqa: BLE001
            self._failed("rig output", e)

    def video(self, frame: Any) -> None:
        """A composed `VideoFrame` to every video sender (for a compositor that is not pygame)."""
        for s in self.senders:
            s.submit(frame)

    def hop(self, cond: Conditioning | None) -> None:
        try:
            if self.osc_out is not None:
                self.osc_out.hop(cond)
        except Exception as e:  # noqa: BLE001
            self._failed("OSC out", e)

    def tap(self, t: float) -> None:
        try:
            if self.link is not None and not self.options.link_lead:  # leading: taps reach the session through the tracker's grid
                self.link.tap(t)
        except Exception as e:  # noqa: BLE001
            self._failed("Link tap", e)

    def status(self) -> str:
        """One HUD line: what is connected."""
        parts = []
        if self.osc_in is not None:
            parts.append(f"OSC :{self.osc_in.address[1]} ({self.osc_in.messages} msgs)")
        if self.midi is not None and self.midi.port_name:
            parts.append(f"MIDI {self.midi.port_name}")
        if self.link is not None:
            parts.append(self.link.hud())
        parts += [f"{s.backend.name} {s.sent} sent" for s in self.senders]
        if self.web is not None:
            parts.append(f"page :{self.web.port} ({self.feed.viewers} watching)")
        return "   ".join(parts)
