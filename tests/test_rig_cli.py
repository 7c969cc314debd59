"""The rig from the command line: `beatcanvas osc-map`, and `beatcanvas play TRACK --osc-port N`
answering OSC while it runs (a real process, real UDP on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import soundfile as sf
from pythonosc.osc_message import OscMessage
from pythonosc.udp_client import SimpleUDPClient

from audio_synth import click_track
from live_fakes import interrupt
from live.cli import main
from live.commands.rig_options import rig_options
from live.control.knobs import knob_table

ROOT = Path(__file__).resolve().parents[1]


def test_osc_map_lists_every_address_and_writes_both_maps(tmp_path, capsys):
    plain, touch = tmp_path / "map.json", tmp_path / "touchosc.json"
    assert main(["osc-map", "--json", str(plain), "--touchosc", str(touch)]) == 0
    out = capsys.readouterr().out
    assert "/beatcanvas/motion/feedback" in out and "0.0..1.0" in out and "default 0.3" in out
    assert "/beatcanvas/preset/next" in out and "/beatcanvas/out/bpm" in out
    data = json.loads(plain.read_text())
    assert len(data["knobs"]) == len(knob_table())
    fb = next(k for k in data["knobs"] if k["address"] == "/beatcanvas/motion/feedback")
    assert (fb["min"], fb["max"], fb["default"], fb["type"]) == (0.0, 1.0, 0.3, "float")
    layout = json.loads(touch.read_text())
    pages = {p["name"]: p["controls"] for p in layout["pages"]}
    assert {"perform", "motion", "reactivity"} <= set(pages)
    warp = next(c for c in pages["reactivity"] if c["name"] == "warp")
    assert (warp["type"], warp["osc"], warp["min"], warp["max"]) == ("fader", "/beatcanvas/reactivity/warp", 0.0, 2.0)


def test_rig_options_default_to_localhost_and_a_map_file_turns_midi_on():
    values = dict(osc_port=None, osc_host="127.0.0.1", osc_out=None, osc_out_every="frame", midi=None,
                  midi_map=None, link=False, ndi=False, spout=False, syphon=False,
                  web=False, web_port=8765, web_host="127.0.0.1")
    assert not rig_options(values).any
    assert rig_options({**values, "web_host": "0.0.0.0"}).web  # --web-host alone turns the page on
    assert rig_options({**values, "midi_map": Path("m.toml")}).midi == ""
    from live.control.rig import RigOptions

    assert RigOptions().osc_host == "127.0.0.1" and RigOptions().web_host == "127.0.0.1"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ask(client: SimpleUDPClient, address: str, *args, timeout: float = 0.3):
    client.send_message(address, list(args))
    try:
        return OscMessage(client._sock.recv(4096))
    except (TimeoutError, socket.timeout, BlockingIOError):
        return None


def test_play_with_osc_port_answers_osc_while_running(tmp_path):
    x, _ = click_track(120.0, seconds=60.0)  # outlasts every wait below: the test ends the show with SIGINT
    track = tmp_path / "click.wav"
    sf.write(track, x, 48_000)
    port = _free_udp_port()
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    cmd = [sys.executable, "-m", "live.cli", "play", str(track), "--osc-port", str(port), "--duration", "120",
           "--no-audio-out", "--renderer", "procedural", "--size", "320x180"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        client = SimpleUDPClient("127.0.0.1", port)
        client._sock.settimeout(0.3)
        pong, deadline = None, time.monotonic() + 60.0
        while pong is None and time.monotonic() < deadline and proc.poll() is None:
            pong = _ask(client, "/beatcanvas/ping")
        assert pong is not None and pong.address == "/beatcanvas/pong"

        client.send_message("/beatcanvas/reactivity/warp", 1.5)
        client.send_message("/beatcanvas/reactivity/warp", "loud")  # refused, logged, not fatal
        value, deadline = None, time.monotonic() + 30.0
        while value != 1.5 and time.monotonic() < deadline:
            reply = _ask(client, "/beatcanvas/get", "/beatcanvas/reactivity/warp")
            value = reply.params[0] if reply is not None else None
        assert value == 1.5
        assert proc.poll() is None  # still running after the bad value
    finally:
        out, err = interrupt(proc)  # no need to sit out the full ten seconds
    assert proc.returncode == 0, err
    assert f"OSC in: listening on 127.0.0.1:{port}" in err
    assert "only this machine can reach it" in err
    assert "display frames" in err
