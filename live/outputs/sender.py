"""Video out without stalling the show: a latest-frame slot and one thread per sender.

The display loop hands each composed frame to `SenderThread.submit`, which only stores a
reference (a newer frame replaces an unsent one). The sender's own thread converts and sends. A
sender that fails (receiver gone, driver hiccup) is reported once in a while and retried on the
next frame; the window never waits for it.

Frame contract (`VideoFrame`): HxWx4 uint8, C-contiguous, rows top to bottom, in BGRA or RGBA byte
order (`order` says which; the fourth byte may be unused padding, senders treat the picture as
opaque). That is a pygame surface's memory as is (`surface_frame`, ~0.1 ms at 1280x720, where
`pygame.image.tobytes` costs ~6 ms) and what glReadPixels gives with GL_BGRA or GL_RGBA.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from live.session.slots import LatestSlot

log = logging.getLogger(__name__)

Order = Literal["BGRA", "RGBA"]
SENDER_NAME = "beatcanvas"


@dataclass(frozen=True)
class VideoFrame:
    pixels: np.ndarray  # (H, W, 4) uint8, C-contiguous, top row first
    order: Order = "BGRA"

    def __post_init__(self) -> None:
        p = self.pixels
        if p.dtype != np.uint8 or p.ndim != 3 or p.shape[2] != 4 or not p.flags.c_contiguous:
            raise ValueError(f"a VideoFrame is (H, W, 4) contiguous uint8, not {p.dtype} {p.shape}")

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]

    @classmethod
    def from_rgb(cls, rgb: np.ndarray) -> "VideoFrame":
        """An (H, W, 3) RGB image (the renderers' Frame.image), made opaque RGBA."""
        h, w = rgb.shape[:2]
        out = np.empty((h, w, 4), np.uint8)
        out[..., :3] = rgb
        out[..., 3] = 255
        return cls(out, "RGBA")

    def opaque(self) -> np.ndarray:
        """The pixels with the fourth byte set to 255 (a copy), for receivers that honour alpha."""
        out = self.pixels.copy()
        out[..., 3] = 255
        return out


def surface_frame(surface: object) -> VideoFrame:
    """Copy a 32-bit pygame Surface's memory into a VideoFrame (the fast path), or convert through
    `pygame.image.tobytes` for any other layout."""
    import pygame

    assert isinstance(surface, pygame.Surface)
    w, h = surface.get_size()
    masks = surface.get_masks()[:3]
    little = sys.byteorder == "little"
    order: Order | None = None
    if surface.get_bytesize() == 4 and masks == (0xFF0000, 0xFF00, 0xFF):
        order = "BGRA" if little else None
    elif surface.get_bytesize() == 4 and masks == (0xFF, 0xFF00, 0xFF0000):
        order = "RGBA" if little else None
    if order is None:
        data = np.frombuffer(pygame.image.tobytes(surface, "RGBA"), np.uint8).reshape(h, w, 4)
        return VideoFrame(data.copy(), "RGBA")
    raw = np.frombuffer(surface.get_buffer(), np.uint8).reshape(h, surface.get_pitch())
    # Always a copy: the compositor draws the next frame into this surface while we send.
    return VideoFrame(raw[:, : w * 4].copy().reshape(h, w, 4), order)


class VideoBackend(Protocol):
    """One video-sharing technology (NDI, Spout, Syphon)."""

    name: str

    def send(self, frame: VideoFrame) -> None: ...

    def close(self) -> None: ...


class SenderThread:
    """Runs `backend.send` on its own thread with the newest submitted frame."""

    def __init__(self, backend: VideoBackend, on_error: Callable[[str], None] | None = None,
                 report_every_s: float = 5.0) -> None:
        self.backend = backend
        self.on_error = on_error
        self.report_every_s = report_every_s
        self.submitted = 0
        self.sent = 0
        self.errors = 0
        self._slot: LatestSlot[VideoFrame] = LatestSlot()
        self._last_report = -1e9
        self._thread = threading.Thread(target=self._run, name=f"beatcanvas-{backend.name.lower()}", daemon=True)
        self._thread.start()

    def submit(self, frame: VideoFrame) -> None:
        """Never blocks: an unsent older frame is dropped."""
        self.submitted += 1
        self._slot.put(frame)

    @property
    def dropped(self) -> int:
        return max(0, self.submitted - self.sent - self.errors)

    def _run(self) -> None:
        seen = 0
        while not self._slot.closed:
            got = self._slot.wait_newer(seen, timeout=0.5)
            if got is None:
                continue
            seen, frame = got
            try:
                self.backend.send(frame)
                self.sent += 1
            except Exception as e:  # noqa: BLE001 - a receiver or driver problem must not end the show
                self.errors += 1
                now = time.monotonic()
                if now - self._last_report >= self.report_every_s:
                    self._last_report = now
                    message = f"{self.backend.name} out: {e}"
                    log.warning(message)
                    if self.on_error is not None:
                        self.on_error(message)

    def close(self, timeout: float = 1.0) -> None:
        self._slot.close()
        self._thread.join(timeout)
        try:
            self.backend.close()
        except Exception as e:  # noqa: BLE001 - shutting down
            log.info("closing %s: %s", self.backend.name, e)
