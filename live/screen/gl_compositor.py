"""The compositor on the GPU: the same picture as `live.screen.compositor.Compositor`, drawn by shaders.

Same methods (`configure`, `prepare`, `push`, `compose`, `to_array`) and the same effect amounts
(`live.screen.compositor.effects`), so the session and export use either. Differences a user can see: frames
of any size are cover-cropped by the sampler (no CPU resize per frame: `prepare` only makes the
array contiguous, so it costs nothing on the render worker), the feedback warp samples the full
resolution instead of a half-size copy, and a soft shoulder replaces clipping in the highlights.

The GL context is made lazily on the thread that first pushes or composes (the display loop), or
passed in to share one with the shader renderer (export). `compose` reads the picture back once, as
a pygame Surface, for the HUD, the window, export and the flash limiter's measurement.
"""

from __future__ import annotations

import math
from importlib import resources
from typing import Any

import numpy as np
import pygame

from engine.render.shader.context import gpu_gl, make_context
from engine.render.shader.renderer import glsl
from engine.types import Features, Frame
from live.screen.compositor import WARP_ZOOM, Knobs, Reactivity, _clamp, effects
from live.screen.flash import GUIDELINE_PER_S, FlashLimiter, fit_exposure, mean_luminance

def _frag(name: str) -> str:
    return resources.files("live.screen").joinpath("glsl", name).read_text(encoding="utf-8")


def cover_scale(src: tuple[int, int], dst: tuple[int, int]) -> tuple[float, float]:
    """UV scale that crops a `src`-sized picture to cover `dst`'s aspect, centred."""
    sa, da = src[0] / src[1], dst[0] / dst[1]
    return (da / sa, 1.0) if sa > da else (1.0, sa / da)


