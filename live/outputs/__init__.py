"""Outputs beside the window: NDI / Spout / Syphon video senders and the OSC feature broadcast."""
