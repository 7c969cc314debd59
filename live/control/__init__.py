"""Control in: OSC, MIDI and Ableton Link reach the show through `ControlHub` (see hub.py)."""
