"""MIDI: a fake input port feeds raw bytes through mido's parser into the real MidiControl.

Mappings are validated like presets, learn binds the next control and persists it, soft takeover
holds a fader until it reaches the knob's value, buttons fire once per press.
"""

from __future__ import annotations

import mido
import pytest

from engine.errors import BeatcanvasError
from live.control.hub import ControlHub
from live.control.midi import MidiControl
from live.control.midi_map import Binding, MidiMapping, load_mapping, save_mapping
from live.presets.schema import Preset, PresetError


class FakePort:
    """What `mido.open_input(name, callback=...)` returns, driven by raw MIDI bytes."""

    def __init__(self, name, callback):
        self.name, self.callback, self.closed = name, callback, False

    def feed(self, *data: int) -> None:
        parser = mido.Parser()
        parser.feed(bytes(data))
        for msg in parser:
            self.callback(msg)

    def cc(self, control: int, value: int, channel: int = 1) -> None:
        self.feed(0xB0 | (channel - 1), control, value)

    def note(self, number: int, channel: int = 1) -> None:
        self.feed(0x90 | (channel - 1), number, 100)
        self.feed(0x80 | (channel - 1), number, 0)

    def close(self):
        self.closed = True


class Show:
    """A MidiControl on a fake port, with the hub drained into a running preset like the session."""

    def __init__(self, mapping: MidiMapping, path=None, port_names=("nanoKONTROL2 SLIDER/KNOB",)):
        self.preset = Preset(name="test")
        self.hub = ControlHub()
        self.midi = MidiControl(self.hub, mapping, lambda: self.preset, path)
        self.ports: list[FakePort] = []

        def opener(name, callback):
            self.ports.append(FakePort(name, callback))
            return self.ports[-1]

        self.midi.open(None, opener=opener, names=lambda: list(port_names))
        self.port = self.ports[0]
        self.notices: list[str] = []
        self.errors: list[str] = []
        self.commands = []

    def drain(self):
        d = self.hub.drain(self.preset)
        if d.preset is not None:
            self.preset = d.preset
        self.notices += d.notices
        self.errors += d.errors
        self.commands += d.commands
        return d


FEEDBACK = "/beatcanvas/motion/feedback"


def test_mapped_cc_moves_a_knob_through_the_schema():
    show = Show(MidiMapping(takeover="jump", bind=(Binding(cc=7, channel=1, target=FEEDBACK),)))
    show.port.cc(7, 127)
    show.drain()
    assert show.preset.motion.feedback == 1.0
    show.port.cc(7, 0, channel=2)  # another channel: not this binding
    show.drain()
    assert show.preset.motion.feedback == 1.0


def test_soft_takeover_holds_until_the_fader_reaches_the_value():
    show = Show(MidiMapping(bind=(Binding(cc=7, target=FEEDBACK),)))  # pickup is the default
    assert show.preset.motion.feedback == 0.3
    show.port.cc(7, 120)  # the fader sits far above 0.3: nothing may jump
    show.port.cc(7, 110)
    show.drain()
    assert show.preset.motion.feedback == 0.3
    assert any("stays 0.3" in n for n in show.notices)
    show.port.cc(7, 30)  # swept across 0.3 (0.236): taken over
    show.drain()
    assert show.preset.motion.feedback == pytest.approx(30 / 127, abs=1e-6)
    show.port.cc(7, 64)
    show.drain()
    assert show.preset.motion.feedback == pytest.approx(64 / 127, abs=1e-6)


def test_a_preset_change_releases_the_fader_again(monkeypatch):
    import live.control.midi as midi_mod

    monkeypatch.setattr(midi_mod, "SETTLE_S", 0.0)
    show = Show(MidiMapping(bind=(Binding(cc=7, target=FEEDBACK),)))
    show.port.cc(7, 38)  # 0.299: within reach of 0.3, engaged
    show.drain()
    engaged = show.preset.motion.feedback
    assert engaged == pytest.approx(38 / 127, abs=1e-6)
    show.preset = show.preset.model_copy(update={"motion": show.preset.motion.model_copy(update={"feedback": 0.9})})
    show.port.cc(7, 40)  # someone else set 0.9: the fader must catch up first
    show.drain()
    assert show.preset.motion.feedback == 0.9


