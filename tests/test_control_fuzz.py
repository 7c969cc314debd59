"""One control hub that shrugs off garbage: OSC datagrams, MIDI messages and page messages, random
and hostile, fed to the real parsers on 127.0.0.1 (bounded in count and time). Nothing may print a
traceback, raise, or leave a knob outside its schema range; repeated warnings are aggregated."""

from __future__ import annotations

import json
import logging
import random
import socket
import struct
import threading
import time
from pathlib import Path

import mido
import pytest
from pythonosc.osc_message_builder import OscMessageBuilder

from live.control.hub import ControlHub, WarningLimiter
from live.control.knobs import ControlError, knob_table
from live.control.midi import MidiControl
from live.control.midi_map import Binding, MidiMapping
from live.control.osc import OscIn, parse_message
from live.presets.schema import Preset
from web_fakes import FakeShow, studio_app

SEED = 31
ADDRESSES = [k.address for k in knob_table().values()] + [
    "/beatcanvas/preset", "/beatcanvas/freeze", "/beatcanvas/tap", "/beatcanvas/learn", "/beatcanvas/get",
    "/beatcanvas/style", "/beatcanvas/nope", "/", "/beatcanvas/preset/next",
]
HOSTILE = [float("nan"), float("inf"), -float("inf"), 1e308, -1e308, 0, -1, 2**31 - 1, True, "x" * 60_000,
           "../../etc/passwd", "", b"\x00\xff" * 64, 0.5, "neon-noir"]


def _pad(b: bytes) -> bytes:
    return b + b"\x00" * (4 - len(b) % 4)


def osc_datagrams(rng: random.Random, n: int) -> list[bytes]:
    out: list[bytes] = []
    for i in range(n):
        kind = i % 5
        if kind == 0:  # random bytes
            out.append(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200))))
        elif kind == 1:  # an address that is not UTF-8 (python-osc raised from its thread)
            out.append(_pad(b"/beatcanvas/\xff\xfe" + bytes([rng.randint(128, 255)])) + _pad(b",f") + struct.pack(">f", 0.5))
        elif kind == 2:  # a known address with wrong counts / truncated arguments
            addr = rng.choice(ADDRESSES).encode()
            out.append(_pad(addr) + _pad(b",fff") + struct.pack(">f", 1.0))
        else:  # known addresses with hostile values
            b = OscMessageBuilder(rng.choice(ADDRESSES))
            for value in rng.sample(HOSTILE, rng.randint(0, 3)):
                if isinstance(value, str) and len(value) > 1000:
                    value = value[:8000]  # a UDP datagram holds ~64 kB
                b.add_arg(value)
            try:
                out.append(b.build().dgram)
            except Exception:  # noqa: BLE001 - a value the builder itself refuses: send raw bytes instead
                out.append(_pad(b"/beatcanvas/motion/feedback") + _pad(b",b"))
    return out


def _pong(s: socket.socket, address: tuple[str, int], tries: int = 40) -> bool:
    """Ping until the server answers (a flood may overrun the socket's buffer and drop a ping)."""
    s.settimeout(0.5)
    for _ in range(tries):
        s.sendto(OscMessageBuilder("/beatcanvas/ping").build().dgram, address)
        try:
            while True:
                data, _ = s.recvfrom(65536)
                if b"pong" in data:
                    return True
        except TimeoutError:
            continue
    return False


def _check_show(preset: Preset) -> None:
    Preset.model_validate(preset.model_dump())  # still a preset a file could hold
    for k in knob_table().values():
        v = k.read(preset)
        if k.kind in ("float", "int") and v is not None:
            assert (k.lo is None or v >= k.lo) and (k.hi is None or v <= k.hi), (k.address, v)


