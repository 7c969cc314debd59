"""Renderers: conditioning + features → frames. SDXL (few-step), procedural (no weights)."""

from engine.render.base import Renderer

__all__ = ["Renderer"]
