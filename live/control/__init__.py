"""Control in: OSC, MIDI and Ableton Link reach the show through `ControlHub` (see hub.py)."""

DEFAULT_HOST = "127.0.0.1"  # servers listen on this machine only unless --osc-host says otherwise
