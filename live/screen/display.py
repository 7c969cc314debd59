"""The window: windowed or fullscreen on a chosen monitor, fill or letterbox, vsync, resizable.

Only the display loop (main thread) touches it. Works under SDL_VIDEODRIVER=dummy for tests, where
vsync is unavailable and the loop's frame cap paces it instead.
"""

from __future__ import annotations

import logging
import os

import pygame

from engine.errors import BeatcanvasError

log = logging.getLogger(__name__)

FITS = ("fill", "letterbox")


class Display:
    """A pygame-ce window that shows composed Surfaces scaled to its current size."""

    def __init__(
        self,
        width: int = 1280,
        height: int = 720,
        fullscreen: bool = False,
        display_index: int = 0,
        fit: str = "fill",
        vsync: bool = True,
        title: str = "beatcanvas",
    ) -> None:
        if fit not in FITS:
            raise BeatcanvasError(f"unknown fit {fit!r}; use one of {', '.join(FITS)}")
        self.windowed_size = (int(width), int(height))
        self.fullscreen = fullscreen
        self.display_index = int(display_index)
        self.fit = fit
        self.vsync = vsync
        self.title = title
        self.screen: pygame.Surface | None = None
        self.vsync_active = False
        self.resizes = 0

    @property
    def size(self) -> tuple[int, int]:
        return self.screen.get_size() if self.screen is not None else self.windowed_size

    def open(self) -> None:
        pygame.display.init()
        pygame.font.init()
        n = pygame.display.get_num_displays()
        if not 0 <= self.display_index < max(n, 1):
            raise BeatcanvasError(
                f"--display {self.display_index} does not exist: this machine has {n} display(s) (0..{n - 1})"
            )
        pygame.display.set_caption(self.title)
        self._set_mode()

    def _set_mode(self, size: tuple[int, int] | None = None) -> None:
        if self.fullscreen:
            flags, size = pygame.FULLSCREEN, (0, 0)
        else:
            flags, size = pygame.RESIZABLE, size or self.windowed_size
        want_vsync = self.vsync and os.environ.get("SDL_VIDEODRIVER") != "dummy"
        try:
            self.screen = pygame.display.set_mode(size, flags, display=self.display_index, vsync=int(want_vsync))
            self.vsync_active = want_vsync
        except pygame.error as e:  # vsync is a request, not a requirement
            log.info("vsync unavailable (%s); pacing with a frame cap", e)
            self.screen = pygame.display.set_mode(size, flags, display=self.display_index)
            self.vsync_active = False

    def toggle_fullscreen(self) -> None:
        self.fullscreen = not self.fullscreen
        try:
            self._set_mode()
        except pygame.error as e:
            log.warning("could not switch fullscreen: %s", e)
            self.fullscreen = not self.fullscreen

    def handle(self, event: pygame.event.Event) -> None:
        """Window events the display owns (resize); everything else is the session's."""
        if event.type == pygame.VIDEORESIZE and not self.fullscreen:
            size = (max(64, event.w), max(64, event.h))
            self.windowed_size = size
            self.resizes += 1
            try:
                self._set_mode(size)
            except pygame.error as e:
                log.warning("resize to %dx%d failed: %s", size[0], size[1], e)

    def present(self, picture: pygame.Surface) -> None:
        """Scale the picture to the window (fill: cover and crop; letterbox: fit with black bars)
        and flip."""
        if self.screen is None:
            raise RuntimeError("Display.open() first")
        screen = self.screen
        sw, sh = screen.get_size()
        pw, ph = picture.get_size()
        if (sw, sh) == (pw, ph):
            screen.blit(picture, (0, 0))
        else:
            scale = max(sw / pw, sh / ph) if self.fit == "fill" else min(sw / pw, sh / ph)
            tw, th = max(1, round(pw * scale)), max(1, round(ph * scale))
            if self.fit == "letterbox":
                screen.fill((0, 0, 0))
            scaled = pygame.transform.smoothscale(picture, (tw, th))
            screen.blit(scaled, ((sw - tw) // 2, (sh - th) // 2))
        pygame.display.flip()

    def events(self) -> list[pygame.event.Event]:
        return pygame.event.get()

    def close(self) -> None:
        if self.screen is not None:
            self.screen = None
            pygame.display.quit()
