"""What a new user reads: usage lines, the renderer's reason said once, a preset value of the wrong
type named as such, a file that is not audio named as such (and no decoder noise)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from live.cli import main
from live.presets.schema import PresetError, read_preset_file

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`beatcanvas ARGS…` in a fresh process (C libraries write to the real stderr), wide enough not to wrap."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "400", "SDL_VIDEODRIVER": "dummy",
           "SDL_AUDIODRIVER": "dummy"}
    return subprocess.run([sys.executable, "-m", "live.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)


@pytest.mark.parametrize("args, usage", [(["play"], "play [OPTIONS] TRACK"), (["analyze"], "analyze [OPTIONS] TRACK"),
                                         (["presets", "validate"], "validate [OPTIONS] FILES...")])
def test_usage_lines_name_arguments_in_capitals(args: list[str], usage: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2  # a missing argument is a usage error
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if "Usage:" in line)
    assert usage in line and "{" not in line
    assert f"Missing argument '{usage.split()[-1].removesuffix('...')}'" in err


def test_an_optional_argument_is_bracketed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "fetch", "--help"]) == 0
    assert "fetch [OPTIONS] [NAME]" in capsys.readouterr().out


def test_the_renderer_reason_is_said_once_even_with_verbose_logging(tmp_path: Path) -> None:
    track = tmp_path / "t.wav"
    sf.write(track, np.zeros(48000, np.float32), 48000)
    done = cli("-v", "export", str(track), "--out", str(tmp_path / "out"), "--fps", "2", "--size", "64x64",
               "--renderer", "numpy")
    assert done.returncode == 0, done.stderr
    said = (done.stdout + done.stderr).count("chosen with --renderer numpy")
    assert said == 1, done.stdout + done.stderr


@pytest.mark.parametrize("body, key", [('[model]\nmodel = ["sdxl-turbo"]\n', 'model = "sdxl-turbo"'),
                                       ('[model]\nrenderer = ["shader"]\n', 'renderer = "shader"')])
def test_a_list_where_a_string_belongs_is_named_a_list(tmp_path: Path, body: str, key: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(body)
    with pytest.raises(PresetError) as e:
        read_preset_file(path)
    assert "expected a string, got a list" in str(e.value)
    assert f"write {key}" in str(e.value)
    assert "did you mean" not in str(e.value)


def test_a_misspelt_choice_still_gets_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[model]\nmodel = "sdxl-trubo"\n')
    with pytest.raises(PresetError, match="did you mean 'sdxl-turbo'"):
        read_preset_file(path)


def test_a_text_file_named_mp3_is_not_an_audio_file_in_one_quiet_line(tmp_path: Path) -> None:
    fake = tmp_path / "song.mp3"
    fake.write_text("these are liner notes, not music\n" * 200)
    done = cli("analyze", str(fake))
    assert done.returncode == 1
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines  # no "Note: Trying to resync…" from the MP3 decoder
    assert "song.mp3 is not an audio file" in lines[0] and "does not exist" not in lines[0]
