"""OSC in (python-osc): every knob and command at a stable address, never fatal.

    /beatcanvas/<section>/<key> VALUE   set a preset knob (`beatcanvas osc-map` lists them)
    /beatcanvas/preset "neon-noir"      switch preset;  /beatcanvas/preset/next, /preset/prev
    /beatcanvas/cue/preset "neon-noir" [downbeat|beat|bar:N|off]
                                        switch on the next downbeat (or what the 2nd argument names),
                                        its first frame on screen then: rendered early by the latency
    /beatcanvas/freeze [0|1]            freeze / blackout / hud: 1 on, 0 off, no argument flips
    /beatcanvas/tap                     tap tempo (a button's release, value 0, is ignored)
    /beatcanvas/style "text"            the style text (same as /beatcanvas/conditioning/style)
    /beatcanvas/learn [ADDRESS]         MIDI learn: the next CC binds to ADDRESS
    /beatcanvas/ping                    replies /beatcanvas/pong to the sender
    /beatcanvas/get ADDRESS             replies ADDRESS VALUE to the sender

The server thread only translates and `put`s into the ControlHub; the schema check happens when the
display loop drains it. It binds 127.0.0.1 unless told otherwise: a show's knobs should not be
reachable from the whole venue network by accident.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

from engine.directing.quantize import Quantize
from engine.errors import BeatcanvasError
from live.control import DEFAULT_HOST
from live.control.hub import ControlHub
from live.presets.schema import NAME_PATTERN
from live.control.knobs import (
    COMMANDS, ROOT, Command, ControlError, ControlInputError, ControlItem, KnobChange, find_knob,
)

log = logging.getLogger(__name__)

DEFAULT_PORT = 9000


QUERIES = {f"{ROOT}/ping": "replies /beatcanvas/pong", f"{ROOT}/get": "ADDRESS: replies ADDRESS VALUE"}


def _single(address: str, args: tuple[Any, ...]) -> Any:
    if len(args) != 1:
        spec = COMMANDS.get(address.rstrip("/"))
        if spec is not None:
            example = '"some text"' if spec.arg == "text" else "1"
        else:
            example = find_knob(address).example
        raise ControlInputError(f"{address} takes one value, got {len(args)}; send e.g. {address} {example}")
    return args[0]


def parse_message(address: str, args: tuple[Any, ...], origin: str = "OSC") -> ControlItem | None:
    """One OSC message → a control item; None for a trigger's release (value 0)."""
    try:
        spec = COMMANDS.get(address.rstrip("/"))
        if spec is None:
            return KnobChange(*_section_key(address), _single(address, args), origin)
        if spec.name == "style":
            return KnobChange("conditioning", "style", str(_single(address, args)), origin)
        if spec.arg == "none":
            return None if args and not args[0] else Command(spec.name, None, origin)
        if spec.arg == "toggle":
            return Command(spec.name, None if not args else bool(args[0]), origin)
        if spec.arg == "address":
            return Command(spec.name, str(args[0]) if args else None, origin)
        if spec.arg == "cue":
            return _cue(address, args, origin)
        value = _single(address, args)
        if not isinstance(value, str) or not re.fullmatch(NAME_PATTERN, value.strip()):
            # a name, never a path: OSC may come from the network
            raise ControlInputError(f'{address} needs a preset name as a string, e.g. {address} "neon-noir"')
        return Command(spec.name, value.strip(), origin)
    except ControlInputError as e:
        return ControlError(f"{origin}: {e}")


def _cue(address: str, args: tuple[Any, ...], origin: str) -> Command:
    """`/beatcanvas/cue/preset "name" [quantize]`: a switch queued for the next downbeat (or the
    boundary named), like a quantised preset switch."""
    usage = f'send e.g. {address} "neon-noir" downbeat (when: off, beat, downbeat or bar:N)'
    if not 1 <= len(args) <= 2 or not all(isinstance(a, str) for a in args):
        raise ControlInputError(f"{address} needs a preset name and optionally when it lands; {usage}")
    name, when = str(args[0]).strip(), str(args[1]).strip() if len(args) == 2 else "downbeat"
    if not re.fullmatch(NAME_PATTERN, name):  # a name, never a path: OSC may come from the network
        raise ControlInputError(f"{address} needs a preset name, not {name!r}; {usage}")
    try:
        Quantize.parse(when)
    except ValueError as e:
        raise ControlInputError(f"{address}: {e}; {usage}") from None
    return Command("cue", name, origin, quantize=when)


