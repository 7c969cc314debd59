"""NDI out (cyndilib): the composed picture as an NDI source named "beatcanvas".

The frame goes out in its own byte order (BGRX or RGBX: NDI reads the fourth byte as padding), so
nothing is converted per frame. A change of size or order re-creates the sender, as NDI fixes the
format when a sender opens.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import Any

from engine.errors import BeatcanvasError
from live.outputs.sender import SENDER_NAME, VideoFrame

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'beatcanvas[ndi]' (cyndilib; it carries the NDI runtime)"


def load_cyndilib() -> Any:
    """The cyndilib modules used here, or a one-line BeatcanvasError saying what to install."""
    try:
        from cyndilib import sender, video_frame
        from cyndilib.wrapper import ndi_structs
    except ImportError as e:
        if "cyndilib" in str(e):
            raise BeatcanvasError(f"NDI out needs cyndilib: {INSTALL_HINT}") from None
        raise BeatcanvasError(f"NDI out: the NDI runtime did not load ({e}); reinstall cyndilib or the NDI Tools") from None
    except OSError as e:
        raise BeatcanvasError(f"NDI out: the NDI runtime did not load ({e}); reinstall cyndilib or the NDI Tools") from None
    return sender, video_frame, ndi_structs


class NdiBackend:
    name = "NDI"

    def __init__(self, sender_name: str = SENDER_NAME, fps: float = 60.0, lib: Any = None) -> None:
        self.sender_name = sender_name
        self.fps = Fraction(fps).limit_denominator(1001)
        self._sender_mod, self._frame_mod, self._structs = lib or load_cyndilib()
        self._sender: Any = None
        self._format: tuple[int, int, str] | None = None

    def _open(self, width: int, height: int, order: str) -> None:
        self.close()
        fourcc = self._structs.FourCC.BGRX if order == "BGRA" else self._structs.FourCC.RGBX
        frame = self._frame_mod.VideoSendFrame()
        frame.set_resolution(width, height)
        frame.set_fourcc(fourcc)
        frame.set_frame_rate(self.fps)
        # clock_video off: the display loop paces us; NDI's own clock would block this thread.
        sender = self._sender_mod.Sender(self.sender_name, clock_video=False)
        sender.set_video_frame(frame)
        sender.open()
        self._sender, self._format = sender, (width, height, order)
        log.info("NDI source %r: %dx%d %s", sender.name, width, height, order)

    def send(self, frame: VideoFrame) -> None:
        w, h = frame.size
        if self._format != (w, h, frame.order):
            self._open(w, h, frame.order)
        if not self._sender.write_video(frame.pixels.reshape(-1)):
            raise RuntimeError("the NDI sender refused the frame")

    @property
    def connections(self) -> int:
        return int(self._sender.get_num_connections(0.0)) if self._sender is not None else 0

    def close(self) -> None:
        sender, self._sender, self._format = self._sender, None, None
        if sender is not None:
            sender.close()
