"""`beatcanvas play TRACK`: the show, driven by a track (heard through the speakers unless
--no-audio-out). `live` and `demo` reuse `run_show` with another source."""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from engine.errors import BeatcanvasError
from live.commands.options import ModelArgs, ShowArgs, with_options
from live.commands.rig_options import RigArgs

if TYPE_CHECKING:  # the CLI starts without importing torch
    from live.control.rig import Rig, RigOptions
    from live.session.session import SessionReport
    from live.session.stages import Source, Tracker

log = logging.getLogger(__name__)
console = Console(stderr=True)


def parse_size(text: str, min_side: int = 64) -> tuple[int, int]:
    """--size WIDTHxHEIGHT (each side at least `min_side`; 0 leaves the range to the caller)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text or "")
    if not m or int(m.group(1)) < min_side or int(m.group(2)) < min_side:
        floor = f" (at least {min_side}x{min_side})" if min_side else ""
        raise BeatcanvasError(f"--size {text!r} is not WIDTHxHEIGHT{floor} — write it like --size 1280x720")
    return int(m.group(1)), int(m.group(2))


def check_beats(value: str) -> str:
    if value not in ("learned", "dsp"):
        raise BeatcanvasError(f"--beats {value} is not a beat tracker — use learned or dsp")
    return value


def check_latency_ms(value: float) -> float:
    if not -1000.0 <= value <= 1000.0:
        raise BeatcanvasError(f"--latency-ms {value:g} is out of range — use -1000..1000 (typical: 0..150)")
    return float(value)


def run_show(source: Source, model: ModelArgs, show: ShowArgs, *, rig: RigOptions | None = None,
             stop_when_finished: bool = True, tracker: Tracker | None = None,
             track: Path | None = None, hold: bool = False) -> SessionReport:
    """Build everything from the preset (or playlist) and options, run the session, print a summary.
    `hold`: no auto-advance or hard cut leaves the preset (switching by hand still works)."""
    from engine.audio.beatnet.choice import live_tracker
    from engine.audio.features import FeatureTracker
    from live.screen.display import Display
    from live.presets.library import preset_file
    from live.presets.playlist import library_show, playlist_show
    from live.presets.schema import read_preset_file
    from live.schedule.runtime import direction_for_track
    from live.session.session import SessionConfig, build_session
    from live.session.show import resolve

    width, height = parse_size(show.size)
    if show.playlist:
        shows = playlist_show(show.playlist)
    else:
        path = preset_file(model.preset)
        shows = library_show(read_preset_file(path), path)
    opts = model.show_options(allow_cpu_diffusion=show.allow_cpu_diffusion, canvas=(width, height), live=True)
    direction = direction_for_track(track, shows.presets[shows.start], show.schedule, show.lyrics, live=track is None,
                                    say=lambda m: console.print(m, highlight=False))
    if direction is not None:  # the director mixes the style per frame, so the head hears music only
        opts = dataclasses.replace(opts, directed=True)
    spec = resolve(shows.presets[shows.start], opts)
    console.print(spec.reason, highlight=False)
    if spec.render.kind == "sdxl":
        console.print("loading models…", highlight=False)
    config = SessionConfig(width=width, height=height, duration=show.duration, stop_when_finished=stop_when_finished,
                           screenshots_dir=show.screenshots, hud=not show.no_hud,
                           latency_ms=check_latency_ms(show.latency_ms))
    display = Display(width, height, fullscreen=show.fullscreen, display_index=show.display, fit=show.fit)
    if tracker is None:
        beat_tracker, choice = live_tracker(check_beats(model.beats))
        if choice.note:
            console.print(choice.note, highlight=False)
        tracker = FeatureTracker(beats=beat_tracker)
    session = build_session(source, tracker, shows, opts, display, config, spec)
    if hold:
        session.router.transitions.set_lock(True)
    if rig is not None and rig.web and not show.playlist:  # the page may edit a preset started by path
        rig = dataclasses.replace(rig, web_preset_dirs=(path.resolve().parent,))
    session.attach_rig(_start_rig(rig, lambda: session.preset))
    session.attach_direction(direction)
    try:
        report = session.run()
    finally:
        session.stop_rig()
    session.join_workers(5.0)
    if source.finished and not source.live_input:  # the track's end, said as such (not a lost device)
        console.print("track finished", highlight=False)
    lat = f"{report.latency_ms_median:.0f} ms" if report.latency_ms_median is not None else "n/a"
    console.print(
        f"{report.display_frames} display frames ({report.display_fps:.1f} fps), {report.frames_rendered} renders, "
        f"audio→photon median {lat}, {report.render_errors} render errors, {len(report.screenshots)} screenshots",
        highlight=False,
    )
    return report


def _start_rig(options: RigOptions | None, current: Any) -> Rig | None:
    """OSC / MIDI / Link / video out, when any is asked for; each part says one line."""
    if options is None or not options.any:
        return None
    from live.control.rig import Rig

    rig = Rig(options)
    rig.start(current, say=lambda line: console.print(line, highlight=False))
    return rig


def register(app: typer.Typer) -> None:
    @app.command("play")
    @with_options(model=ModelArgs, show=ShowArgs, rig=RigArgs)
    def play(
        track: Path = typer.Argument(..., help="Audio file (wav, flac, ogg, mp3, aiff)."),
        no_audio_out: bool = typer.Option(False, "--no-audio-out", help="Do not play the track; follow the wall clock."),
        *,
        model: ModelArgs,
        show: ShowArgs,
        rig: RigArgs,
    ) -> None:
        """Play a track and show the picture it makes (keys: ? lists them)."""
        from live.audio.sources import FileSource

        run_show(FileSource(track, audio_out=not no_audio_out), model, show, rig=rig.options(), track=track)
