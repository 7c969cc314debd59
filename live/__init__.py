"""beatcanvas runtime: sources, the session's loops, the compositor, display, export, presets, CLI."""

import os as _os

# pygame prints a banner on import; nothing beatcanvas prints should be about pygame.
_os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
