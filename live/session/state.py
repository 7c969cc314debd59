"""What the loops share: the runtime's knobs, the report, and the board of hand-off slots.

Each loop reads the slots it is given and writes one; none calls another loop. `Board` names them:

    features      feature loop → conditioning, render and display loops
    conditioning  conditioning loop → render loop
    frames        render loop → display loop (the frame and its prepared Surface)
    specs         preset router → conditioning and render loops (each applies its own part)
    negatives     conditioning loop → render loop (the negative prompt's conditioning, for guidance)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pygame

from engine.directing.live_sections import LiveRecall
from engine.render.stage import Negative
from engine.types import Conditioning, Features, Frame
from live.audio.hopclock import HOP_S
from live.screen.hud import HudState
from live.session.anticipate import Anticipation
from live.session.faults import Faults
from live.session.show import ShowSpec
from live.session.slots import LatestSlot

if TYPE_CHECKING:
    from live.control.rig import Rig
    from live.schedule.runtime import ShowDirection


@dataclass
class SessionConfig:
    """Knobs of the runtime itself (the look is the preset's)."""

    width: int = 1280  # composition size; the display scales it to the window
    height: int = 720
    hop_s: float = HOP_S  # conditioning period, on the audio clock
    max_fps: float = 60.0  # frame cap when vsync is unavailable (and a ceiling when it is)
    # Renders beyond this are wasted CPU (the prepare scale alone is ~3 ms): the crossfade fills
    # the gaps. A GPU renderer faster than this just idles.
    max_render_fps: float = 240.0  # a ceiling; the preset's [model] max_render_fps is the cap (30 CPU, 60 GPU)
    duration: float | None = None  # stop after this many seconds (wall clock)
    stop_when_finished: bool = True  # a file source that ends ends the session
    backoff_s: float = 0.25  # retry delay after the second failure in a row; doubles
    backoff_max_s: float = 5.0
    reopen_every_s: float = 1.0  # how often to retry a lost input device
    feature_period_s: float = 0.005  # how often the feature thread polls the ring
    fallback_after: int = 5  # render failures in a row before the procedural renderer takes over
    hang_s: float = 10.0  # a render this long is hung: the procedural renderer takes over
    slow_factor: float = 5.0  # a render this many times its recent median is shown as slow
    retry_s: float = 10.0  # first retry of the configured renderer after a fallback; doubles to 2 min
    screenshots_dir: Path = field(default_factory=lambda: Path("screenshots"))
    hud: bool = True
    hot_reload: bool = True
    latency_ms: float = 0.0  # extra lead for the beat pulses (--latency-ms; calibration taps replace it)
    anticipate: bool = True  # render a change early by the measured latency (live/session/anticipate.py)


@dataclass
class SessionReport:
    """What happened, for the CLI summary, the benchmark and tests."""

    display_frames: int = 0
    frames_rendered: int = 0
    frames_shown: int = 0  # distinct rendered frames handed to the compositor
    frames_skipped: int = 0  # renders the similarity filter skipped (the conditioning barely moved)
    render_errors: int = 0
    conditioning_steps: int = 0
    conditioning_errors: int = 0
    overflows: int = 0
    reopens: int = 0
    fallbacks: int = 0  # times the procedural renderer took over from a failing one
    recoveries: int = 0  # times the configured renderer came back
    presets_applied: int = 0
    screenshots: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    display_fps: float = 0.0
    longest_frame_gap_s: float = 0.0
    first_frame_s: float | None = None  # from the display loop's start to the first rendered frame on screen
    latency_ms_median: float | None = None
    latency_ms_p95: float | None = None
    interrupted: bool = False
    change_onsets: list[tuple[float, float]] = field(default_factory=list)  # (intended, first on screen), source clock
    drops: list[tuple[float, str]] = field(default_factory=list)  # (source clock, prepared | used | discarded)
    sections: list[tuple[float, str]] = field(default_factory=list)  # live: (source clock, letter of a section that ended)
    drop_cuts: list[tuple[float, float]] = field(default_factory=list)  # live: (predicted downbeat, drop look on screen)
    last_error: str = ""


@dataclass
class Board:
    """The slots between the loops, the HUD state they report to, and the stop signal."""

    state: HudState
    report: SessionReport = field(default_factory=SessionReport)
    features: LatestSlot[Features] = field(default_factory=LatestSlot)
    conditioning: LatestSlot[Conditioning] = field(default_factory=LatestSlot)
    frames: LatestSlot[tuple[Frame, pygame.Surface]] = field(default_factory=LatestSlot)
    held: LatestSlot[tuple[Frame, pygame.Surface]] = field(default_factory=LatestSlot)  # a drop's look, rendered ahead
    specs: LatestSlot[ShowSpec] = field(default_factory=LatestSlot)
    negatives: LatestSlot[Negative | None] = field(default_factory=LatestSlot)
    stop: threading.Event = field(default_factory=threading.Event)
    rig: Rig | None = None  # OSC / MIDI / Link / video out (live/control/rig.py), when the show has one
    direction: ShowDirection | None = None  # --schedule / --lyrics (live/schedule/runtime.py)
    recall: LiveRecall = field(default_factory=LiveRecall)  # live: what a returning section recalls
    anticipation: Anticipation = field(default_factory=lambda: Anticipation(1 / 60))  # the session sets its own
    faults: Faults = field(init=False)

    def __post_init__(self) -> None:
        self.faults = Faults(self.state)

    def close(self) -> None:
        self.stop.set()
        for slot in (self.features, self.conditioning, self.frames, self.held, self.specs, self.negatives):
            slot.close()
