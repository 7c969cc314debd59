"""OSC in and the knob table: addresses from the preset schema, validation by the same schema,
commands, replies, and a server that binds 127.0.0.1 unless told otherwise (real sockets)."""

from __future__ import annotations

import socket
import time

import pytest
from pydantic import BaseModel
from pythonosc.udp_client import SimpleUDPClient

from live.control.hub import ControlHub
from live.control.knobs import (
    Command, ControlError, ControlInputError, KnobChange, apply_change, find_knob, knob_table,
)
from live.control.osc import DEFAULT_HOST, OscIn, parse_message
from live.presets.schema import GROUPS, Preset


def test_every_scalar_preset_field_has_a_stable_address():
    table = knob_table()
    for section, group in GROUPS.items():
        for key, field in group.model_fields.items():
            if key == "descriptors":  # a table of phrase lists, not a knob
                assert f"/beatcanvas/{section}/{key}" not in table
                continue
            if key == "motifs":  # a table of weights: one knob per motif
                assert {a for a in table if a.startswith("/beatcanvas/procedural/motifs/")} == {
                    f"/beatcanvas/procedural/motifs/{m}" for m in Preset().procedural.motifs}
                continue
            assert f"/beatcanvas/{section}/{key}" in table, (section, key)
    fb = table["/beatcanvas/motion/feedback"]
    assert (fb.kind, fb.lo, fb.hi, fb.default) == ("float", 0.0, 1.0, 0.3)
    width = table["/beatcanvas/model/width"]
    assert (width.lo, width.hi, width.step) == (256, 1536, 64)
    assert table["/beatcanvas/model/model"].choices == ("sdxl-turbo", "sdxl-lightning")


def test_a_motif_weight_is_a_knob_validated_like_the_preset():
    ink = find_knob("/beatcanvas/procedural/motifs/ink")
    assert (ink.kind, ink.lo, ink.hi, ink.default) == ("float", 0.0, 2.0, 1.0)
    changed = apply_change(Preset(), KnobChange("procedural", "motifs/ink", 1.7))
    assert changed.procedural.motifs["ink"] == 1.7 and changed.procedural.motifs["tunnel"] == 1.0
    with pytest.raises(ControlInputError, match="kept 1.0"):
        apply_change(Preset(), KnobChange("procedural", "motifs/ink", 9.0))


def test_fader_positions_map_onto_the_schema_range():
    width = find_knob("/beatcanvas/model/width")
    assert width.from_unit(0.0) == 256 and width.from_unit(1.0) == 1536
    assert width.from_unit(0.3) % 64 == 0
    temp = find_knob("/beatcanvas/conditioning/temperature")
    assert temp.from_unit(0.0) > 0.0  # gt 0: the open end is never sent
    fb = find_knob("/beatcanvas/motion/feedback")
    for v in (0.0, 0.25, 0.3, 1.0):
        assert fb.from_unit(fb.to_unit(v)) == pytest.approx(v)


def test_changes_are_validated_by_the_preset_schema():
    p = Preset()
    assert apply_change(p, KnobChange("motion", "feedback", 0.4000000059604645)).motion.feedback == 0.4
    with pytest.raises(ControlInputError, match=r"motion.feedback = 1.5 is out of range: allowed 0.0..1.0; kept 0.3"):
        apply_change(p, KnobChange("motion", "feedback", 1.5))
    lightning = apply_change(p, KnobChange("model", "model", "sdxl-lightning"))
    with pytest.raises(ControlInputError, match="sdxl-lightning runs steps 2, 4 or 8"):
        apply_change(lightning, KnobChange("model", "steps", 3))  # a rule across two fields
    with pytest.raises(ControlInputError, match="did you mean /beatcanvas/motion/feedback"):
        find_knob("/beatcanvas/motion/feedbak")


def test_the_hub_applies_in_order_and_refuses_one_bad_value_alone():
    hub = ControlHub()
    hub.put(KnobChange("motion", "feedback", 0.9))
    hub.put(KnobChange("reactivity", "beat_zoom", 5.0))  # out of range
    hub.put(KnobChange("motion", "feedback", 0.5))  # same knob again: the last one wins
    hub.put(Command("tap"))
    d = hub.drain(Preset())
    assert d.preset.motion.feedback == 0.5 and d.preset.reactivity.beat_zoom == 1.0
    assert d.changed == ["/beatcanvas/motion/feedback"]
    assert [c.name for c in d.commands] == ["tap"] and len(d.errors) == 1 and "beat_zoom" in d.errors[0]
    assert hub.drain(d.preset).preset is None  # nothing new


