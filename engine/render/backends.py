"""Compile back-ends for the SDXL renderer behind one switch: `--backend auto|eager|inductor|tensorrt`.

- `eager`: the modules as built. The reference every other back-end must match.
- `inductor`: **regional compilation** (diffusers' `compile_repeated_blocks`): torch.compile of each
  repeated transformer block (`BasicTransformerBlock`, fullgraph, static shapes) instead of the whole
  UNet — one block's graph is compiled once and reused by all 70 of SDXL's, so compiling takes a
  fraction of the whole-UNet compile (measured on an H100: the whole UNet did not compile within
  300 s). The resnets and the rest run eager inside the renderer's CUDA graph (launch costs gone). The
  compiled code is cached on disk under the models cache (`TORCHINDUCTOR_CACHE_DIR`, the FX graph
  cache), so a warm start loads instead of compiling. `BEATCANVAS_INDUCTOR_MODE` overrides the mode;
  `fp8=True` (Hopper and newer, `pip install 'beatcanvas[fp8]'`: torchao) runs the UNet's linear
  layers in float8 with dynamic scaling, opt-in (its error against bf16 is measured by gpu_proof).
- `tensorrt`: torch-tensorrt engines for the UNet and TAESD, fp16, static shapes, cached on disk
  (engine/render/tensorrt.py). Unverified on hardware.
- `auto`: only back-ends verified on this machine kind (`engine/render/verified.json`, written from a
  gpu_proof run): TensorRT or inductor where verified, else eager (with the renderer's CUDA graphs on a
  GPU: 62 img/s at 512² 1-step on an H100 against 10.8 without), with a one-line reason.

On CUDA every back-end first puts the shared UNet and decoder in channels_last memory format (with
q/k/v fused into one matmul) and turns on `cudnn.benchmark` — once, before any renderer captures a
graph, so a later renderer (an inductor switch, an out-of-memory step-down) finds nothing to convert
and never moves storage a running renderer's graphs point at. A back-end that changes modules
(inductor's compiled blocks, FP8 weights) works on a copy of the module tree that shares the weights:
the running renderer's modules are never touched, and the scheduler is each renderer's own copy.
"""

from __future__ import annotations

import copy
import importlib.util
import itertools
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch

from engine.errors import BeatcanvasError
from engine.render.tensorrt import INSTALL_HINT as TENSORRT_HINT

VERIFIED_FILE = Path(__file__).with_name("verified.json")
FP8_HINT = "pip install 'beatcanvas[fp8]' (torchao)"

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
    # auto: only what a gpu_proof run verified on this kind of machine
    if cuda:
        kind = device_kind(device)
        for name in ("tensorrt", "inductor"):
            if (name != "tensorrt" or has_module("torch_tensorrt")) and verified(name, kind):
                return name, f"auto → {name}: verified on {kind} ({VERIFIED_FILE.name})"
        return "eager", (
            f"auto → eager with CUDA graphs: no faster back-end is verified on {kind} yet "
            "(scripts/gpu_proof records them; --backend inductor or tensorrt tries one)"
        )
    return "eager", f"auto → eager: on {device.type} compiling gains little and the first compile takes minutes"


def device_kind(device: torch.device) -> str:
    return torch.cuda.get_device_name(device)


def verified(backend: str, device_kind: str, path: Path = VERIFIED_FILE) -> bool:
    """True when `backend` ran correct and faster than eager + graphs on `device_kind` (a GPU name)
    in a recorded gpu_proof run."""
    try:
        records = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    entry = records.get(device_kind, {}).get(backend, {}) if isinstance(records, dict) else {}
    return isinstance(entry, dict) and bool(entry.get("verified"))


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


def inductor_cache_dir() -> Path:
    """Where inductor keeps compiled kernels between runs (a warm start loads, not compiles)."""
    from engine.models import cache

    return Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR") or cache.cache_dir() / "inductor")


