"""The shader renderer: the weights-free look drawn by the GPU at the output resolution.

MilkDrop's structure in two passes per frame: `scene.frag` warps the previous frame (zoom,
rotation, a flow field) into a float16 feedback buffer and draws this frame's motifs over it —
flow-field ink, a kaleidoscope, a tunnel, waveform and spectrum ribbons, a star field — with
one-pixel anti-aliasing, so lines stay crisp at 720p and at 4K; `present.frag` tone-maps into an
8-bit image. The `Director` decides what shows and how it moves; this file only feeds the GPU.

The GL context is made on first use, on the thread that renders (GL contexts belong to a
thread): the live render worker, or export's main thread, where `context` may be shared with the
GPU compositor so the picture never leaves the GPU until export reads the final frame.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import numpy as np

from engine.render.shader.context import describe, make_context
from engine.render.shader.director import Director, Look, Scene
from engine.types import Conditioning, Features, Frame

AUDIO_POINTS = 64
_UNIFORM_MOTIFS = {"warp": "u_warp", "ink": "u_ink", "kaleidoscope": "u_kaleido", "tunnel": "u_tunnel",
                   "ribbons": "u_ribbons", "particles": "u_particles"}


def glsl(name: str) -> str:
    """A shader's source, shipped as package data next to this file."""
    return resources.files("engine.render.shader").joinpath("glsl", name).read_text(encoding="utf-8")


def audio_rows(features: Features) -> np.ndarray:
    """2×64 float32: the waveform normalised to ±1 (lightly smoothed), and the spectrum bands
    resampled to 64 points (1.0 = typical for the track). Empty inputs give flat rows."""
    rows = np.zeros((2, AUDIO_POINTS), np.float32)
    raw = np.nan_to_num(np.asarray(features.wave, np.float32))
    if raw.size >= 2:
        smooth = np.convolve(np.pad(raw, 1, mode="edge"), [0.25, 0.5, 0.25], mode="valid")
        x = np.linspace(0, len(smooth) - 1, AUDIO_POINTS)
        wave = np.interp(x, np.arange(len(smooth)), smooth)
        rows[0] = wave / max(float(np.abs(wave).max()), 0.02) * min(1.0, 6.0 * float(features.rms) + 0.15)
    spec = np.nan_to_num(np.asarray(features.spectrum, np.float32), posinf=4.0)
    if spec.size >= 2:
        x = np.linspace(0, len(spec) - 1, AUDIO_POINTS)
        rows[1] = np.interp(x, np.arange(len(spec)), np.clip(spec, 0.0, 4.0))
    else:
        rows[1] = float(np.clip(features.mid, 0.0, 4.0))
    return rows


