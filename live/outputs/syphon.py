"""Syphon out (syphon-python, macOS): the composed picture as a Syphon Metal server "beatcanvas".

Pixels are copied into a Metal texture of the frame's own byte order (BGRA8 or RGBA8, so nothing
is swizzled) and published. Written against syphon-python's documented API and tested with a fake
module: no Mac has run it yet.
"""

from __future__ import annotations

import sys
from typing import Any

from engine.errors import BeatcanvasError
from live.outputs.sender import SENDER_NAME, VideoFrame

INSTALL_HINT = "pip install 'beatcanvas[syphon]' (syphon-python)"
MTL_RGBA8 = 70  # MTLPixelFormatRGBA8Unorm
MTL_BGRA8 = 80  # MTLPixelFormatBGRA8Unorm


def load_syphon() -> Any:
    try:
        import syphon
        import syphon.utils.raw
    except ImportError:
        raise BeatcanvasError(f"Syphon out needs syphon-python: {INSTALL_HINT}") from None
    return syphon


class SyphonBackend:
    name = "Syphon"

    def __init__(self, sender_name: str = SENDER_NAME, platform: str = sys.platform, module: Any = None) -> None:
        if platform != "darwin":
            raise BeatcanvasError("Syphon is macOS-only: use --spout on Windows or --ndi anywhere")
        self._syphon = module or load_syphon()
        self.sender_name = sender_name
        self._server: Any = None
        self._texture: Any = None
        self._format: tuple[int, int, str] | None = None

    def send(self, frame: VideoFrame) -> None:
        raw = self._syphon.utils.raw
        if self._server is None:
            self._server = self._syphon.SyphonMetalServer(self.sender_name)
        w, h = frame.size
        if self._format != (w, h, frame.order):
            fmt = MTL_BGRA8 if frame.order == "BGRA" else MTL_RGBA8
            self._texture = raw.create_mtl_texture(self._server.device, w, h, fmt)
            self._format = (w, h, frame.order)
        raw.copy_bytes_to_mtl_texture(frame.opaque().tobytes(), self._texture)
        self._server.publish_frame_texture(self._texture)

    def close(self) -> None:
        server, self._server, self._texture, self._format = self._server, None, None, None
        if server is not None:
            server.stop()