def test_osc_midi_and_page_garbage_change_nothing_fatal(capfd: pytest.CaptureFixture[str],
                                                       caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    show = FakeShow(Preset())
    hooked: list[BaseException] = []
    old_hook = threading.excepthook
    threading.excepthook = lambda args: hooked.append(args.exc_value)  # type: ignore[assignment,misc]
    caplog.set_level(logging.WARNING)
    osc = OscIn(show.hub, "127.0.0.1", 0, current=show.current)
    osc.start()
    started = time.monotonic()
    try:
        # OSC: 600 datagrams over 127.0.0.1, the show draining as a display loop does
        datagrams = osc_datagrams(rng, 600)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i, d in enumerate(datagrams):
                s.sendto(d, osc.address)
                if i % 50 == 0:
                    show.pump()
            assert _pong(s, osc.address)  # the server lives and has worked through the flood
        show.pump()

        # MIDI: every kind of message on bound and unbound controls
        mapping = MidiMapping(bind=(Binding(cc=1, target="/beatcanvas/motion/feedback"),
                                    Binding(cc=2, target="/beatcanvas/model/steps"),
                                    Binding(note=36, target="/beatcanvas/tap"),
                                    Binding(cc=3, target="/beatcanvas/model/decoder")))
        midi = MidiControl(show.hub, mapping, show.current, tmp_path / "map.toml")
        for _ in range(400):
            t = rng.choice(["control_change", "note_on", "note_off", "pitchwheel", "sysex", "program_change"])
            if t == "control_change":
                msg = mido.Message(t, channel=rng.randint(0, 15), control=rng.randint(0, 5), value=rng.randint(0, 127))
            elif t in ("note_on", "note_off"):
                msg = mido.Message(t, channel=rng.randint(0, 15), note=rng.randint(30, 40), velocity=rng.randint(0, 127))
            elif t == "pitchwheel":
                msg = mido.Message(t, pitch=rng.randint(-8192, 8191))
            elif t == "sysex":
                msg = mido.Message(t, data=[rng.randint(0, 127) for _ in range(rng.randint(0, 20))])
            else:
                msg = mido.Message(t, program=rng.randint(0, 127))
            midi.handle(msg)
            midi.handle(object())  # not a mido message at all
        show.pump()

        # the page: 400 messages of every shape
        studio = studio_app(show)[1]
        shapes = [
            lambda: {"type": "knob", "address": rng.choice(ADDRESSES), "value": rng.choice(HOSTILE[3:-3] + [0.3, 2, "dusk"])},
            lambda: {"type": "command", "name": rng.choice(["freeze", "tap", "preset", "learn", "x"]),
                     "arg": rng.choice([None, True, "../x", 5, "neon-noir"])},
            lambda: {"type": rng.choice(["knob", "check", "preview", 5, None])},
            lambda: [rng.random() for _ in range(5)],
            lambda: "[" * 5000,
        ]
        for i in range(400):
            raw = shapes[i % len(shapes)]()
            text = raw if isinstance(raw, str) else json.dumps(raw)
            if i % 7 == 0:
                text = text.replace("0.3", "NaN")
            studio.handle(text)
            studio.handle(bytes(rng.getrandbits(8) for _ in range(64)))
        show.pump()
    finally:
        osc.close()
        threading.excepthook = old_hook

    elapsed = time.monotonic() - started
    _check_show(show.preset)
    err = capfd.readouterr().err
    assert "Traceback" not in err and not hooked
    # the flood was aggregated: a handful of lines per second, not one per bad message
    warnings = [r for r in caplog.records if r.name == "live.control.hub"]
    assert show.hub.received > 300 and len(show.errors) > 300  # hundreds of refusals reached the hub ...
    assert len(warnings) <= 6 * (1 + int(elapsed))  # ... and the terminal got a few lines a second
    assert any("could not be decoded" in e for e in show.errors)  # the non-UTF-8 address, in one line


def test_a_non_utf8_address_is_one_line_not_a_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    hub = ControlHub()
    osc = OscIn(hub, "127.0.0.1", 0)
    osc.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(_pad(b"/beatcanvas/\xff\xfe") + _pad(b",f") + struct.pack(">f", 0.5), osc.address)
            assert _pong(s, osc.address)
    finally:
        osc.close()
    errors = hub.drain(Preset()).errors
    assert len(errors) == 1 and "could not be decoded" in errors[0] and "\n" not in errors[0]
    assert "Traceback" not in capfd.readouterr().err


def test_each_knobs_hint_uses_a_value_of_its_own_type() -> None:
    hints = {a: parse_message(a, ()) for a in ("/beatcanvas/conditioning/style", "/beatcanvas/model/steps",
                                               "/beatcanvas/model/decoder", "/beatcanvas/motion/feedback")}
    assert all(isinstance(h, ControlError) for h in hints.values())
    text = {a: h.message for a, h in hints.items() if isinstance(h, ControlError)}
    assert '/beatcanvas/conditioning/style "' in text["/beatcanvas/conditioning/style"]
    assert "/beatcanvas/model/steps 2" in text["/beatcanvas/model/steps"]
    assert '/beatcanvas/model/decoder "taesd"' in text["/beatcanvas/model/decoder"]
    assert "/beatcanvas/motion/feedback 0.3" in text["/beatcanvas/motion/feedback"]


def test_repeated_warnings_are_aggregated_with_a_count() -> None:
    said: list[str] = []
    t = [0.0]
    limiter = WarningLimiter(said.append, clock=lambda: t[0])
    for i in range(139):
        limiter.warn(f"OSC /beatcanvas/motion/feedback = {1 + i} is out of range: allowed 0.0..1.0")
    limiter.warn("MIDI: something else")
    assert len(said) == 2
    t[0] = 1.01
    limiter.flush()
    assert said[-1] == "… and 138 more like it in the last second"
    limiter.warn("OSC /beatcanvas/motion/feedback = 9 is out of range: allowed 0.0..1.0")
    assert len(said) == 4  # a new second: said again
