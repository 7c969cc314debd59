"""`beatcanvas devices`: the audio inputs and outputs PortAudio sees, with their indices."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table


def devices() -> None:
    """List audio devices (use the index or part of the name with --device). Loopback: docs/loopback.md."""
    from live.audio.sources import list_devices  # PortAudio and numpy: when listing, not for --help

    console = Console()
    devs = list_devices()
    if not devs:
        console.print(
            "[yellow]no audio devices found[/] — check that a sound server (PipeWire/PulseAudio) is running "
            "and that you are in the `audio` group; for capturing what the computer plays see docs/loopback.md"
        )
        return
    table = Table(title="audio devices", title_justify="left")
    for col in ("#", "name", "host API", "in", "out", "rate", "default"):
        table.add_column(col, justify="right" if col in ("#", "in", "out", "rate") else "left")
    for d in devs:
        default = ", ".join(k for k, on in (("input", d["default_input"]), ("output", d["default_output"])) if on)
        looks_loopback = any(w in d["name"].lower() for w in ("monitor", "loopback", "blackhole", "stereo mix"))
        name = d["name"] + (" [cyan](loopback)[/]" if looks_loopback else "")
        table.add_row(str(d["index"]), name, d["hostapi"], str(d["inputs"]), str(d["outputs"]),
                      f"{d['default_samplerate']:.0f}", default)
    console.print(table)
    console.print("Choose one with [bold]--device INDEX[/] or part of its name. Loopback set-up: docs/loopback.md")


def register(app: typer.Typer) -> None:
    app.command("devices")(devices)
