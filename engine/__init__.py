"""beatcanvas engine: the models and the math. No threads, no sound or screen devices.

The engine never imports `live`.
"""

from engine.errors import BeatcanvasError
from engine.types import SAMPLE_RATE, Conditioning, Features, Frame, Window

__all__ = ["BeatcanvasError", "Conditioning", "Features", "Frame", "SAMPLE_RATE", "Window"]
