"""Keyboard controls for the live window: one table, so `?` and the docs list exactly what works."""

from __future__ import annotations

from dataclasses import dataclass

import pygame


@dataclass(frozen=True)
class Action:
    """What a key asks for; `slot` is set for the 0–9 preset slots (1 → first preset, 0 → tenth)."""

    name: str
    slot: int | None = None


# key → action name, and the help line shown by `?`.
KEYMAP: dict[int, str] = {
    pygame.K_f: "fullscreen",
    pygame.K_h: "hud",
    pygame.K_SPACE: "freeze",
    pygame.K_b: "blackout",
    pygame.K_LEFT: "prev_preset",
    pygame.K_RIGHT: "next_preset",
    pygame.K_t: "tap",
    pygame.K_l: "calibrate",
    pygame.K_r: "clear_taps",
    pygame.K_s: "screenshot",
    pygame.K_m: "learn",
    pygame.K_q: "quit",
    pygame.K_ESCAPE: "quit",
    pygame.K_QUESTION: "help",
    pygame.K_SLASH: "help",  # `?` is shift+/ on most layouts
}

HELP: list[tuple[str, str]] = [
    ("F", "fullscreen on/off"),
    ("H", "HUD on/off"),
    ("Space", "freeze the picture (effects keep moving)"),
    ("B", "blackout"),
    ("Left / Right", "previous / next preset"),
    ("0-9", "preset slots (1 = first preset)"),
    ("T", "tap tempo"),
    ("L", "latency calibration: tap 4× on the beat you hear"),
    ("R", "release the tapped tempo (follow the detected beat again)"),
    ("S", "screenshot (PNG in the screenshots folder)"),
    ("M", "MIDI learn: the next control moved binds to the last knob set over OSC"),
    ("Q / Esc", "quit"),
    ("?", "this list"),
]

_DIGITS = {getattr(pygame, f"K_{d}"): d for d in range(10)}
_DIGITS.update({getattr(pygame, f"K_KP{d}"): d for d in range(10)})


def action_for(event: pygame.event.Event) -> Action | None:
    """The action a pygame event asks for, or None. Window close counts as quit."""
    if event.type == pygame.QUIT:
        return Action("quit")
    if event.type != pygame.KEYDOWN:
        return None
    if event.key in _DIGITS:
        return Action("slot", slot=_DIGITS[event.key])
    if getattr(event, "unicode", "") == "?":
        return Action("help")
    name = KEYMAP.get(event.key)
    return Action(name) if name else None
