"""`beatcanvas export TRACK --out DIR`: render a track offline to PNG frames (and an MP4 with its audio).

Resumable: rerun the same command after a crash or Ctrl-C and it continues where it stopped.
The engine of it is live/export/run.py; the MP4 is live/export/video.py.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from engine.errors import BeatcanvasError
from live.commands.options import ModelArgs, with_options
from live.commands.play import check_beats, parse_size

if TYPE_CHECKING:
    from live.export.run import ExportResult
    from live.export.plan import ExportPlan
    from live.export.recipe import Recipe

log = logging.getLogger(__name__)

# Settings known before any model is built: checked against an existing export first.
CHEAP_KEYS = ("format", "track", "fps", "size", "start", "render_every", "seed", "hop_s", "preset_hash", "profile", "chunks",
              "direction")


# The weights-free look has no native size: export at the size `play` and `demo` show by default.
WEIGHTS_FREE_SIZE = (1280, 720)


def export_size(size: str | None, preset: Any, kind: str) -> tuple[int, int, str]:
    """(width, height, note for the progress line): --size, else SDXL's preset size, else what
    `play` shows (the weights-free renderers draw at any size)."""
    if size:
        return (*parse_size(size, min_side=0), "")
    if kind == "sdxl":
        return preset.model.width, preset.model.height, " (the preset's size; --size changes it)"
    return (*WEIGHTS_FREE_SIZE, " (play's size; --size changes it)")


@with_options(model=ModelArgs)
def export(
    track: Path = typer.Argument(..., help="Audio file (wav, flac, ogg, mp3, aiff)."),
    out: Path = typer.Option(..., "--out", help="Folder for frame_000001.png …, manifest.json and frames.jsonl."),
    fps: float = typer.Option(30.0, "--fps", help="Frames per second."),
    video: Optional[Path] = typer.Option(None, "--video", help="Also encode FILE.mp4 (H.264 + the track's audio)."),
    size: Optional[str] = typer.Option(None, "--size", help="Output WIDTHxHEIGHT (default: SDXL's preset size, or 1280x720 for the weights-free look)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Noise seed (default: the preset's)."),
    start: float = typer.Option(0.0, "--start", help="Start of the span, seconds."),
    end: Optional[float] = typer.Option(None, "--end", help="End of the span, seconds (default: the track's end)."),
    render_every: int = typer.Option(1, "--render-every", help="Render every K-th frame; the compositor fills the rest."),
    force: bool = typer.Option(False, "--force", help="Start over even if OUT holds an export with other settings."),
    schedule: Optional[Path] = typer.Option(None, "--schedule", help="Schedule TOML: timed styles, knobs, presets."),
    lyrics: Optional[Path] = typer.Option(None, "--lyrics", help="Timed lyrics (.lrc); default: TRACK.lrc if present."),
    chunk_seconds: float = typer.Option(10.0, "--chunk-seconds", help="Chunk length (s): each chunk starts from its own "
                                        "warm-up, so workers and resumes need no earlier frames; 0 = one chunk."),
    workers: int = typer.Option(1, "--workers", help="Render chunks on N Ray workers (pip install -e '.[cluster]')."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="An existing Ray cluster (auto | HOST:PORT); "
                                              "default: a local one with --workers slots."),
    shared_storage: bool = typer.Option(True, "--shared-storage/--no-shared-storage",
                                        help="Ray workers write --out themselves (it must be on storage every node "
                                             "mounts); --no-shared-storage: the inputs and PNGs travel through Ray."),
    drops: bool = typer.Option(False, "--drops", help="Prepare each build's drop look and cut to it on the drop's "
                               "beat (a build with no drop changes nothing); logged in frames.jsonl."),
    *,
    model: ModelArgs,
) -> None:
    """Render TRACK offline, frame by frame, deterministically; resumes where a previous run stopped."""
    from live.export.run import ExportSettings, check_resumable, plan_export
    from live.export.recipe import Recipe
    from live.presets.library import load_preset
    from live.schedule.runtime import direction_for_track
    from live.session.show import choose, resolve

    console = Console()
    if workers < 1:
        raise BeatcanvasError(f"--workers must be 1 or more, not {workers}")
    if not shared_storage and workers == 1 and not ray_address:
        raise BeatcanvasError("--no-shared-storage is for Ray workers: add --workers N (N > 1) or --ray-address")
    if workers > 1 or ray_address:
        from live.export.cluster import _ray

        _ray()  # the install hint before anything is loaded
    preset = load_preset(model.preset)
    explicit = parse_size(size, min_side=0) if size else None
    # Export is patient: SDXL may diffuse on a CPU; software OpenGL may draw the shader look.
    opts = model.show_options(allow_cpu_diffusion=True, size=explicit, seed=seed, live=False)
    kind = choose(preset, opts)
    width, height, size_note = export_size(size, preset, kind[0])
    if video is not None and (width % 2 or height % 2):
        raise BeatcanvasError(f"--video needs an even width and height (H.264 yuv420p), not {width}x{height}")
    spec = resolve(preset, opts, kind)
    settings = ExportSettings(
        track=track.resolve(), out_dir=out.resolve(), fps=fps, width=width, height=height, start=start, end=end,
        render_every=render_every, seed=spec.render.seed, preset_name=spec.name, preset_hash=spec.preset_hash,
        profile=spec.profile, reactivity=spec.compositor.reactivity, crossfade_ms=spec.compositor.crossfade_ms,
        max_flashes_per_s=spec.compositor.max_flashes_per_s, chunk_s=chunk_seconds, beats=check_beats(model.beats),
        drops=drops,
    )
    plan = plan_export(settings)  # argument errors before any model loads
    direction = direction_for_track(track, preset, schedule, lyrics, say=lambda m: console.print(m, highlight=False))
    if direction is not None:  # the director mixes the style per frame, so the head hears music only
        opts = dataclasses.replace(opts, directed=True, size=(width, height))
        spec = resolve(preset, opts, kind)
        settings = dataclasses.replace(settings, direction=direction.fingerprint())
    check_resumable(settings, plan, force, keys=CHEAP_KEYS)
    recipe = Recipe(settings, dataclasses.replace(spec, render=dataclasses.replace(spec.render, width=width, height=height)),
                    preset, schedule.resolve() if schedule else None, _lyrics_path(direction),
                    opts, kind)
    console.print(spec.reason, highlight=False)
    where = f", {workers} Ray workers" if workers > 1 else ""
    console.print(
        f"exporting [bold]{track.name}[/] {plan.start:g}–{plan.end:.2f} s → {plan.n_frames} frames "
        f"at {fps:g} fps, {width}x{height}{size_note}, preset {spec.name}, seed {spec.render.seed}{where}"
    )
    result = _run(console, recipe, plan, workers, ray_address, force, shared_storage)
    if result.resumed_from:
        console.print(f"resumed: kept {result.resumed_from} frames, wrote {result.written}")
    if result.trimmed:
        console.print(f"removed {result.trimmed} frames past the new end")
    console.print(f"[green]done[/]: {result.n_frames} frames in {out}")
    if video is not None:
        _encode(console, out, plan.n_frames, fps, video, track, plan.start)


def _lyrics_path(direction: Any) -> Path | None:
    """--lyrics, or the track's own .lrc that `direction_for_track` found (workers read it by path)."""
    if direction is None or direction.paths["lyrics"] is None:
        return None
    return Path(direction.paths["lyrics"]).resolve()


