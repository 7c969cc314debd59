"""The rig's command-line options (--osc-port, --midi, --link, --ndi, ...), shared by play, live and
demo: `@with_rig_options` adds them to a command and hands the command one `rig: RigOptions`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import typer

from live.control.osc import DEFAULT_HOST
from live.rig import RigOptions

_OPTIONS: list[tuple[str, Any, Any]] = [
    ("osc_port", Optional[int], typer.Option(None, "--osc-port", help="Listen for OSC on this UDP port (e.g. 9000).")),
    ("osc_host", str, typer.Option(DEFAULT_HOST, "--osc-host", help="Address OSC in binds; 0.0.0.0 opens it to the network.")),
    ("osc_out", Optional[str], typer.Option(None, "--osc-out", help="Send features over OSC to HOST:PORT.")),
    ("osc_out_every", str, typer.Option("frame", "--osc-out-every", help="frame | beat: how often OSC out sends.")),
    ("midi", Optional[str], typer.Option(None, "--midi", help="MIDI input (part of its name; '' = the first port).")),
    ("midi_map", Optional[Path], typer.Option(None, "--midi-map", help="MIDI mapping TOML (learn saves here); turns MIDI on.")),
    ("link", bool, typer.Option(False, "--link", help="Join an Ableton Link session: the beat follows its tempo and phase.")),
    ("ndi", bool, typer.Option(False, "--ndi", help="Send the picture as the NDI source 'beatcanvas'.")),
    ("spout", bool, typer.Option(False, "--spout", help="Send the picture as the Spout sender 'beatcanvas' (Windows).")),
    ("syphon", bool, typer.Option(False, "--syphon", help="Send the picture as the Syphon server 'beatcanvas' (macOS).")),
]


def rig_options(values: dict[str, Any]) -> RigOptions:
    midi = values["midi"]
    if midi is None and values["midi_map"] is not None:
        midi = ""  # a mapping file alone turns MIDI on, on the port it names
    return RigOptions(**{**values, "midi": midi})


def with_rig_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the rig options to `command`'s signature (so typer shows them) and pass them to it as
    one `rig: RigOptions` keyword."""
    signature = inspect.signature(command)
    names = [name for name, _, _ in _OPTIONS]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in names}
        return command(*args, rig=rig_options(values), **kwargs)

    params = [p for p in signature.parameters.values() if p.name != "rig"]
    params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
               for name, annotation, default in _OPTIONS]
    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    return wrapper
