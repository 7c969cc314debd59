"""Commands that run no model never import torch, diffusers or transformers: `--help`, `presets list`,
`devices`, a weights-free `analyze` and a weights-free show answer without the seconds those imports
cost. Each runs in a fresh interpreter (this test process has torch loaded already)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "diffusers", "transformers")

# Runs the CLI as `beatcanvas ARGS…` would, then prints which heavy packages ended up imported.
PROBE = """
import json, sys
from live.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code
heavy = sorted({m.split('.')[0] for m in sys.modules} & {%s})
print("HEAVY=" + json.dumps(heavy), file=sys.stderr)
sys.exit(code or 0)
""" % ", ".join(repr(h) for h in HEAVY)


def run_cli(*args: str) -> tuple[int, list[str], str]:
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)
    marker = [line for line in done.stderr.splitlines() if line.startswith("HEAVY=")]
    assert marker, done.stdout + done.stderr
    return done.returncode, json.loads(marker[-1].removeprefix("HEAVY=")), done.stdout + done.stderr


@pytest.fixture(scope="module")
def tiny_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("startup") / "tiny.wav"
    t = np.arange(48000 * 2) / 48000
    clicks = (np.sin(2 * np.pi * 440 * t) * (t % 0.5 < 0.05)).astype(np.float32)
    sf.write(path, 0.5 * clicks, 48000)
    return path


@pytest.mark.parametrize("args", [("--help",), ("presets", "list"), ("devices",), ("play", "--help")])
def test_light_commands_import_no_model_library(args: tuple[str, ...]) -> None:
    code, heavy, out = run_cli(*args)
    assert code == 0, out
    assert heavy == [], f"`beatcanvas {' '.join(args)}` imported {heavy}"


def test_a_weights_free_analyze_imports_no_model_library(tiny_wav: Path) -> None:
    code, heavy, out = run_cli("analyze", str(tiny_wav))
    assert code == 0, out
    assert "BPM" in out or "tempo" in out.lower()
    assert heavy == [], f"`beatcanvas analyze` imported {heavy}"


@pytest.mark.slow
def test_a_weights_free_show_imports_no_model_library(tiny_wav: Path) -> None:
    code, heavy, out = run_cli("play", str(tiny_wav), "--renderer", "procedural", "--no-audio-out",
                               "--duration", "1", "--size", "320x180")
    assert code == 0, out
    assert "display frames" in out  # it really showed frames
    assert heavy == [], f"a weights-free `play` imported {heavy}"