class ShaderRenderer:
    """`engine.render.base.Renderer` on OpenGL 3.3. See the module docstring."""

    name = "shader"

    def __init__(self, width: int = 1280, height: int = 720, seed: int = 0, look: Look | None = None,
                 context: Any = None) -> None:
        self.width, self.height = int(width), int(height)
        self.render_size = (self.width, self.height)  # what the GPU draws; smaller in a software-GL window
        self.director = Director(look, seed)
        self.seed = int(seed)
        self._ctx = context
        self._gl: dict[str, Any] | None = None
        self._fresh = True
        self.device = ""

    # -- the Renderer contract ----------------------------------------------------------------------
    def reset(self, seed: int) -> None:
        """Forget the animation and the feedback buffer (cleared on the next frame); reseed."""
        self.seed = int(seed)
        self.director.reset(seed)
        self._fresh = True

    def apply_preset(self, preset: Any) -> None:
        """Hot reload: the preset's `[procedural]` section applies from the next frame."""
        self.director.set_look(Look.from_settings(preset.procedural))

    def render(self, conditioning: Conditioning | None, features: Features, t: float) -> Frame:
        self.render_texture(conditioning, features, t)
        return Frame(image=self.read(), t=t, seed=self.seed, renderer=self.name)

    # -- GPU side -------------------------------------------------------------------------------------
    @property
    def context(self) -> Any:
        """The GL context (made here on first use, on the calling thread)."""
        if self._ctx is None:
            self._ctx = make_context()
        return self._ctx

    @property
    def _objects(self) -> dict[str, Any]:
        """The GL context's program, textures and framebuffer (made on first use)."""
        if self._gl is None:
            self._gl = self._setup()
        return self._gl

    def _setup(self) -> dict[str, Any]:
        ctx = self.context
        self.device = describe(ctx)
        quad = ctx.buffer(np.array([-1, -1, 1, -1, -1, 1, 1, 1], np.float32).tobytes())
        scene = ctx.program(vertex_shader=glsl("quad.vert"), fragment_shader=glsl("scene.frag"))
        present = ctx.program(vertex_shader=glsl("quad.vert"), fragment_shader=glsl("present.frag"))
        audio = ctx.texture((AUDIO_POINTS, 2), 1, dtype="f4")
        audio.repeat_x = audio.repeat_y = False
        return {
            "scene": scene, "present": present,
            "scene_vao": ctx.vertex_array(scene, [(quad, "2f", "in_pos")]),
            "present_vao": ctx.vertex_array(present, [(quad, "2f", "in_pos")]),
            "audio": audio, "quad": quad, **self._targets(ctx, self.render_size),
        }

    @staticmethod
    def _targets(ctx: Any, size: tuple[int, int]) -> dict[str, Any]:
        """The size-dependent objects: two float16 feedback buffers and the 8-bit output."""
        feedback = [ctx.texture(size, 4, dtype="f2") for _ in range(2)]
        for tex in feedback:
            tex.repeat_x = tex.repeat_y = False
        out = ctx.texture(size, 4)
        return {"feedback": feedback, "fbos": [ctx.framebuffer([tex]) for tex in feedback], "out": out,
                "out_fbo": ctx.framebuffer([out]), "size": size}

    def resize(self, width: int, height: int) -> None:
        """Draw at width x height from the next frame (the output size stays): the trails carry over,
        warped once from the old feedback buffer into the new one."""
        self.render_size = (int(width), int(height))

    def _retarget(self, gl: dict[str, Any]) -> Any:
        """New targets at `render_size`; returns the old feedback texture to draw the next frame from."""
        old = gl["feedback"][0]
        for key in ("fbos", "out_fbo", "out"):
            for obj in gl[key] if isinstance(gl[key], list) else [gl[key]]:
                obj.release()
        gl["feedback"][1].release()
        gl.update(self._targets(self.context, self.render_size))
        return old

    def render_texture(self, conditioning: Conditioning | None, features: Features, t: float) -> Any:
        """Draw the frame for `t`; returns the 8-bit RGBA texture (row 0 = the top of the picture),
        valid until the next call."""
        gl = self._objects
        labels = conditioning.labels if conditioning is not None else None
        scene = self.director.step(features, labels, t)
        gl["audio"].write(audio_rows(features).tobytes())
        self._set_uniforms(gl["scene"], scene)
        old = self._retarget(gl) if gl["size"] != self.render_size else None
        src, dst = (old if old is not None else gl["feedback"][0]), gl["fbos"][1]
        src.use(0)
        gl["audio"].use(1)
        dst.use()
        gl["scene_vao"].render(mode=self._strip())
        if old is not None:
            old.release()
        gl["feedback"].reverse()
        gl["fbos"].reverse()
        self._fresh = False
        gl["feedback"][0].use(0)
        gl["present"]["u_src"] = 0
        gl["present"]["u_exposure"] = 1.0
        gl["out_fbo"].use()
        gl["present_vao"].render(mode=self._strip())
        return gl["out"]

    def _strip(self) -> int:
        import moderngl

        return moderngl.TRIANGLE_STRIP

    def _set_uniforms(self, prog: Any, s: Scene) -> None:
        width, height = self.render_size
        height_scale = height / 720.0  # line widths are specified at 720 lines
        values = {
            "u_prev": 0, "u_audio": 1, "u_res": (float(width), float(height)),
            "u_time": s.time, "u_beat": s.beat, "u_bass": s.bass, "u_onset": s.onset, "u_high": s.high,
            "u_seed": float(self.seed % 997) * 0.731, "u_zoom": s.zoom, "u_rot": s.rotate, "u_decay": s.decay,
            "u_flow": s.flow, "u_sym": float(s.symmetry), "u_line": max(1.0, s.line_width * height_scale),
            "u_sat": s.saturation, "u_fresh": 1.0 if self._fresh else 0.0,
        }
        for motif, uniform in _UNIFORM_MOTIFS.items():
            values[uniform] = s.weights.get(motif, 0.0)
        for key, value in values.items():
            if key in prog:  # the GLSL compiler drops uniforms a shader does not use
                prog[key].value = value
        prog["u_pal"].write(np.ascontiguousarray(s.palette, np.float32).tobytes())

    def read(self, texture: Any = None) -> np.ndarray:
        """The last frame as HxWx3 uint8 (one read-back; the driver drops the alpha)."""
        gl = self._objects
        data = gl["out_fbo"].read(components=3, alignment=1)
        width, height = gl["size"]
        return np.frombuffer(data, np.uint8).reshape(height, width, 3)
