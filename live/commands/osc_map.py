"""`beatcanvas osc-map`: every OSC address with its range and default; optional JSON files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from engine.errors import BeatcanvasError


def _write(path: Path, data: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    except OSError as e:
        raise BeatcanvasError(f"cannot write {path}: {e.strerror or e}; pick another path") from None


def register(app: typer.Typer) -> None:
    @app.command("osc-map")
    def osc_map(
        json_out: Optional[Path] = typer.Option(None, "--json", help="Write the plain JSON map here."),
        touchosc: Optional[Path] = typer.Option(None, "--touchosc", help="Write a TouchOSC-style layout (JSON) here."),
    ) -> None:
        """List every OSC address beatcanvas answers to (range, default) and sends."""
        from live.control.knobs import knob_table
        from live.control.oscmap import OSC_TYPES, address_map, knob_range, touchosc_layout
        from live.control.knobs import COMMANDS
        from live.control.osc import QUERIES
        from live.outputs.osc_out import OUT, OUT_ADDRESSES

        console = Console(soft_wrap=True, highlight=False)
        console.print("OSC in: --osc-port PORT (e.g. 9000), bound to 127.0.0.1 unless --osc-host says otherwise")
        for k in knob_table().values():
            console.print(f"  {k.address:<48} {OSC_TYPES[k.kind]:<16} {knob_range(k):<34} "
                          f"default {k.default!r:<14} {k.description}", markup=False)
        arg_types = {"none": "", "toggle": "[0|1]", "text": "s", "address": "[s]", "cue": "s [s]"}
        for address, c in COMMANDS.items():
            console.print(f"  {address:<48} {arg_types[c.arg]:<16} {c.help}", markup=False)
        for address, what in QUERIES.items():
            console.print(f"  {address:<48} {'':<16} {what}", markup=False)
        console.print("OSC out: --osc-out HOST:PORT (--osc-out-every frame|beat)")
        for address, (types, what) in OUT_ADDRESSES.items():
            console.print(f"  {OUT + '/' + address:<48} {types:<16} {what}", markup=False)
        if json_out is not None:
            _write(json_out, address_map())
            console.print(f"wrote {json_out}")
        if touchosc is not None:
            _write(touchosc, touchosc_layout())
            console.print(f"wrote {touchosc}")
