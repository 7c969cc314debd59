"""Spout out (SpoutGL, Windows): the composed picture as a Spout sender named "beatcanvas".

SpoutGL's `sendImage` takes CPU pixels and shares them as a DirectX texture, so no OpenGL context
is needed on the sender thread. Written against SpoutGL's documented API and tested with a fake
module: no Windows machine has run it yet.
"""

from __future__ import annotations

import sys
from typing import Any

from engine.errors import BeatcanvasError
from live.outputs.sender import SENDER_NAME, VideoFrame

INSTALL_HINT = "pip install 'beatcanvas[spout]' (SpoutGL)"
GL_RGBA = 0x1908  # OpenGL format enums, so PyOpenGL is not needed just for two numbers
GL_BGRA_EXT = 0x80E1


class SpoutBackend:
    name = "Spout"

    def __init__(self, sender_name: str = SENDER_NAME, platform: str = sys.platform, module: Any = None) -> None:
        if platform != "win32":
            raise BeatcanvasError("Spout is Windows-only: use --syphon on macOS or --ndi anywhere")
        if module is None:
            try:
                import SpoutGL

                module = SpoutGL
            except ImportError:
                raise BeatcanvasError(f"Spout out needs SpoutGL: {INSTALL_HINT}") from None
        self.sender_name = sender_name
        self._spout = module
        self._sender: Any = None

    def send(self, frame: VideoFrame) -> None:
        if self._sender is None:
            self._sender = self._spout.SpoutSender()
            self._sender.setSenderName(self.sender_name)
        w, h = frame.size
        fmt = GL_BGRA_EXT if frame.order == "BGRA" else GL_RGBA
        # Receivers honour alpha and the surface's fourth byte is padding: make it opaque.
        if not self._sender.sendImage(frame.opaque(), w, h, fmt, False, 0):
            raise RuntimeError("Spout did not take the frame (is a DirectX 11 capable GPU driver installed?)")
        self._sender.setFrameSync(self.sender_name)

    def close(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.releaseSender()