def _section_key(address: str) -> tuple[str, str]:
    knob = find_knob(address)
    return knob.section, knob.key


class _Server(BlockingOSCUDPServer):
    """Reports datagrams that are not OSC at all (python-osc drops them silently)."""

    on_garbage: Callable[[tuple[str, int]], None] | None = None
    on_error: Callable[[tuple[str, int], BaseException | None], None] | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """What python-osc raises while decoding (an address that is not UTF-8, a truncated
        argument) becomes one line, not a traceback from the server thread."""
        e = sys.exc_info()[1]
        if self.on_error is not None:
            self.on_error(client_address, e)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        ok = super().verify_request(request, client_address)
        if not ok and self.on_garbage is not None:
            self.on_garbage(client_address)
        return ok


class OscIn:
    """A UDP OSC server on its own thread that feeds `hub`. `current()` returns the running
    preset, for `/beatcanvas/get` replies."""

    def __init__(self, hub: ControlHub, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 current: Callable[[], Any] | None = None) -> None:
        self.hub = hub
        self.host, self.port = host, int(port)
        self.current = current
        self.messages = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._last_garbage = 0.0

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound (port 0 asks the OS for a free one)."""
        if self._server is None:
            return self.host, self.port
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(self._on_message, needs_reply_address=True)
        try:
            server = _Server((self.host, self.port), dispatcher)
        except OSError as e:
            raise BeatcanvasError(
                f"OSC in: cannot listen on {self.host}:{self.port} ({e.strerror or e}); "
                "another program may hold the port: pick another with --osc-port"
            ) from None
        server.on_garbage = self._on_garbage
        server.on_error = self._on_decode_error
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="beatcanvas-osc-in", daemon=True
        )
        self._thread.start()
        log.info("OSC in listening on %s:%d", *self.address)

    def close(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(1.0)
        self._server = None

    def _on_message(self, client: tuple[str, int], address: str, *args: Any) -> Any:
        # Runs on the server thread: translate, hand over, never raise.
        self.messages += 1
        try:
            if address in QUERIES:
                return self._reply(address, args)
            item = parse_message(address, args)
            if item is not None:
                self.hub.put(item)
        except Exception as e:  # noqa: BLE001 - a bad datagram must not end the server
            self.hub.put(ControlError(f"OSC {address}: {e}"))
        return None

    def _reply(self, address: str, args: tuple[Any, ...]) -> Any:
        if address.endswith("/ping"):
            return (f"{ROOT}/pong", "beatcanvas")
        target = str(args[0]) if args else ""
        try:
            knob = find_knob(target)
        except ControlInputError as e:
            self.hub.put(ControlError(f"OSC {address}: {e}"))
            return None
        preset = self.current() if self.current is not None else None
        if preset is None:
            return None
        value = knob.read(preset)
        return (knob.address, "" if value is None else value)

    def _on_decode_error(self, client: tuple[str, int], e: BaseException | None) -> None:
        kind = type(e).__name__ if e is not None else "error"
        self.hub.put(ControlError(
            f"OSC in: a datagram from {client[0]} could not be decoded ({kind}: {str(e)[:80]}); ignored"
        ))

    def _on_garbage(self, client: tuple[str, int]) -> None:
        now = time.monotonic()
        if now - self._last_garbage > 5.0:  # one HUD line per burst, not one per packet
            self._last_garbage = now
            self.hub.put(ControlError(
                f"OSC in: a datagram from {client[0]} is not OSC; set that sender to OSC (not raw UDP)"
            ))
