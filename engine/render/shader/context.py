"""OpenGL contexts for the shader renderer and the GPU compositor: one place that makes them.

A context is made without a window: EGL first on Linux (works headless, with or without an X
server, on any GPU driver or on Mesa's llvmpipe software rasteriser), then the platform's default
(GLX with a display, CGL on macOS, WGL on Windows). OpenGL 3.3 core is all we ask for.

`gl_unavailable()` answers "can this machine make one?" once per process (it makes a context and
releases it) and says why not in one line, so `--renderer auto` can fall back to the numpy renderer
with a reason a user can act on.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from typing import Any

from engine.errors import BeatcanvasError

log = logging.getLogger(__name__)

REQUIRE = 330  # OpenGL 3.3 core
INSTALL_HINT = (
    "install a GPU driver, or Mesa for software rendering "
    "(Debian/Ubuntu: apt-get install libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri)"
)


class GLUnavailable(BeatcanvasError):
    """No OpenGL 3.3 context can be made here; the message says why and what to install."""


def _attempts() -> list[dict[str, Any]]:
    # Versioned sonames: the unversioned libEGL.so / libGL.so exist only with the -dev packages.
    egl = {"backend": "egl", "libegl": "libEGL.so.1", "libgl": "libGL.so.1"}
    if sys.platform.startswith("linux"):
        return [egl, {}] if os.environ.get("DISPLAY") else [egl]
    return [{}]


def make_context() -> Any:
    """A standalone moderngl context (OpenGL ≥ 3.3), current on the calling thread.

    GL contexts belong to the thread that made them: the renderer and the compositor make theirs on
    the thread that draws with them, lazily, never in a constructor."""
    try:
        import moderngl
    except ImportError as e:
        raise GLUnavailable(f"moderngl is not installed ({e}): pip install moderngl") from None
    errors = []
    for settings in _attempts():
        try:
            ctx = moderngl.create_context(standalone=True, require=REQUIRE, **settings)
        except Exception as e:  # noqa: BLE001 - each backend fails in its own words; try the next
            errors.append(f"{settings.get('backend', 'default')}: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}")
            continue
        log.debug("OpenGL context: %s, %s", ctx.info.get("GL_RENDERER"), ctx.info.get("GL_VERSION"))
        return ctx
    raise GLUnavailable(f"no OpenGL 3.3 context ({'; '.join(errors)}): {INSTALL_HINT}")


def describe(ctx: Any) -> str:
    """'llvmpipe (LLVM 15.0.6, 256 bits)' — the device, for the renderer's one line."""
    return str(ctx.info.get("GL_RENDERER", "unknown GL device"))


def is_software(device: str) -> bool:
    """True for a software rasteriser (Mesa's llvmpipe and friends) by its GL_RENDERER name."""
    name = device.lower()
    return any(k in name for k in ("llvmpipe", "softpipe", "swiftshader", "software"))


@functools.lru_cache(maxsize=1)
def probe() -> tuple[str | None, str]:
    """(None, device name) when a context can be made here, else (why not, ""). Cached."""
    if os.environ.get("BEATCANVAS_NO_GL"):
        return "BEATCANVAS_NO_GL is set", ""
    try:
        ctx = make_context()
    except GLUnavailable as e:
        return str(e), ""
    try:
        return None, describe(ctx)
    finally:
        ctx.release()


def gl_unavailable() -> str | None:
    """Why no OpenGL 3.3 context can be made on this machine, or None when one can."""
    return probe()[0]


def gpu_gl() -> bool:
    """True when contexts here run on a GPU, not on a software rasteriser."""
    why, device = probe()
    return why is None and not is_software(device)