def prepare_modules(unet: Any, decoder: Any, device: torch.device) -> None:
    """On CUDA: channels_last, fused q/k/v and cudnn.benchmark, once per set of components (a no-op
    when already done, so it never moves storage under a running renderer's graphs)."""
    if device.type != "cuda":
        return
    torch.backends.cudnn.benchmark = True
    fused = any("Fused" in type(p).__name__ for p in getattr(unet, "attn_processors", {}).values())
    if hasattr(unet, "fuse_qkv_projections") and not fused:
        unet.fuse_qkv_projections()  # one matmul for q, k, v in self-attention
    for module in (unet, decoder):
        if isinstance(module, torch.nn.Module):
            module.to(memory_format=torch.channels_last)


def weight_sharing_copy(module: torch.nn.Module) -> Any:
    """A copy of the module tree whose parameters and buffers are the original's tensors: changing the
    copy's modules (compiling a block, swapping a weight for an FP8 one) leaves the original alone."""
    memo: dict[int, Any] = {id(t): t for t in itertools.chain(module.parameters(), module.buffers())}
    return copy.deepcopy(module, memo)


def to_fp8(unet: Any) -> Any:
    """The UNet's linear layers in float8 (dynamic activation and weight scales; torchao), on a copy."""
    try:
        from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, quantize_
    except ImportError as e:
        raise BeatcanvasError(f"fp8 needs torchao ({e}): {FP8_HINT}") from None
    unet = weight_sharing_copy(unet)
    quantize_(unet, Float8DynamicActivationFloat8WeightConfig())
    return unet


def compile_inductor(unet: Any, decoder: Any, device: torch.device, mode: str | None = None,
                     fullgraph: bool = True) -> tuple[Any, CompiledDecoder]:
    """(UNet copy with its repeated blocks compiled, compiled decoder). Compilation itself happens
    lazily, on the first call; the shared modules are not changed."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(inductor_cache_dir()))
    import torch._inductor.config as cfg

    cfg.fx_graph_cache = True
    if device.type == "cuda":
        configure_inductor()
    mode = mode or inductor_mode()
    compiled = weight_sharing_copy(unet)
    if hasattr(compiled, "compile_repeated_blocks") and getattr(compiled, "_repeated_blocks", None):
        compiled.compile_repeated_blocks(mode=mode, fullgraph=fullgraph, dynamic=False)
    else:  # not a diffusers model with declared blocks: the whole module
        compiled = torch.compile(compiled, mode=mode, fullgraph=fullgraph, dynamic=False)
    compiled_decode = torch.compile(decoder.decode, mode=mode, fullgraph=fullgraph, dynamic=False)
    return compiled, CompiledDecoder(decoder, compiled_decode)


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
    fp8: bool = False,
) -> PreparedBackend:
    """Select a back-end and apply it to the components' UNet and decoder."""
    device = torch.device(device)
    name, reason = select_backend(backend, device)
    unet = components.unet
    dec = components.taesd if decoder == "taesd" else components.vae
    prepare_modules(unet, dec, device)
    if fp8:
        if name == "tensorrt" or device.type != "cuda":
            raise BeatcanvasError("fp8 runs with --backend eager or inductor on a CUDA GPU (Hopper or newer)")
        unet = to_fp8(unet)
        reason += " · UNet linear layers in fp8 (torchao)"
    if name == "inductor":
        unet, dec = compile_inductor(unet, dec, device)
    elif name == "tensorrt":
        from engine.render.tensorrt import compile_decoder, compile_unet

        if dtype != torch.float16:
            raise BeatcanvasError("the tensorrt backend builds fp16 engines: use --dtype fp16")
        size = dict(height=height, width=width, vae_scale_factor=components.vae_scale_factor, device=device,
                    cache_dir=cache_dir, progress=progress)
        unet = compile_unet(unet, model=components.model, batch=unet_batch, fingerprint=components.fingerprint, **size)
        if decoder == "taesd":
            dec = compile_decoder(dec, name="taesdxl", **size)
    log.info("render backend: %s", reason)
    return PreparedBackend(name=name, reason=reason, unet=unet, decoder=dec)
