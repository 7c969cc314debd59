"""`beatcanvas analyze` and `beatcanvas devices` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_synth import click_track
from engine.audio.rhythms import clicks
from live.audio import sources
from live.cli import main


def test_analyze_writes_the_documented_json(tmp_path: Path, capsys) -> None:
    x, clicks = click_track(120.0, seconds=10.0)
    sf.write(tmp_path / "click.wav", x, 48_000)
    out = tmp_path / "sub" / "a.json"
    assert main(["analyze", str(tmp_path / "click.wav"), "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert set(d) - {"beat_tracker_note"} == {"tempo_bpm", "beats", "beat_confidence", "downbeats", "downbeat_confidence",
                                              "frames", "beat_tracker", "beats_per_bar"}
    assert d["beat_tracker"] == "learned" or d["beat_tracker_note"]
    assert abs(d["tempo_bpm"] - 120.0) < 2.0
    assert all(min(abs(b - clicks)) < 0.03 for b in d["beats"]) and len(d["beats"]) >= 19
    # the click at 0.0 s is on the track's first frame, where the centred network hears no past: not held to 0.5
    assert len(d["beat_confidence"]) == len(d["beats"]) and min(d["beat_confidence"][1:]) > 0.5
    assert d["downbeats"] == [] and d["downbeat_confidence"] == 0  # equal clicks: no bar to find
    assert len(d["frames"]) == 100
    assert set(d["frames"][0]) == {"t", "rms", "onset", "low", "mid", "high", "arousal", "valence"}
    assert d["frames"][0]["t"] == pytest.approx(0.1) and d["frames"][-1]["t"] == pytest.approx(10.0)
    assert all(f["rms"] > 0.01 for f in d["frames"][::5])  # every 0.5 s frame holds a click
    printed = capsys.readouterr().out
    assert "120.0 BPM" in printed and "arousal" in printed


def test_analyze_finds_the_downbeats_of_an_accented_metronome(tmp_path: Path) -> None:
    r = clicks(120.0, 16.0, accent=2.0)  # every fourth click twice as loud
    sf.write(tmp_path / "m.wav", r.samples, 48_000)
    assert main(["analyze", str(tmp_path / "m.wav"), "--json", str(tmp_path / "m.json")]) == 0
    d = json.loads((tmp_path / "m.json").read_text())
    assert np.allclose(d["downbeats"], r.downbeats, atol=0.02)
    assert d["downbeat_confidence"] > 0.1


def test_analyze_bad_input_is_one_line_error_and_exit_1(tmp_path: Path, capsys) -> None:
    assert main(["analyze", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "is a directory" in err and "Traceback" not in err


def test_analyze_head_without_models_says_how_to_fetch(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("BEATCANVAS_MODELS", str(tmp_path / "no-models"))
    sf.write(tmp_path / "s.wav", np.zeros(4800, np.float32), 48_000)
    assert main(["analyze", str(tmp_path / "s.wav"), "--head", "zeroshot", "--profile", "real"]) == 1
    err = capsys.readouterr().err
    assert "beatcanvas models fetch" in err and "Traceback" not in err


def test_devices_lists_indices_or_says_none(monkeypatch, capsys) -> None:
    fake = [{"index": 3, "name": "Monitor of Built-in Audio", "hostapi": "ALSA", "inputs": 2, "outputs": 0,
             "default_samplerate": 48000.0, "default_input": True, "default_output": False}]
    import live.audio.sources as sources  # the command imports it when it runs

    monkeypatch.setattr(sources, "list_devices", lambda: fake)
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "Monitor of Built-in Audio" in out and "3" in out and "loopback" in out
    monkeypatch.setattr(sources, "list_devices", lambda: [])
    assert main(["devices"]) == 0
    assert "no audio devices found" in capsys.readouterr().out


def test_devices_without_portaudio_says_how_to_install(monkeypatch, capsys) -> None:
    from engine.errors import BeatcanvasError

    def missing():
        raise BeatcanvasError(f"the PortAudio library was not found (x) — {sources.PORTAUDIO_HINT}")

    monkeypatch.setattr(sources, "import_sounddevice", missing)
    assert main(["devices"]) == 1
    assert "libportaudio2" in capsys.readouterr().err
