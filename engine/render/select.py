"""`--renderer auto|sdxl|procedural`: which renderer runs, and one line saying why.

`select_renderer` is a pure decision over three facts (SDXL weights on disk, a GPU, the user's
permission to diffuse on a CPU), so every combination is testable without hardware; `probe` finds the
facts on this machine and `choose_renderer` does both. `auto` never fails: without weights or a GPU the
procedural renderer runs and the reason tells the user how to get SDXL. An explicit `sdxl` that
cannot run is a user error (BeatcanvasError naming the fix), never a silent fallback.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engine.errors import BeatcanvasError

log = logging.getLogger(__name__)

RendererKind = Literal["sdxl", "procedural"]
CHOICES = ("auto", "sdxl", "procedural")
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
    gpu_present: bool,
    allow_cpu_diffusion: bool,
    model: str = DEFAULT_MODEL,
) -> RendererChoice:
    """Decide the renderer. `auto`: SDXL when its weights are present and it can render in
    reasonable time (a GPU, or `allow_cpu_diffusion` for a patient export); otherwise procedural."""
    choice = (choice or "auto").strip().lower()
    if choice not in CHOICES:
        raise BeatcanvasError(f"unknown renderer {choice!r}: use one of {', '.join(CHOICES)}")

    if choice == "procedural":
        return RendererChoice("procedural", "procedural renderer: chosen with --renderer procedural")

    explicit = choice == "sdxl"  # an explicit sdxl that cannot run is an error; auto falls back
    if not weights_present:
        if explicit:
            raise BeatcanvasError(
                f"--renderer sdxl needs the {model} weights, which are not on this machine: "
                f"{_fetch_hint(model)} (or use --renderer procedural)"
            )
        gpu_note = "" if gpu_present else " and no GPU"
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


def probe(model: str = DEFAULT_MODEL, models_dir: str | Path | None = None) -> tuple[bool, bool]:
    """(weights_present, gpu_present) on this machine."""
    return weights_present(model, models_dir), gpu_present()


def choose_renderer(
    choice: str = "auto",
    *,
    allow_cpu_diffusion: bool = False,
    model: str = DEFAULT_MODEL,
    models_dir: str | Path | None = None,
) -> RendererChoice:
    """Probe this machine and decide; what `play`, `demo` and `export` call."""
    choice_l = (choice or "auto").strip().lower()
    if choice_l == "procedural":  # no need to touch the disk or CUDA
        return select_renderer(choice_l, weights_present=False, gpu_present=False, allow_cpu_diffusion=False)
    weights, gpu = probe(model, models_dir)
    result = select_renderer(
        choice_l, weights_present=weights, gpu_present=gpu, allow_cpu_diffusion=allow_cpu_diffusion, model=model
    )
    log.info(result.reason)
    return result
