"""`beatcanvas studio PRESET [TRACK]`: tweak a preset against a track from the studio page, without
the fullscreen window: a small window (or none, `--headless`), the page on 127.0.0.1. The track loops
without a seam (the beat tracker and the clock just keep going); with `--once` it plays once and the
show goes on, quiet, saying "track finished". The page stays up until Q, the window's close or Ctrl-C, and
stays on the preset being tweaked: its own transitions (auto-advance, hard cuts) are held; the
page's library and prev/next still switch by hand."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from live.control import DEFAULT_HOST


def register(app: typer.Typer) -> None:
    @app.command("studio")
    def studio(
        preset: str = typer.Argument("default", help="Preset name or .toml file to tweak."),
        track: Optional[Path] = typer.Argument(None, help="Audio file to play (default: the demo track)."),
        headless: bool = typer.Option(False, "--headless", help="No window at all: only the page shows the picture."),
        size: str = typer.Option("640x360", "--size", help="Composition size WIDTHxHEIGHT (the window's too)."),
        renderer: Optional[str] = typer.Option(None, "--renderer", help="auto | sdxl | shader | numpy (default: the preset's)."),
        profile: str = typer.Option("real", "--profile", help="Model weights: real | tiny | random-full."),
        web_port: int = typer.Option(8765, "--web-port", help="Port of the page (0 = any free port)."),
        web_host: str = typer.Option(DEFAULT_HOST, "--web-host", help="0.0.0.0 opens it to phones on the network (with a token)."),
        midi: Optional[str] = typer.Option(None, "--midi", help="MIDI input (part of its name; '' = the first port), for learn."),
        no_audio_out: bool = typer.Option(False, "--no-audio-out", help="Do not play the track; follow the wall clock."),
        once: bool = typer.Option(False, "--once", help="Play the track once instead of looping it."),
        duration: Optional[float] = typer.Option(None, "--duration", help="Stop after S seconds."),
        schedule: Optional[Path] = typer.Option(None, "--schedule", help="Schedule TOML: its cues and sections show on the page."),
        lyrics: Optional[Path] = typer.Option(None, "--lyrics", help="Timed lyrics (.lrc); default: TRACK.lrc if present."),
    ) -> None:
        """Tweak a preset from the browser (knobs, TOML editor, preview, scopes) against a track."""
        if headless:
            os.environ["SDL_VIDEODRIVER"] = "dummy"  # before pygame opens a display
        from engine.audio.demo import ensure_demo_track
        from live.audio.sources import FileSource
        from live.commands.options import ModelArgs, ShowArgs
        from live.commands.play import run_show
        from live.control.rig import RigOptions

        path = track if track is not None else ensure_demo_track(60.0)
        model = ModelArgs(preset=preset, renderer=renderer, profile=profile)
        show = ShowArgs(size=size, duration=duration, no_hud=headless, schedule=schedule, lyrics=lyrics)
        rig = RigOptions(web=True, web_host=web_host, web_port=web_port, midi=midi)
        source = FileSource(path, audio_out=not no_audio_out, loop=not once)
        run_show(source, model, show, rig=rig, stop_when_finished=False, track=path,
                 hold=True)
