"""`beatcanvas demo`: play the project's own synthesized track, so the first command works on any
machine with no files and no downloads."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        preset: str = typer.Option("default", "--preset", help="Preset name or .toml file (hot-reloaded)."),
        renderer: Optional[str] = typer.Option(None, "--renderer", help="auto | sdxl | procedural (default: the preset's)."),
        profile: str = typer.Option("real", "--profile", help="Model weights: real | tiny | random-full."),
        backend: Optional[str] = typer.Option(None, "--backend", help="auto | eager | inductor | tensorrt."),
        fullscreen: bool = typer.Option(False, "--fullscreen", help="Start fullscreen (F toggles)."),
        display: int = typer.Option(0, "--display", help="Monitor number for the window."),
        no_audio_out: bool = typer.Option(False, "--no-audio-out", help="Do not play the track; follow the wall clock."),
        duration: Optional[float] = typer.Option(None, "--duration", help="Stop after S seconds."),
        seconds: float = typer.Option(60.0, "--seconds", help="Length of the demo track."),
        allow_cpu_diffusion: bool = typer.Option(False, "--allow-cpu-diffusion", help="Let SDXL run on a CPU."),
        models_dir: Optional[Path] = typer.Option(None, "--models-dir", help="Folder with downloaded models."),
        fit: str = typer.Option("fill", "--fit", help="fill | letterbox."),
        size: str = typer.Option("1280x720", "--size", help="Composition size WIDTHxHEIGHT."),
        no_hud: bool = typer.Option(False, "--no-hud", help="Start with the HUD hidden (H toggles)."),
        screenshots: Path = typer.Option(Path("screenshots"), "--screenshots", help="Folder for S screenshots."),
    ) -> None:
        """Play the built-in demo track (synthesized once, then cached)."""
        from engine.audio.demo import ensure_demo_track
        from live.commands.play import run_show
        from live.sources import FileSource

        track = ensure_demo_track(seconds)
        run_show(
            FileSource(track, audio_out=not no_audio_out), preset=preset, renderer=renderer, profile=profile,
            backend=backend, fullscreen=fullscreen, display=display, duration=duration,
            allow_cpu_diffusion=allow_cpu_diffusion, models_dir=models_dir, fit=fit, size=size, hud=not no_hud,
            screenshots=screenshots,
        )
