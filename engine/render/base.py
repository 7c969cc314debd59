"""The renderer contract shared by the SDXL and procedural renderers."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from engine.types import Conditioning, Features, Frame


@runtime_checkable
class Renderer(Protocol):
    """Turns the newest conditioning and features into a frame.

    Renderers are stateful (latent feedback, animation phase) and not thread-safe: one render worker
    owns one renderer. `render` may be slow (an SDXL step on a CPU takes seconds); callers never
    block the display on it.
    """

    name: str  # e.g. "sdxl-turbo/inductor" or "procedural"
    width: int
    height: int

    def render(self, conditioning: Conditioning | None, features: Features, t: float) -> Frame:
        """Render the frame for time `t` (s). `conditioning` is None before the first window is
        understood, or always for renderers that need no text conditioning."""
        ...

    def reset(self, seed: int) -> None:
        """Forget temporal state (feedback latents, animation phase) and reseed."""
        ...