def _run(console: Console, recipe: Recipe, plan: ExportPlan, workers: int, address: str | None, force: bool,
         shared_storage: bool = True) -> ExportResult:
    """The frames: in this process (the models load here), or on Ray workers; one progress bar."""
    from live.export.run import Progress as FrameProgress, export_stages
    from live.export.recipe import build

    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("frames" if workers == 1 else "loading models on the workers", total=plan.n_frames, rate="")

        def on_progress(p: FrameProgress) -> None:
            desc = "fast-forward" if p.replaying else "frames"
            speed = bar.tasks[0].speed
            bar.update(task, completed=p.index, description=desc, rate=f"{speed:.1f} frames/s" if speed else "")

        try:
            if workers > 1 or address:
                from live.export.cluster import run_cluster

                return run_cluster(recipe, workers, address, force=force, plan=plan, on_progress=on_progress,
                                   shared_storage=shared_storage)
            built = build(recipe)
            settings = dataclasses.replace(recipe.settings, renderer=built.renderer, model_ids=built.model_ids)
            return export_stages(settings, built.stages, force=force, on_progress=on_progress, plan=plan)
        except KeyboardInterrupt:
            bar.stop()
            console.print(f"[yellow]stopped[/]: finished frames are kept in {recipe.settings.out_dir} — "
                          "rerun the same command to resume")
            raise typer.Exit(130) from None


def _encode(console: Console, out: Path, n_frames: int, fps: float, video: Path, track: Path, start: float) -> None:
    from live.export.run import frame_path
    from live.export.video import encode_video

    with Progress(TextColumn("encoding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("video", total=n_frames)
        encode_video(lambda i: frame_path(out, i), n_frames, fps, video, track, start,
                     on_frame=lambda n: bar.update(task, completed=n))
    console.print(f"[green]wrote[/] {video}")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
