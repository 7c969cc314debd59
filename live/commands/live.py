"""`beatcanvas live`: the show driven by a microphone, line in or loopback device. The input may
vanish mid-show (a cable, a USB hiccup): the picture keeps going and the session reopens it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("live")
    def live(
        input: Optional[str] = typer.Option(None, "--input", help="Input device (number or name; see `beatcanvas devices`)."),
        preset: str = typer.Option("default", "--preset", help="Preset name or .toml file (hot-reloaded)."),
        renderer: Optional[str] = typer.Option(None, "--renderer", help="auto | sdxl | procedural (default: the preset's)."),
        profile: str = typer.Option("real", "--profile", help="Model weights: real | tiny | random-full."),
        backend: Optional[str] = typer.Option(None, "--backend", help="auto | eager | inductor | tensorrt."),
        fullscreen: bool = typer.Option(False, "--fullscreen", help="Start fullscreen (F toggles)."),
        display: int = typer.Option(0, "--display", help="Monitor number for the window."),
        duration: Optional[float] = typer.Option(None, "--duration", help="Stop after S seconds."),
        allow_cpu_diffusion: bool = typer.Option(False, "--allow-cpu-diffusion", help="Let SDXL run on a CPU."),
        models_dir: Optional[Path] = typer.Option(None, "--models-dir", help="Folder with downloaded models."),
        fit: str = typer.Option("fill", "--fit", help="fill | letterbox."),
        size: str = typer.Option("1280x720", "--size", help="Composition size WIDTHxHEIGHT."),
        no_hud: bool = typer.Option(False, "--no-hud", help="Start with the HUD hidden (H toggles)."),
        screenshots: Path = typer.Option(Path("screenshots"), "--screenshots", help="Folder for S screenshots."),
        schedule: Optional[Path] = typer.Option(None, "--schedule", help="Schedule TOML on the input's clock and bars (hot-reloaded)."),
        lyrics: Optional[Path] = typer.Option(None, "--lyrics", help="Timed lyrics (.lrc) on the input's clock."),
    ) -> None:
        """Listen to an input device and show the picture it makes (keys: ? lists them)."""
        from live.commands.play import run_show
        from live.sources import MicSource

        device = int(input) if input is not None and input.isdigit() else input
        run_show(
            MicSource(device), preset=preset, renderer=renderer, profile=profile, backend=backend,
            fullscreen=fullscreen, display=display, duration=duration, allow_cpu_diffusion=allow_cpu_diffusion,
            models_dir=models_dir, fit=fit, size=size, hud=not no_hud, screenshots=screenshots,
            stop_when_finished=False, schedule=schedule, lyrics=lyrics,
        )
