"""`--renderer auto|sdxl|procedural|shader|numpy`: which renderer runs, and one line saying why.

`select_renderer` is a pure decision over four facts (SDXL weights on disk, a GPU, the user's
permission to diffuse on a CPU, and whether an OpenGL 3.3 context can be made), so every combination
is testable without hardware; `probe` finds the facts on this machine and `choose_renderer` does
both. `auto` never fails: without weights or a GPU the weights-free look runs — the shader renderer
when OpenGL works (any laptop GPU, or Mesa's software rasteriser, where a live window draws it at a
lower resolution chosen to hold the frame rate and upscales it), else the numpy renderer — and the reason says why and how
to get SDXL. `procedural` is the weights-free look, whichever of the two can
run; `shader` and `numpy` pin one. An explicit choice that cannot run is a user error
(BeatcanvasError naming the fix), never a silent fallback.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engine.errors import BeatcanvasError

log = logging.getLogger(__name__)

RendererKind = Literal["sdxl", "shader", "procedural"]  # "procedural" is the numpy renderer
CHOICES = ("auto", "sdxl", "procedural", "shader", "numpy")
DEFAULT_MODEL = "sdxl-turbo"


@dataclass(frozen=True)
class RendererChoice:
    """The renderer to build and a one-line, human reason (for the console and the HUD)."""

    kind: RendererKind
    reason: str


def _fetch_hint(model: str) -> str:
    return f"run `beatcanvas models fetch {model}`"


def select_renderer(
    choice: str,
    *,
    weights_present: bool,
    gpu_present: bool | None,
    allow_cpu_diffusion: bool,
    model: str = DEFAULT_MODEL,
    gl_unavailable: str | None = None,
    gl_software: bool = False,
    live: bool = True,
) -> RendererChoice:
    """Decide the renderer. `auto`: SDXL when its weights are present and it can render in
    reasonable time (a GPU, or `allow_cpu_diffusion` for a patient export); otherwise the
    weights-free look. `gpu_present` None: not probed. `gl_unavailable`: why no OpenGL 3.3 context can be made (None: one can);
    `gl_software`: that context is a software rasteriser; `live`: a window, not an export."""
    choice = (choice or "auto").strip().lower()
    if choice not in CHOICES:
        raise BeatcanvasError(f"unknown renderer {choice!r}: use one of {', '.join(CHOICES)}")
    if choice in ("procedural", "shader", "numpy"):
        picked = RendererChoice("procedural", f"procedural renderer: chosen with --renderer {choice}")
    else:
        picked = _diffusion_choice(choice, weights_present, gpu_present, allow_cpu_diffusion, model)
    return _weights_free(picked, choice, gl_unavailable, gl_software and live)


def _weights_free(picked: RendererChoice, choice: str, gl_unavailable: str | None, smaller: bool) -> RendererChoice:
    """Which weights-free renderer a "procedural" decision runs: shaders when OpenGL works (`smaller`:
    on a software rasteriser in a window, drawn at a lower resolution and upscaled)."""
    if picked.kind != "procedural" or choice == "numpy":
        return picked
    rest = picked.reason.removeprefix("procedural renderer")
    if gl_unavailable is None:
        how = " (software OpenGL: drawn smaller, upscaled)" if smaller else ""
        return RendererChoice("shader", "shader renderer" + how + rest)
    if choice == "shader":
        raise BeatcanvasError(f"--renderer shader needs OpenGL 3.3, but {gl_unavailable} (or use --renderer numpy)")
    return RendererChoice("procedural", f"procedural renderer (numpy, {gl_unavailable})" + rest)


def _diffusion_choice(
    choice: str, weights_present: bool, gpu_present: bool | None, allow_cpu_diffusion: bool, model: str
) -> RendererChoice:
    """auto or sdxl: SDXL when it can run, else a "procedural" decision saying why not."""

    explicit = choice == "sdxl"  # an explicit sdxl that cannot run is an error; auto falls back
    if not weights_present:
        if explicit:
            raise BeatcanvasError(
                f"--renderer sdxl needs the {model} weights, which are not on this machine: "
                f"{_fetch_hint(model)} (or use --renderer procedural)"
            )
        gpu_note = " and no GPU" if gpu_present is False else ""
        return RendererChoice(
            "procedural", f"procedural renderer: no SDXL weights found{gpu_note} ({_fetch_hint(model)})"
        )
    if gpu_present:
        why = "chosen with --renderer sdxl" if explicit else "weights found"
        return RendererChoice("sdxl", f"sdxl renderer ({model}): {why}, GPU found")
    if allow_cpu_diffusion:
        return RendererChoice(
            "sdxl", f"sdxl renderer ({model}) on the CPU (--allow-cpu-diffusion): expect seconds per frame"
        )
    if explicit:
        raise BeatcanvasError(
            "--renderer sdxl found no GPU: pass --allow-cpu-diffusion to diffuse on the CPU "
            "(seconds per frame, fine for export) or use --renderer procedural"
        )
    return RendererChoice(
        "procedural",
        "procedural renderer: SDXL weights found but no GPU (pass --allow-cpu-diffusion to diffuse on the CPU)",
    )


def weights_present(model: str = DEFAULT_MODEL, models_dir: str | Path | None = None) -> bool:
    """True when the registry finds `model` (and the models it depends on) on disk; never downloads."""
    try:
        from engine.models import registry

        names = [model]
        spec = getattr(registry, "MODELS", {}).get(model)
        names += list(getattr(spec, "depends_on", ()) or ())
        for name in names:
            registry.resolve(name, models_dir=models_dir)
    except BeatcanvasError as e:
        log.info("SDXL weights not present: %s", e)
        return False
    except ImportError as e:  # registry not installed in this build: nothing can be resolved
        log.info("model registry unavailable: %s", e)
        return False
    return True


def gpu_present() -> bool:
    """True when torch sees a CUDA device."""
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception as e:  # noqa: BLE001 - a broken CUDA install means "no usable GPU"
        log.info("CUDA probe failed: %s", e)
        return False


def gl_unavailable() -> str | None:
    """Why no OpenGL 3.3 context can be made here (None: one can). Cached per process."""
    from engine.render.shader.context import gl_unavailable as why

    return why()


def gl_software() -> bool:
    """True when this machine's OpenGL contexts run on a software rasteriser (Mesa's llvmpipe)."""
    from engine.render.shader.context import gpu_gl

    return gl_unavailable() is None and not gpu_gl()


def probe(model: str = DEFAULT_MODEL, models_dir: str | Path | None = None) -> tuple[bool, bool | None]:
    """(weights_present, gpu_present) on this machine. Without weights the GPU is not probed (None):
    asking CUDA imports torch, seconds a weights-free show never needs."""
    weights = weights_present(model, models_dir)
    return weights, gpu_present() if weights else None


def choose_renderer(
    choice: str = "auto",
    *,
    allow_cpu_diffusion: bool = False,
    model: str = DEFAULT_MODEL,
    models_dir: str | Path | None = None,
    live: bool = True,
) -> RendererChoice:
    """Probe this machine and decide; what `play`, `demo` and `export` call."""
    choice_l = (choice or "auto").strip().lower()
    weights: bool
    gpu: bool | None
    if choice_l in ("procedural", "shader", "numpy"):  # no need to touch the disk or CUDA
        weights, gpu = False, None
    else:
        weights, gpu = probe(model, models_dir)
    result = select_renderer(
        choice_l, weights_present=weights, gpu_present=gpu, allow_cpu_diffusion=allow_cpu_diffusion, model=model,
        gl_unavailable=gl_unavailable() if choice_l != "numpy" else None,
        gl_software=choice_l != "numpy" and gl_software(), live=live,
    )
    return result  # the caller prints the reason once (console and HUD), so no log line repeats it
