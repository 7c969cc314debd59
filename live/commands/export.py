"""`beatcanvas export TRACK --out DIR`: render a track offline to PNG frames (and an MP4 with its audio).

Resumable: rerun the same command after a crash or Ctrl-C and it continues where it stopped.
The engine of it is live/export.py; the MP4 is live/video.py.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from engine.errors import BeatcanvasError
from live.commands.play import parse_size
from live.export import (
    ExportSettings,
    Progress as FrameProgress,
    check_resumable,
    frame_path,
    plan_export,
    run_export,
)
from live.factory import PROFILES

log = logging.getLogger(__name__)

# Settings known before any model is built: checked against an existing export first.
CHEAP_KEYS = ("format", "track", "fps", "size", "start", "render_every", "seed", "hop_s", "preset_hash", "profile",
              "direction")


def build_stages(preset: Any, renderer_choice: str | None, profile: str, width: int, height: int, seed: int) -> tuple[Any, Any, dict[str, str], str]:
    """(renderer, understanding or None, model ids, renderer name) from the shared factory, so an
    export looks like `play` with the same preset. Export is patient: SDXL may diffuse on a CPU."""
    from live import factory

    opts = factory.RenderOptions(renderer=renderer_choice, profile=profile, allow_cpu_diffusion=True)
    kind, reason = factory.choose(preset, opts)
    log.info(reason)
    renderer, understanding, ids, name = factory.build_export_stages(preset, kind, profile, width, height, seed)
    return renderer, understanding, {**_published_ids(preset, kind, profile), **ids}, name


def _published_ids(preset: Any, kind: str, profile: str) -> dict[str, str]:
    """repo@revision of every published model the export uses (for the manifest), from the registry."""
    if kind != "sdxl" or profile != "real":
        return {}
    from engine.registry import MODELS

    names = [preset.model.model, "clap"] + (["taesdxl"] if preset.model.decoder == "taesd" else [])
    names += [d for n in list(names) if n in MODELS for d in MODELS[n].depends_on]
    return {n: f"{MODELS[n].repo_id}@{MODELS[n].revision}" for n in names if n in MODELS}


def export(
    track: Path = typer.Argument(..., help="Audio file (wav, flac, ogg, mp3, aiff)."),
    out: Path = typer.Option(..., "--out", help="Folder for frame_000001.png …, manifest.json and frames.jsonl."),
    fps: float = typer.Option(30.0, "--fps", help="Frames per second."),
    video: Optional[Path] = typer.Option(None, "--video", help="Also encode FILE.mp4 (H.264 + the track's audio)."),
    size: Optional[str] = typer.Option(None, "--size", help="Output WIDTHxHEIGHT (default: the preset's size)."),
    preset_name: str = typer.Option("default", "--preset", help="Preset name or .toml file."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Noise seed (default: the preset's)."),
    start: float = typer.Option(0.0, "--start", help="Start of the span, seconds."),
    end: Optional[float] = typer.Option(None, "--end", help="End of the span, seconds (default: the track's end)."),
    render_every: int = typer.Option(1, "--render-every", help="Render every K-th frame; the compositor fills the rest."),
    renderer: Optional[str] = typer.Option(None, "--renderer", help="auto | sdxl | procedural (default: the preset's)."),
    profile: str = typer.Option("real", "--profile", help="Model weights: real | tiny | random-full."),
    force: bool = typer.Option(False, "--force", help="Start over even if OUT holds an export with other settings."),
    schedule: Optional[Path] = typer.Option(None, "--schedule", help="Schedule TOML: timed styles, knobs, presets."),
    lyrics: Optional[Path] = typer.Option(None, "--lyrics", help="Timed lyrics (.lrc); default: TRACK.lrc if present."),
) -> None:
    """Render TRACK offline, frame by frame, deterministically; resumes where a previous run stopped."""
    from live.presets.library import load_preset
    from live.presets.schema import preset_hash

    console = Console()
    if profile not in PROFILES:
        raise BeatcanvasError(f"--profile {profile!r} is unknown — use one of {', '.join(PROFILES)}")
    preset = load_preset(preset_name)
    width, height = parse_size(size, min_side=0) if size else (preset.model.width, preset.model.height)
    if video is not None and (width % 2 or height % 2):
        raise BeatcanvasError(f"--video needs an even width and height (H.264 yuv420p), not {width}x{height}")
    seed_value = preset.motion.seed if seed is None else seed
    settings = ExportSettings(
        track=track, out_dir=out, fps=fps, width=width, height=height, start=start, end=end,
        render_every=render_every, seed=seed_value, preset_name=preset.name,
        preset_hash=preset_hash(preset), profile=profile,
    )
    plan = plan_export(settings)  # argument errors before any model loads
    from live.schedule.runtime import direction_for_track  # directing (issue 17)

    direction = direction_for_track(track, preset, schedule, lyrics, say=lambda m: console.print(m, highlight=False))
    if direction is not None:
        settings = dataclasses.replace(settings, direction=direction.fingerprint())
    check_resumable(settings, plan, force, keys=CHEAP_KEYS)
    rend, understanding, model_ids, rname = build_stages(
        preset, renderer, profile, width, height, seed_value
    )
    settings = dataclasses.replace(
        settings, renderer=rname, model_ids=model_ids,
        reactivity=preset.reactivity, crossfade_ms=preset.motion.crossfade_ms,
    )
    console.print(
        f"exporting [bold]{track.name}[/] {plan.start:g}–{plan.end:.2f} s → {plan.n_frames} frames "
        f"at {fps:g} fps, {width}x{height}, {rname}, preset {preset.name}, seed {seed_value}"
    )
    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
    )
    result = None
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("frames", total=plan.n_frames, rate="")

        def on_progress(p: FrameProgress) -> None:
            desc = "fast-forward" if p.replaying else "frames"
            speed = bar.tasks[0].speed
            bar.update(task, completed=p.index, description=desc, rate=f"{speed:.1f} frames/s" if speed else "")

        try:
            result = run_export(settings, rend, understanding, force=force, on_progress=on_progress, plan=plan,
                                direction=direction)
        except KeyboardInterrupt:
            bar.stop()
            console.print(
                f"[yellow]stopped[/]: finished frames are kept in {out} — rerun the same command to resume"
            )
            raise typer.Exit(130) from None
    if result.resumed_from:
        console.print(f"resumed: kept {result.resumed_from} frames, wrote {result.written}")
    console.print(f"[green]done[/]: {result.n_frames} frames in {out}")
    if video is not None:
        from live.video import encode_video

        with Progress(TextColumn("encoding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console) as bar:
            task = bar.add_task("video", total=plan.n_frames)
            encode_video(
                lambda i: frame_path(out, i), plan.n_frames, fps, video, track, plan.start,
                on_frame=lambda n: bar.update(task, completed=n),
            )
        console.print(f"[green]wrote[/] {video}")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