def test_buttons_fire_once_per_press_and_pads_fire_commands():
    mapping = MidiMapping(bind=(
        Binding(cc=45, target="/beatcanvas/tap"),
        Binding(note=36, target="/beatcanvas/preset", arg="neon-noir"),
        Binding(note=37, target="/beatcanvas/transitions/lock"),
    ))
    show = Show(mapping)
    for value in (127, 127, 0, 127, 0):  # press (held: repeated 127), release, press, release
        show.port.cc(45, value)
    show.port.note(36)
    show.port.note(37)
    show.drain()
    assert [(c.name, c.arg) for c in show.commands] == [("tap", None), ("tap", None), ("preset", "neon-noir")]
    assert show.preset.transitions.lock is True  # a pad toggles an on/off knob


def test_learn_binds_the_next_cc_and_saves_it(tmp_path):
    path = tmp_path / "map.toml"
    show = Show(MidiMapping(takeover="jump"), path=path)
    assert "move a control" in show.midi.arm("/beatcanvas/reactivity/warp")
    show.port.cc(21, 90, channel=3)  # this one binds, it does not move the knob
    show.port.cc(21, 127, channel=3)  # now it drives the knob
    show.drain()
    assert any("cc 21 ch 3 → /beatcanvas/reactivity/warp" in n and str(path) in n for n in show.notices)
    assert show.preset.reactivity.warp == 2.0
    saved = load_mapping(path)
    assert saved.bind == (Binding(cc=21, channel=3, target="/beatcanvas/reactivity/warp"),)
    assert path.read_text().startswith("# beatcanvas MIDI mapping")

    show.midi.arm("/beatcanvas/motion/feedback")  # relearning a control replaces its binding
    show.port.cc(21, 5, channel=3)
    assert [b.target for b in load_mapping(path).bind] == [FEEDBACK]


def test_learn_refuses_what_a_control_cannot_drive():
    show = Show(MidiMapping())
    with pytest.raises(ValueError, match="text"):
        show.midi.arm("/beatcanvas/conditioning/style")
    with pytest.raises(ValueError, match="unknown address"):
        show.midi.arm("/beatcanvas/motion/nope")


def test_mapping_files_are_validated_with_line_numbers(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('port = "x"\n\n[[bind]]\ncc = 200\ntarget = "/beatcanvas/motion/feedback"\n')
    with pytest.raises(PresetError, match=r"bad.toml, line 4: bind\[0\].cc = 200 is out of range: allowed 0..127"):
        load_mapping(bad)
    typo = tmp_path / "typo.toml"
    typo.write_text('[[bind]]\ncc = 1\ntarget = "/beatcanvas/motion/feedbak"\n')
    with pytest.raises(PresetError, match="did you mean /beatcanvas/motion/feedback"):
        load_mapping(typo)
    both = tmp_path / "both.toml"
    both.write_text('[[bind]]\ncc = 1\nnote = 3\ntarget = "/beatcanvas/tap"\n')
    with pytest.raises(PresetError, match="exactly one of cc"):
        load_mapping(both)
    assert load_mapping(tmp_path / "missing.toml") == MidiMapping()


def test_mapping_round_trips(tmp_path):
    m = MidiMapping(port="APC", takeover="jump", bind=(Binding(cc=1, target=FEEDBACK), Binding(note=40, target="/beatcanvas/blackout")))
    save_mapping(m, tmp_path / "m.toml")
    assert load_mapping(tmp_path / "m.toml") == m


def test_port_problems_are_one_line_and_never_raise_past_open():
    midi = MidiControl(ControlHub(), MidiMapping(port="APC"), lambda: Preset())
    with pytest.raises(BeatcanvasError, match=r"no input port matches 'APC' \(ports: Launchpad\)"):
        midi.open(None, opener=lambda *a, **k: None, names=lambda: ["Launchpad"])

    def no_alsa():
        raise SystemError("MidiInAlsa::initialize: error creating ALSA sequencer client object.")

    with pytest.raises(BeatcanvasError, match="MIDI is unavailable on this machine .*running without it"):
        midi.open(None, opener=lambda *a, **k: None, names=no_alsa)


def test_a_broken_message_is_a_hud_line_not_a_crash():
    show = Show(MidiMapping(bind=(Binding(cc=7, target=FEEDBACK),)))
    show.midi.current = lambda: None  # e.g. the session is gone
    show.port.cc(7, 10)
    show.drain()
    assert show.errors and show.errors[0].startswith("MIDI:")