def test_a_refused_value_does_not_cancel_the_good_one_before_it():
    hub = ControlHub()
    hub.put(KnobChange("reactivity", "warp", 1.5))
    hub.put(KnobChange("reactivity", "warp", "loud"))  # same frame, refused
    d = hub.drain(Preset())
    assert d.preset.reactivity.warp == 1.5
    assert len(d.errors) == 1 and "'loud'" in d.errors[0]


def test_a_flood_drops_the_oldest_not_the_show():
    hub = ControlHub(capacity=8)
    for i in range(20):
        hub.put(KnobChange("motion", "feedback", i / 20))
    assert hub.dropped == 12
    assert hub.drain(Preset()).preset.motion.feedback == pytest.approx(19 / 20)


@pytest.mark.parametrize(
    "address,args,expected",
    [
        ("/beatcanvas/preset", ("neon-noir",), Command("preset", "neon-noir")),
        ("/beatcanvas/preset/next", (), Command("next_preset")),
        ("/beatcanvas/preset/next", (1.0,), Command("next_preset")),
        ("/beatcanvas/preset/next", (0.0,), None),  # a button's release
        ("/beatcanvas/tap", (), Command("tap")),
        ("/beatcanvas/freeze", (), Command("freeze", None)),
        ("/beatcanvas/freeze", (1,), Command("freeze", True)),
        ("/beatcanvas/blackout", (0.0,), Command("blackout", False)),
        ("/beatcanvas/style", ("ink wash",), KnobChange("conditioning", "style", "ink wash")),
        ("/beatcanvas/learn", ("/beatcanvas/motion/feedback",), Command("learn", "/beatcanvas/motion/feedback")),
        ("/beatcanvas/motion/feedback", (0.4,), KnobChange("motion", "feedback", 0.4)),
    ],
)
def test_messages_become_control_items(address, args, expected):
    assert parse_message(address, args) == expected


@pytest.mark.parametrize(
    "address,args,needle",
    [
        ("/beatcanvas/motion/feedback", (), "takes one value"),
        ("/beatcanvas/motion/feedback", (0.1, 0.2), "takes one value"),
        ("/beatcanvas/preset", (3,), "needs a preset name"),
        ("/beatcanvas/preset", ("../../secrets",), "needs a preset name"),
        ("/beatcanvas/nope", (1,), "unknown address"),
    ],
)
def test_bad_messages_become_one_line_errors(address, args, needle):
    item = parse_message(address, args)
    assert isinstance(item, ControlError) and needle in item.message and "\n" not in item.message


def test_choice_knobs_take_a_radio_index_and_toggles_take_floats():
    p = Preset()
    hub = ControlHub()
    hub.put(parse_message("/beatcanvas/transitions/switch", (0,)))
    hub.put(parse_message("/beatcanvas/transitions/lock", (1.0,)))
    d = hub.drain(p)
    assert d.preset.transitions.switch == "immediate" and d.preset.transitions.lock is True


def test_the_server_binds_localhost_by_default():
    server = OscIn(ControlHub(), port=0)
    assert server.host == DEFAULT_HOST == "127.0.0.1"
    server.start()
    try:
        assert server.address[0] == "127.0.0.1" and server.address[1] > 0
    finally:
        server.close()


def _wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_server_feeds_the_hub_answers_queries_and_survives_garbage():
    hub = ControlHub()
    preset = Preset(name="test")
    server = OscIn(hub, port=0, current=lambda: preset)
    server.start()
    try:
        host, port = server.address
        client = SimpleUDPClient(host, port)
        client.send_message("/beatcanvas/reactivity/warp", 1.25)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.sendto(b"hello, not osc", (host, port))
        assert _wait(lambda: hub.received >= 2)
        d = hub.drain(preset)
        assert d.preset.reactivity.warp == 1.25
        assert any("not OSC" in e for e in d.errors)

        # Replies come back to the sender's own port.
        client._sock.settimeout(2.0)
        client.send_message("/beatcanvas/ping", [])
        assert b"/beatcanvas/pong" in client._sock.recv(1024)
        client.send_message("/beatcanvas/get", "/beatcanvas/motion/feedback")
        reply = client._sock.recv(1024)
        assert reply.startswith(b"/beatcanvas/motion/feedback")
    finally:
        server.close()


def test_a_port_in_use_is_one_clear_line():
    from engine.errors import BeatcanvasError

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        server = OscIn(ControlHub(), port=taken.getsockname()[1])
        with pytest.raises(BeatcanvasError, match="pick another with --osc-port"):
            server.start()


def test_knob_table_follows_new_schema_sections():
    class Extra(BaseModel):
        glow: float = 0.5

    class Bigger(Preset):
        extra: Extra = Extra()

    assert "/beatcanvas/extra/glow" in knob_table(Bigger)