class GLCompositor(Knobs):
    """Crossfade + beat effects on the GPU at a fixed output size. See the module docstring."""

    def __init__(
        self, width: int, height: int, reactivity: Any = None, crossfade_ms: float = 400.0,
        max_flashes_per_s: float = GUIDELINE_PER_S, context: Any = None,
    ) -> None:
        self.width, self.height = int(width), int(height)
        self.reactivity = reactivity if reactivity is not None else Reactivity()
        self.crossfade_ms = float(crossfade_ms)
        self.flash_limiter = FlashLimiter(max_flashes_per_s)
        self.frames_pushed = 0
        self._ctx = context
        self._gl: dict[str, Any] | None = None
        self._pushed_at: float | None = None
        self._has_output = False
        self._out_bytes = b""
        self._cut: tuple[float, float] | None = None
        self._cut_from: pygame.Surface | None = None

    @property
    def _objects(self) -> dict[str, Any]:
        """The GL objects: programs, quad, textures, framebuffers (made on first use)."""
        if self._gl is None:
            self._gl = self._setup()
        return self._gl

    def release(self) -> None:
        """Free the GL objects (an export makes a compositor per chunk in one context)."""
        gl, self._gl = self._gl, None
        if gl is None:
            return
        for key in ("compose", "expose", "compose_prog", "expose_prog", "quad"):
            gl[key].release()
        for obj in (*gl["fbos"], *gl["outs"], *{id(t): t for t in (gl["prev"], gl["cur"])}.values()):
            obj.release()

    def begin_cut(self, now: float, seconds: float) -> None:
        """A soft cut to another preset: the picture on screen now fades out over `seconds` (blended
        on the read-back picture, as the numpy compositor does)."""
        if seconds <= 0 or not self._has_output:
            self._cut = None
            return
        self._cut_from = pygame.image.frombuffer(bytes(self._out_bytes), (self.width, self.height), "RGB")
        self._cut = (now, float(seconds))

    def cut_progress(self, now: float) -> float | None:
        if self._cut is None:
            return None
        start, seconds = self._cut
        return min(1.0, max(0.0, (now - start) / seconds))

    # -- GL objects --------------------------------------------------------------------------------
    def _setup(self) -> dict[str, Any]:
        ctx = self._ctx = self._ctx or make_context()
        quad = ctx.buffer(np.array([-1, -1, 1, -1, -1, 1, 1, 1], np.float32).tobytes())
        compose = ctx.program(vertex_shader=glsl("quad.vert"), fragment_shader=_frag("compose.frag"))
        expose = ctx.program(vertex_shader=glsl("quad.vert"), fragment_shader=_frag("expose.frag"))
        size = (self.width, self.height)
        outs = [ctx.texture(size, 4) for _ in range(3)]  # composed, exposed, feedback (last output)
        for tex in outs:
            tex.repeat_x = tex.repeat_y = False
        black = ctx.texture((1, 1), 3, b"\0\0\0")
        return {
            "ctx": ctx, "compose": ctx.vertex_array(compose, [(quad, "2f", "in_pos")]), "compose_prog": compose,
            "expose": ctx.vertex_array(expose, [(quad, "2f", "in_pos")]), "expose_prog": expose,
            "outs": outs, "fbos": [ctx.framebuffer([t]) for t in outs], "prev": black, "cur": black,
            "blend": None, "quad": quad,
        }

    def _texture(self, image: np.ndarray) -> Any:
        h, w = image.shape[:2]
        tex = self._objects["ctx"].texture((w, h), 3, np.ascontiguousarray(image[..., :3]).tobytes(), alignment=1)
        tex.repeat_x = tex.repeat_y = False
        return tex

    # -- frames -------------------------------------------------------------------------------------
    def _fade(self, now: float) -> float:
        if self._pushed_at is None or self.crossfade_ms <= 0:
            return 1.0
        return _clamp((now - self._pushed_at) * 1000.0 / self.crossfade_ms, 0.0, 1.0)

    def prepare(self, frame: Frame) -> np.ndarray:
        """The render worker's half of `push`: nothing to scale here (the GPU samples any size)."""
        return np.ascontiguousarray(frame.image[..., :3], dtype=np.uint8)

    def push(self, frame: Frame | np.ndarray | pygame.Surface, now: float) -> None:
        """A new rendered frame: fade to it from whatever shows now (the first one shows at once)."""
        gl = self._objects
        if isinstance(frame, pygame.Surface):
            w, h = frame.get_size()
            image = np.frombuffer(pygame.image.tobytes(frame, "RGB"), np.uint8).reshape(h, w, 3)
        else:
            image = frame.image if isinstance(frame, Frame) else frame
        new = self._texture(image)
        fade = self._fade(now)
        old_prev = gl["prev"]
        if self.frames_pushed == 0:
            gl["prev"] = new
        elif fade < 1.0:  # bake the half-done fade into prev: no pop mid-fade
            gl["prev"] = self._bake(fade)
        else:
            gl["prev"] = gl["cur"]
        if old_prev is not gl["prev"] and old_prev is not gl["cur"]:
            old_prev.release()
        gl["cur"] = new
        self._pushed_at = now
        self.frames_pushed += 1

    def _bake(self, fade: float) -> Any:
        """prev·(1 - fade) + cur·fade as a new output-sized texture (no effects)."""
        gl = self._objects
        tex = gl["ctx"].texture((self.width, self.height), 4)
        fbo = gl["ctx"].framebuffer([tex])
        self._draw(fbo, fade, effects(Features(beat_phase=0.9), _STILL, False))
        fbo.release()
        return tex

    def _draw(self, fbo: Any, fade: float, fx: Any) -> None:
        gl = self._objects
        prog = gl["compose_prog"]
        size = (self.width, self.height)
        gl["prev"].use(0)
        gl["cur"].use(1)
        gl["outs"][2].use(2)
        angle = math.radians(fx.warp_angle)
        values = {
            "u_prev": 0, "u_cur": 1, "u_feedback": 2, "u_fade": fade, "u_zoom": fx.zoom,
            "u_prev_scale": cover_scale(gl["prev"].size, size), "u_cur_scale": cover_scale(gl["cur"].size, size),
            "u_warp_alpha": fx.warp_alpha, "u_warp_cos": math.cos(angle), "u_warp_sin": math.sin(angle),
            "u_warp_zoom": WARP_ZOOM, "u_gain_mul": fx.gain,
            "u_has_feedback": 1.0 if self._has_output else 0.0, "u_tint": fx.tint,
            "u_aspect": (self.width / self.height, 1.0),
        }
        for key, value in values.items():
            if key in prog:
                prog[key].value = value
        fbo.use()
        import moderngl

        gl["compose"].render(mode=moderngl.TRIANGLE_STRIP)

    # -- effects ------------------------------------------------------------------------------------
    def compose(self, features: Features | None, now: float) -> pygame.Surface:
        """The picture for this display frame, read back once (twice when the flash limiter acts).
        Reused by the next call: copy it if you keep it."""
        gl = self._objects
        f = features if features is not None else Features()
        self._draw(gl["fbos"][0], self._fade(now), effects(f, self.reactivity, self._has_output))
        lum = self._read(0)
        gain = self.flash_limiter.gain(lum, now)
        src = 0
        if gain != 1.0:
            g = fit_exposure(self._frame(), lum * gain)
            prog = gl["expose_prog"]
            prog["u_src"].value = 0
            prog["u_gain"].value = g
            gl["outs"][0].use(0)
            gl["fbos"][1].use()
            import moderngl

            gl["expose"].render(mode=moderngl.TRIANGLE_STRIP)
            src = 1
            lum = self._read(1)
        self.flash_limiter.record(lum, now)
        gl["ctx"].copy_framebuffer(gl["fbos"][2], gl["fbos"][src])  # the next frame's feedback
        self._has_output = True
        picture = pygame.image.frombuffer(self._out_bytes, (self.width, self.height), "RGB")
        progress = self.cut_progress(now)
        if progress is not None and self._cut_from is not None:
            if progress >= 1.0:
                self._cut = None
            else:
                picture = picture.copy()
                self._cut_from.set_alpha(int(round((1.0 - progress) * 255)))
                picture.blit(self._cut_from, (0, 0))
        return picture

    def _read(self, index: int) -> float:
        """Read output `index` back (what export and the window show); its mean luminance."""
        self._out_bytes = self._objects["fbos"][index].read(components=3, alignment=1)
        return mean_luminance(self._frame())

    def _frame(self) -> np.ndarray:
        """The last read-back output as HxWx3 uint8 (a view, no copy)."""
        return np.frombuffer(self._out_bytes, np.uint8).reshape(self.height, self.width, 3)

    def to_array(self, surface: pygame.Surface | None = None) -> np.ndarray:
        """The last composed picture (or `surface`) as HxWx3 uint8."""
        if surface is not None:
            w, h = surface.get_size()
            return np.frombuffer(pygame.image.tobytes(surface, "RGB"), np.uint8).reshape(h, w, 3).copy()
        return np.frombuffer(self._out_bytes, np.uint8).reshape(self.height, self.width, 3).copy()


_STILL = Reactivity(beat_zoom=0.0, band_brightness=0.0, band_hue=0.0, warp=0.0)  # for baking a crossfade


def make_compositor(
    width: int, height: int, reactivity: Any = None, crossfade_ms: float = 400.0,
    max_flashes_per_s: float = GUIDELINE_PER_S,
) -> Any:
    """The live display's compositor: on the GPU when OpenGL runs on one; the numpy compositor on a
    software rasteriser (llvmpipe composes 1280x720 in ~65 ms, the numpy one in ~16 ms)."""
    from live.screen.compositor import Compositor

    cls = GLCompositor if gpu_gl() else Compositor
    return cls(width, height, reactivity, crossfade_ms, max_flashes_per_s)
