"""The GLSL shader renderer (moderngl): the weights-free look at display resolution.

`context` makes OpenGL contexts (EGL headless first), `director` turns music into a scene (pure
Python), `renderer` draws it; the shaders live in `glsl/` as package data.
"""

from engine.render.shader.context import GLUnavailable, gl_unavailable, make_context
from engine.render.shader.director import Director, Look
from engine.render.shader.renderer import ShaderRenderer

__all__ = ["Director", "GLUnavailable", "Look", "ShaderRenderer", "gl_unavailable", "make_context"]
