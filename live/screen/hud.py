"""The heads-up display: what the performer needs to trust the show at a glance.

Display fps, render fps, audio-to-photon latency, BPM with a beat flash, valence/arousal, four stem
meters (percussive, bass, harmonic, voice), what the head heard (top labels), preset,
renderer/back-end, and the last error. Toggled with H; the key list
with `?`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pygame

from engine.types import STEM_NAMES
from live.screen.keys import HELP

ERROR_SHOW_S = 15.0  # an error stays on screen this long after it last happened
STEM_COLOURS = ((255, 120, 90), (120, 170, 255), (140, 230, 140), (250, 220, 110))  # meters, STEM_NAMES order
METER_FULL = 2.0  # a meter is full at twice the mix's typical level


@dataclass
class HudState:
    """Everything the HUD shows; the session updates it, the display loop draws it."""

    display_fps: float = 0.0
    render_fps: float = 0.0
    skip_rate: float = 0.0  # renders skipped by the similarity filter (SDXL, steady music)
    latency_ms: float | None = None
    bpm: float = 0.0
    beat: bool = False
    valence: float = 0.0
    arousal: float = 0.0
    stems: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)  # stem levels (Features.stems.level)
    labels: list[tuple[str, float]] = field(default_factory=list)
    preset: str = ""
    renderer: str = ""
    renderer_reason: str = ""
    frozen: bool = False
    message: str = ""  # a standing notice, e.g. "out of memory: now 384x384"
    error: str = ""
    error_at: float = 0.0
    frames_rendered: int = 0
    rig: str = ""  # OSC / MIDI / Link / video out status (live/control/rig.py)
    lyric: str = ""  # directing (issue 17): the line being sung (--lyrics)
    cue: str = ""  # directing (issue 17): where the schedule is
    show_t: float | None = None  # directing: the track's clock, with `sections` (their start times, s)
    sections: tuple[float, ...] = ()
    ahead: list[tuple[float, str]] = field(default_factory=list)  # the next lyric lines (start, text)
    queued: str = ""  # the next change waiting for its beat, and the beats until it lands
    section: str = ""  # live section letters: "A again · form A B" (engine/directing/live_sections.py)
    drop: str = ""  # a build's prepared drop and the beats until its predicted downbeat ("drop ready · 2 beats")

    def set_error(self, text: str) -> None:
        self.error = text
        self.error_at = time.monotonic()


class Hud:
    """Draws HudState onto the composed picture. Fonts are made once; text lines are small
    surfaces, cheap next to the compositor."""

    def __init__(self, visible: bool = True, size: int = 18) -> None:
        self.visible = visible
        self.show_help = False
        self._size = size
        self._font: pygame.font.Font | None = None
        self._small: pygame.font.Font | None = None  # the stem meters' letters

    def _font_(self) -> pygame.font.Font:
        if self._font is None:
            if not pygame.font.get_init():
                pygame.font.init()
            self._font = pygame.font.Font(None, self._size + 6)
        return self._font

    def lines(self, s: HudState) -> list[tuple[str, tuple[int, int, int]]]:
        """The HUD's text, line by line (also what tests read)."""
        white, grey, red, yellow = (240, 240, 240), (170, 170, 170), (255, 90, 80), (255, 210, 90)
        lat = f"{s.latency_ms:.0f} ms" if s.latency_ms is not None else "-"
        out = [
            (f"display {s.display_fps:5.1f} fps   render {s.render_fps:5.2f} fps"
             + (f" ({s.skip_rate:.0%} skipped)" if s.skip_rate > 0 else "") + f"   audio-to-photon {lat}", white),
            (f"{s.bpm:5.1f} BPM   valence {s.valence:+.2f}   arousal {s.arousal:+.2f}", white),
            ("stems " + "   ".join(f"{n} {v:.2f}" for n, v in zip(STEM_NAMES, s.stems)), white),
            (f"preset {s.preset}   renderer {s.renderer}" + ("   [frozen]" if s.frozen else ""), white),
        ]
        if s.renderer_reason:
            out.append((s.renderer_reason, grey))
        if s.rig:
            out.append((s.rig, grey))
        if s.labels:
            out.append(("heard: " + ", ".join(f"{k} {v:.2f}" for k, v in s.labels[:3]), grey))
        if s.cue:
            out.append(("schedule: " + s.cue, grey))
        if s.section:
            out.append(("section " + s.section, grey))
        if s.queued:
            out.append(("next: " + s.queued, (255, 210, 90)))
        if s.drop:
            out.append(("next: " + s.drop, (255, 210, 90)))
        if s.lyric:
            out.append(("lyric: " + s.lyric, (180, 220, 255)))
        if s.message:
            out.append((s.message, yellow))
        if s.error and time.monotonic() - s.error_at < ERROR_SHOW_S:
            out.append(("error: " + s.error, red))
        return out

    def draw(self, surface: pygame.Surface, s: HudState) -> None:
        if self.show_help:
            self._draw_help(surface)
        if not self.visible:
            return
        font = self._font_()
        y = 8
        width = surface.get_width() - 16
        for text, colour in self.lines(s):
            for part in _wrap(font, text, width):
                y = self._line(surface, font, part, colour, y)
        if s.beat:  # beat flash: a dot in the top-right corner
            pygame.draw.circle(surface, (255, 255, 255), (surface.get_width() - 24, 24), 12)
        self._draw_meters(surface, s.stems)

    def _draw_meters(self, surface: pygame.Surface, levels: tuple[float, ...]) -> None:
        """Four vertical stem meters in the bottom-left corner (percussive, bass, harmonic, voice)."""
        h = max(20, surface.get_height() // 6)
        x0, y0, w = 12, surface.get_height() - 12, 10
        if self._small is None:
            self._small = pygame.font.Font(None, 16)
        for i, (level, colour) in enumerate(zip(levels, STEM_COLOURS)):
            x = x0 + i * (w + 6)
            pygame.draw.rect(surface, (40, 40, 40), (x, y0 - h, w, h))
            surface.blit(self._small.render(STEM_NAMES[i][0].upper(), True, colour), (x + 1, y0 - h - 12))
            fill = int(h * min(1.0, max(0.0, float(level) / METER_FULL))) if level == level else 0
            if fill:
                pygame.draw.rect(surface, colour, (x, y0 - fill, w, fill))

    @staticmethod
    def _line(surface: pygame.Surface, font: pygame.font.Font, text: str, colour: tuple[int, int, int], y: int) -> int:
        img = font.render(text, True, colour)
        shade = pygame.Surface((img.get_width() + 8, img.get_height() + 2))
        shade.set_alpha(140)
        surface.blit(shade, (4, y - 1))
        surface.blit(img, (8, y))
        return y + img.get_height() + 2

    def _draw_help(self, surface: pygame.Surface) -> None:
        font = self._font_()
        rows = [font.render(f"{k:>8}   {d}", True, (240, 240, 240)) for k, d in HELP]
        w = max(r.get_width() for r in rows) + 32
        h = sum(r.get_height() + 4 for r in rows) + 24
        x, y = (surface.get_width() - w) // 2, (surface.get_height() - h) // 2
        box = pygame.Surface((w, h))
        box.set_alpha(200)
        surface.blit(box, (x, y))
        y += 12
        for r in rows:
            surface.blit(r, (x + 16, y))
            y += r.get_height() + 4


def _wrap(font: pygame.font.Font, text: str, width: int) -> list[str]:
    """`text` in lines no wider than `width` pixels, broken at spaces (a long reason or error line
    stays readable on a small window)."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if line and font.size(candidate)[0] > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    return lines + [line]
