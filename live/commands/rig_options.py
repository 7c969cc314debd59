"""The rig's command-line options (--osc-port, --midi, --link, --ndi, ...), shared by play, live and
demo as one option group: `@with_options(..., rig=RigArgs)` (live/commands/options.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from engine.errors import BeatcanvasError
from live.commands.options import option
from live.control import DEFAULT_HOST

if TYPE_CHECKING:  # the rig's modules load when a show starts, not for --help
    from live.control.rig import RigOptions


@dataclass(frozen=True)
class RigArgs:
    osc_port: Optional[int] = option(None, "--osc-port", help="Listen for OSC on this UDP port (e.g. 9000).")
    osc_host: str = option(DEFAULT_HOST, "--osc-host", help="Address OSC in binds; 0.0.0.0 opens it to the network.")
    osc_out: Optional[str] = option(None, "--osc-out", help="Send features over OSC to HOST:PORT.")
    osc_out_every: str = option("frame", "--osc-out-every", help="frame | beat: how often OSC out sends.")
    midi: Optional[str] = option(None, "--midi", help="MIDI input (part of its name; '' = the first port).")
    midi_map: Optional[Path] = option(None, "--midi-map", help="MIDI mapping TOML (learn saves here); turns MIDI on.")
    link: bool = option(False, "--link", help="Join an Ableton Link session: the beat follows its tempo and phase.")
    link_lead: bool = option(False, "--link-lead", help="Lead an Ableton Link session: every peer follows the beat "
                             "heard here (tempo, phase and bar).")
    ndi: bool = option(False, "--ndi", help="Send the picture as the NDI source 'beatcanvas'.")
    spout: bool = option(False, "--spout", help="Send the picture as the Spout sender 'beatcanvas' (Windows).")
    syphon: bool = option(False, "--syphon", help="Send the picture as the Syphon server 'beatcanvas' (macOS).")
    web: bool = option(False, "--web", help="Serve the studio page (knobs, presets, TOML editor, preview, scopes).")
    web_port: int = option(8765, "--web-port", help="Port of the studio page (0 = any free port).")
    web_host: str = option(DEFAULT_HOST, "--web-host", help="Address the page binds; 0.0.0.0 opens it to phones "
                           "on the network (with a token).")

    def options(self) -> RigOptions:
        return rig_options(self.__dict__)


def rig_options(values: dict[str, Any]) -> RigOptions:
    from live.control.rig import RigOptions

    if values["link"] and values["link_lead"]:
        raise BeatcanvasError("--link follows a Link session and --link-lead leads it: choose one")
    midi = values["midi"]
    if midi is None and values["midi_map"] is not None:
        midi = ""  # a mapping file alone turns MIDI on, on the port it names
    web = values["web"] or values["web_port"] != 8765 or values["web_host"] != DEFAULT_HOST  # either alone turns it on
    return RigOptions(**{**values, "midi": midi, "web": web})
