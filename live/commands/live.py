"""`beatcanvas live`: the show driven by a microphone, line in or loopback device. The input may
vanish mid-show (a cable, a USB hiccup): the picture keeps going and the session reopens it."""

from __future__ import annotations

from typing import Optional

import typer

from live.commands.options import ModelArgs, ShowArgs, with_options
from live.commands.rig_options import RigArgs


def register(app: typer.Typer) -> None:
    @app.command("live")
    @with_options(model=ModelArgs, show=ShowArgs, rig=RigArgs)
    def live(
        input: Optional[str] = typer.Option(None, "--input", help="Input device (number or name; see `beatcanvas devices`)."),
        *,
        model: ModelArgs,
        show: ShowArgs,
        rig: RigArgs,
    ) -> None:
        """Listen to an input device and show the picture it makes (keys: ? lists them)."""
        from live.commands.play import run_show
        from live.audio.sources import MicSource

        device = int(input) if input is not None and input.isdigit() else input
        run_show(MicSource(device), model, show, rig=rig.options(), stop_when_finished=False)
