"""beatcanvas runtime: sources, the session's loops, the compositor, display, export, presets, CLI."""
