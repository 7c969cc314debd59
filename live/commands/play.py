"""`beatcanvas play TRACK`: the show, driven by a track (heard through the speakers unless
--no-audio-out). `live` and `demo` reuse `run_show` with another source."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from engine.errors import BeatcanvasError

log = logging.getLogger(__name__)
console = Console(stderr=True)


def parse_size(text: str, min_side: int = 64) -> tuple[int, int]:
    """--size WIDTHxHEIGHT (each side at least `min_side`; 0 leaves the range to the caller)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text or "")
    if not m or int(m.group(1)) < min_side or int(m.group(2)) < min_side:
        floor = f" (at least {min_side}x{min_side})" if min_side else ""
        raise BeatcanvasError(f"--size {text!r} is not WIDTHxHEIGHT{floor} — write it like --size 1280x720")
    return int(m.group(1)), int(m.group(2))


def load_show_preset(name_or_file: str) -> tuple[Any, Path | None]:
    """The preset and the file to watch for hot reload."""
    from live.presets.library import _looks_like_path, find_preset, load_preset

    path = Path(name_or_file).expanduser() if _looks_like_path(name_or_file) else find_preset(str(name_or_file))
    return load_preset(path), path


def run_show(
    source: Any,
    *,
    preset: str,
    renderer: Optional[str],
    profile: str,
    backend: Optional[str],
    fullscreen: bool,
    display: int,
    duration: Optional[float],
    allow_cpu_diffusion: bool,
    models_dir: Optional[Path],
    fit: str = "fill",
    size: str = "1280x720",
    hud: bool = True,
    screenshots: Path = Path("screenshots"),
    stop_when_finished: bool = True,
    tracker: Any = None,
    track: Optional[Path] = None,  # directing (issue 17): the file being played, if any
    schedule: Optional[Path] = None,
    lyrics: Optional[Path] = None,
) -> Any:
    """Build everything from the preset and options, run the session, print a summary."""
    from engine.audio.features import FeatureTracker
    from live import factory
    from live.display import Display
    from live.session import Session, SessionConfig

    the_preset, path = load_show_preset(preset)
    width, height = parse_size(size)
    from live.schedule.runtime import direction_for_track  # directing (issue 17)

    direction = direction_for_track(track, the_preset, schedule, lyrics, live=track is None,
                                    say=lambda m: console.print(m, highlight=False))
    opts = factory.RenderOptions(
        renderer=renderer, profile=profile, backend=backend, models_dir=models_dir,
        allow_cpu_diffusion=allow_cpu_diffusion, canvas=(width, height),
    )
    kind, reason = factory.choose(the_preset, opts)
    console.print(reason, highlight=False)
    if kind == "sdxl":
        console.print("loading models…", highlight=False)
    stages, step_down = factory.build_stages(the_preset, opts, kind=kind, reason=reason)
    config = SessionConfig(
        width=width, height=height, duration=duration, stop_when_finished=stop_when_finished,
        screenshots_dir=screenshots, hud=hud, renderer_reason=reason,
    )
    session = Session(
        source,
        tracker or FeatureTracker(),
        stages.renderer,
        the_preset,
        Display(width, height, fullscreen=fullscreen, display_index=display, fit=fit),
        understanding=stages.understanding,
        config=config,
        preset_path=path,
        step_down=step_down,
        rebuild=factory.rebuild_for(opts),
        direction=direction,
    )
    report = session.run()
    session.join_workers(5.0)
    lat = f"{report.latency_ms_median:.0f} ms" if report.latency_ms_median is not None else "n/a"
    console.print(
        f"{report.display_frames} display frames ({report.display_fps:.1f} fps), {report.frames_rendered} renders, "
        f"audio→photon median {lat}, {report.render_errors} render errors, {len(report.screenshots)} screenshots",
        highlight=False,
    )
    return report


def register(app: typer.Typer) -> None:
    @app.command("play")
    def play(
        track: Path = typer.Argument(..., help="Audio file (wav, flac, ogg, mp3, aiff)."),
        preset: str = typer.Option("default", "--preset", help="Preset name or .toml file (hot-reloaded)."),
        renderer: Optional[str] = typer.Option(None, "--renderer", help="auto | sdxl | procedural (default: the preset's)."),
        profile: str = typer.Option("real", "--profile", help="Model weights: real | tiny | random-full."),
        backend: Optional[str] = typer.Option(None, "--backend", help="auto | eager | inductor | tensorrt (default: the preset's)."),
        fullscreen: bool = typer.Option(False, "--fullscreen", help="Start fullscreen (F toggles)."),
        display: int = typer.Option(0, "--display", help="Monitor number for the window."),
        no_audio_out: bool = typer.Option(False, "--no-audio-out", help="Do not play the track; follow the wall clock."),
        duration: Optional[float] = typer.Option(None, "--duration", help="Stop after S seconds."),
        allow_cpu_diffusion: bool = typer.Option(False, "--allow-cpu-diffusion", help="Let SDXL run on a CPU (seconds per frame)."),
        models_dir: Optional[Path] = typer.Option(None, "--models-dir", help="Folder with downloaded models."),
        fit: str = typer.Option("fill", "--fit", help="fill (crop to the window) | letterbox."),
        size: str = typer.Option("1280x720", "--size", help="Composition size WIDTHxHEIGHT (the window scales it)."),
        no_hud: bool = typer.Option(False, "--no-hud", help="Start with the HUD hidden (H toggles)."),
        screenshots: Path = typer.Option(Path("screenshots"), "--screenshots", help="Folder for S screenshots."),
        schedule: Optional[Path] = typer.Option(None, "--schedule", help="Schedule TOML (hot-reloaded): timed styles, knobs, presets."),
        lyrics: Optional[Path] = typer.Option(None, "--lyrics", help="Timed lyrics (.lrc); default: TRACK.lrc if present."),
    ) -> None:
        """Play a track and show the picture it makes (keys: ? lists them)."""
        from live.sources import FileSource

        source = FileSource(track, audio_out=not no_audio_out)
        run_show(
            source, preset=preset, renderer=renderer, profile=profile, backend=backend, fullscreen=fullscreen,
            display=display, duration=duration, allow_cpu_diffusion=allow_cpu_diffusion, models_dir=models_dir,
            fit=fit, size=size, hud=not no_hud, screenshots=screenshots,
            track=track, schedule=schedule, lyrics=lyrics,
        )
