"""Compile back-ends for the SDXL renderer behind one switch: `--backend auto|eager|inductor|tensorrt`.

- `eager`: the modules as built. The reference every other back-end must match.
- `inductor`: torch.compile(mode="default", fullgraph=True, dynamic=False) of the UNet and the decoder,
  with the UNet's q/k/v projections fused into one matmul, channels_last memory format and the inductor
  flags diffusers recommends for SDXL. CUDA graphs are not inductor's: the renderer captures the whole
  frame (UNet steps + decode) as one graph itself (engine/render/graphs.py). Measured on an H100
  (bench/results/h100/): max-autotune's GEMM autotuning did not finish within 330 s (10–20 s per matmul
  shape), and even the default mode did not compile the full UNet within 300 s on that machine's 16
  cores — so inductor is opt-in, never `auto`'s choice, until a warm compile cache makes it cheap.
  `BEATCANVAS_INDUCTOR_MODE` overrides the mode. `dynamic=False`: an out-of-memory step-down to a
  smaller size compiles a new static graph rather than silently switching to a slower dynamic one.
- `tensorrt`: torch-tensorrt engines for the UNet and TAESD, fp16, static shapes, cached on disk
  (engine/render/tensorrt.py). Unverified on hardware.
- `auto`: TensorRT when torch-tensorrt is installed on a CUDA machine, else eager (with the renderer's
  CUDA graphs on a GPU: 62 img/s at 512² 1-step on an H100 against 10.8 without), with a one-line reason.

Preparing a back-end may change the shared modules in place (fused projections, memory format): one
renderer owns one set of components.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import torch

from engine.errors import BeatcanvasError
from engine.render.tensorrt import INSTALL_HINT as TENSORRT_HINT

if TYPE_CHECKING:
    from engine.models.profiles import SDXLComponents

log = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("auto", "eager", "inductor", "tensorrt")


@dataclass
class PreparedBackend:
    name: str  # the back-end actually used: eager | inductor | tensorrt
    reason: str  # one line: why this back-end (shown by `auto`, the HUD and `bench`)
    unet: Any  # callable like UNet2DConditionModel: (sample, t, encoder_hidden_states=, added_cond_kwargs=, return_dict=False)
    decoder: Any  # has `.config` and `.decode(latents, return_dict=False) -> (image,)`


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def select_backend(requested: str, device: str | torch.device) -> tuple[str, str]:
    """(backend, one-line reason) for a requested back-end on `device`; no compiling happens here."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    if requested not in BACKENDS:
        raise BeatcanvasError(f"unknown backend '{requested}': choose one of {', '.join(BACKENDS)}")
    if requested == "eager":
        return "eager", "eager: requested (no compilation)"
    if requested == "tensorrt":
        if not cuda:
            raise BeatcanvasError("the tensorrt backend needs a CUDA GPU: use --backend inductor or eager here")
        if not has_module("torch_tensorrt"):
            raise BeatcanvasError(f"torch-tensorrt is not installed: {TENSORRT_HINT}")
        return "tensorrt", "tensorrt: requested (fp16 engines, static shapes; unverified on hardware)"
    if requested == "inductor":
        if cuda and not has_module("triton"):
            raise BeatcanvasError("torch.compile on CUDA needs triton: pip install triton, or use --backend eager")
        return "inductor", f"inductor: requested (torch.compile {inductor_mode()})"
    # auto
    if cuda and has_module("torch_tensorrt"):
        return "tensorrt", "auto → tensorrt: torch_tensorrt is installed and a CUDA GPU is present"
    if cuda:
        return "eager", (
            "auto → eager with CUDA graphs: torch_tensorrt is not installed, and inductor's first compile of "
            "the SDXL UNet takes over 5 minutes (use --backend inductor to pay it)"
        )
    return "eager", f"auto → eager: on {device.type} compiling gains little and the first compile takes minutes"


def configure_inductor() -> None:
    """The inductor flags diffusers' SDXL speed-up guide uses (1×1 convs as matmuls, tuned tiling)."""
    import torch._inductor.config as cfg

    cfg.conv_1x1_as_mm = True
    cfg.coordinate_descent_tuning = True
    cfg.epilogue_fusion = False
    cfg.coordinate_descent_check_all_directions = True


def inductor_mode() -> str:
    return os.environ.get("BEATCANVAS_INDUCTOR_MODE", "default")


class CompiledDecoder:
    """A decoder whose `decode` is compiled; keeps the original's `config`."""

    def __init__(self, module: Any, decode: Callable) -> None:
        self.module, self.config, self.decode = module, module.config, decode


def compile_inductor(unet: Any, decoder: Any, device: torch.device, mode: str | None = None,
                     fullgraph: bool = True) -> tuple[Callable, CompiledDecoder]:
    """(compiled UNet, compiled decoder). Compilation itself happens lazily, on the first call."""
    if device.type == "cuda":
        configure_inductor()
    already_fused = any("Fused" in type(p).__name__ for p in getattr(unet, "attn_processors", {}).values())
    if hasattr(unet, "fuse_qkv_projections") and not already_fused:  # a step-down renderer reuses the UNet
        unet.fuse_qkv_projections()  # one matmul for q, k, v in self-attention
    unet.to(memory_format=torch.channels_last)
    decoder.to(memory_format=torch.channels_last)
    mode = mode or inductor_mode()
    compiled_unet = torch.compile(unet, mode=mode, fullgraph=fullgraph, dynamic=False)
    compiled_decode = torch.compile(decoder.decode, mode=mode, fullgraph=fullgraph, dynamic=False)
    return compiled_unet, CompiledDecoder(decoder, compiled_decode)


def prepare_backend(
    components: SDXLComponents,
    backend: str,
    *,
    device: str | torch.device,
    dtype: torch.dtype,
    width: int,
    height: int,
    decoder: str = "taesd",
    unet_batch: int = 1,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> PreparedBackend:
    """Select a back-end and apply it to the components' UNet and decoder."""
    device = torch.device(device)
    name, reason = select_backend(backend, device)
    unet = components.unet
    dec = components.taesd if decoder == "taesd" else components.vae
    if name == "inductor":
        unet, dec = compile_inductor(unet, dec, device)
    elif name == "tensorrt":
        from engine.render.tensorrt import compile_decoder, compile_unet

        if dtype != torch.float16:
            raise BeatcanvasError("the tensorrt backend builds fp16 engines: use --dtype fp16")
        size = dict(height=height, width=width, vae_scale_factor=components.vae_scale_factor, device=device,
                    cache_dir=cache_dir, progress=progress)
        unet = compile_unet(unet, model=components.model, batch=unet_batch, **size)
        if decoder == "taesd":
            dec = compile_decoder(dec, name="taesdxl", **size)
    log.info("render backend: %s", reason)
    return PreparedBackend(name=name, reason=reason, unet=unet, decoder=dec)
