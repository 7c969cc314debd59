"""beatcanvas runtime: sources, the session's loops, the compositor, display, export, presets, CLI."""

import os as _os

# pygame prints a banner on import; nothing beatcanvas prints should be about pygame.
_os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
# SDL makes its window's GL renderer (used for vsync) with EGL, as the shader renderer does. With SDL's
# default, GLX, an X11 window created after the shader renderer's EGL context has loaded libGL dies
# with "BadAccess (X_GLXMakeCurrent)" — an X error that ends the process (seen under Xvfb + Mesa).
_os.environ.setdefault("SDL_VIDEO_X11_FORCE_EGL", "1")
