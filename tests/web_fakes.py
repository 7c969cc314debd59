"""A stand-in for the running show behind the studio page: a preset, the control hub drained as the
display loop drains it, and the feed filled with a picture (for the page's API and fuzz tests)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from live.control.hub import ControlHub
from live.control.knobs import Command, knob_table
from live.presets.library import BUILTIN_DIR
from live.presets.schema import Preset, read_preset_file
from live.screen.hud import HudState
from live.web.editor import PresetFiles
from live.web.feed import WebFeed
from live.web.server import Guard, Studio, build_app

ORIGIN = "http://127.0.0.1:8765"


def user_preset(folder: Path, name: str = "mine") -> Path:
    """A copy of the built-in default, with a comment, as the user's preset `name`."""
    text = (BUILTIN_DIR / "default.toml").read_text()
    path = folder / f"{name}.toml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text("# my own look: keep this comment\n" + text.replace('name = "default"', f'name = "{name}"'))
    return path


class FakeShow:
    """`pump()` is one display frame: drain the hub into the preset, note commands, feed the page."""

    def __init__(self, preset: Preset) -> None:
        self.preset = preset
        self.hub = ControlHub()
        self.feed = WebFeed()
        self.commands: list[Command] = []
        self.errors: list[str] = []
        self.state = HudState(preset=preset.name, display_fps=60.0)
        self.picture = np.zeros((72, 128, 3), np.uint8)
        self.lock = threading.Lock()

    def current(self) -> Preset:
        return self.preset

    def pump(self) -> None:
        with self.lock:
            d = self.hub.drain(self.preset)
            if d.preset is not None:
                self.preset = d.preset
            self.commands += d.commands
            self.errors += d.errors
            self.feed.frame(self.picture, None, self.state, self.current)

    def in_range(self) -> list[str]:
        """Knobs outside their schema range (should be none)."""
        bad = []
        for k in knob_table().values():
            v = k.read(self.preset)
            if k.kind in ("float", "int") and v is not None:
                if k.lo is not None and (v < k.lo or (k.lo_open and v <= k.lo)):
                    bad.append(k.address)
                if k.hi is not None and v > k.hi:
                    bad.append(k.address)
        return bad


def studio_app(show: FakeShow, host: str = "127.0.0.1", token: str | None = None,
               midi: bool = False, extra: tuple[Path, ...] = ()) -> tuple[Any, Studio]:
    studio = Studio(show.hub, show.feed, show.current, midi_ready=lambda: midi, files=PresetFiles(extra))
    return build_app(studio, Guard(host, token, 8765)), studio


def load(path: Path) -> Preset:
    return read_preset_file(path)
