"""`beatcanvas demo`: play the project's own synthesized track, so the first command works on any
machine with no files and no downloads."""

from __future__ import annotations

import typer

from live.commands.options import ModelArgs, ShowArgs, with_options
from live.commands.rig_options import RigArgs


def _help() -> str:
    from engine.models.cache import cache_dir  # not engine.audio.demo: --help loads no numpy

    return (
        "Play the built-in demo track (synthesized on first use, then cached in "
        f"{cache_dir()}; delete its demo-*.wav to make it again)."
    )


def register(app: typer.Typer) -> None:
    @app.command("demo", help=_help())
    @with_options(model=ModelArgs, show=ShowArgs, rig=RigArgs)
    def demo(
        no_audio_out: bool = typer.Option(False, "--no-audio-out", help="Do not play the track; follow the wall clock."),
        seconds: float = typer.Option(60.0, "--seconds", help="Length of the demo track."),
        *,
        model: ModelArgs,
        show: ShowArgs,
        rig: RigArgs,
    ) -> None:
        from engine.audio.demo import ensure_demo_track
        from live.commands.play import run_show
        from live.audio.sources import FileSource

        track = ensure_demo_track(seconds)
        run_show(FileSource(track, audio_out=not no_audio_out), model, show, rig=rig.options(), track=track)
