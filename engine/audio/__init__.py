"""Audio in: decoding, resampling, windows (io) and fast per-block musical features (features)."""

from engine.audio.features import FeatureTracker
from engine.audio.io import iter_audio_blocks, load_audio, probe, window_at

__all__ = ["FeatureTracker", "iter_audio_blocks", "load_audio", "probe", "window_at"]
