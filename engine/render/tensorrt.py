"""TensorRT engines for the SDXL UNet through torch-tensorrt. **Unverified on hardware.**

No machine this was written on has TensorRT: the code follows torch-tensorrt's documented API
(`torch_tensorrt.compile(module, ir="dynamo", inputs=[torch_tensorrt.Input(shape, dtype=...)],
enabled_precisions={torch.float16})`, `torch_tensorrt.save(..., output_format="exported_program",
inputs=...)` and `torch.export.load(path).module()`), and is unit-tested at that boundary with a fake
`torch_tensorrt` (tests/test_render_tensorrt.py). Run `beatcanvas bench --backend tensorrt` on a GPU
before relying on it.

Engines are fp16 with static shapes (batch, latent size, 77 tokens): TensorRT picks its fastest kernels
for exactly those shapes. They take minutes to build, so they are cached on disk, keyed by everything
that makes an engine invalid: the model and a fingerprint of its weights, the shapes, the precision,
the GPU, and the versions of torch, torch_tensorrt and TensorRT. A second build with the same key loads
the cached engine and does not compile again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable

import torch

from engine import cache
from engine.errors import BeatcanvasError
from engine.render.sdxl import unet_pooled_dim

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'beatcanvas[tensorrt]'"
PRECISION = "fp16"


def import_torch_tensorrt():
    try:
        import torch_tensorrt
    except ImportError as e:
        raise BeatcanvasError(f"the tensorrt backend needs torch-tensorrt ({e}): {INSTALL_HINT}") from None
    return torch_tensorrt


def library_versions(torch_tensorrt) -> dict[str, str]:
    try:
        import tensorrt

        trt_version = getattr(tensorrt, "__version__", "unknown")
    except ImportError:
        trt_version = "absent"
    return {
        "torch": torch.__version__,
        "torch_tensorrt": getattr(torch_tensorrt, "__version__", "unknown"),
        "tensorrt": trt_version,
    }


def weights_fingerprint(module: torch.nn.Module) -> str:
    """A cheap fingerprint of a module's weights (names, shapes and a few values of a few tensors):
    enough to tell random-full from real weights, or two checkpoints apart, without hashing 5 GB.
    Values are rounded to fp16 first, so the module hashes the same before and after its fp16 cast."""
    h = hashlib.sha256()
    params = list(module.state_dict().items())
    for name, p in params[:4] + params[-4:]:
        h.update(f"{name}{tuple(p.shape)}".encode())
        h.update(p.detach().flatten()[:16].to(torch.float16).float().cpu().numpy().tobytes())
    h.update(str(len(params)).encode())
    return h.hexdigest()[:16]


class UNetForExport(torch.nn.Module):
    """The UNet with positional tensor inputs and one tensor output, as TensorRT wants it."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, text_embeds, time_ids):
        return self.unet(
            sample,
            timestep,
            encoder_hidden_states=encoder_hidden_states,
            added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids},
            return_dict=False,
        )[0]


class TensorRTUNet:
    """Calls a TensorRT UNet module like diffusers' `UNet2DConditionModel` (what the renderer expects)."""

    def __init__(self, module, config, dtype: torch.dtype = torch.float16):
        self.module, self.config, self.dtype = module, config, dtype

    def __call__(self, sample, timestep, encoder_hidden_states, added_cond_kwargs, return_dict=False):
        t = torch.as_tensor(timestep, device=sample.device, dtype=torch.float32).reshape(1)
        out = self.module(
            sample.to(self.dtype),
            t,
            encoder_hidden_states.to(self.dtype),
            added_cond_kwargs["text_embeds"].to(self.dtype),
            added_cond_kwargs["time_ids"].to(self.dtype),
        )
        return (out,)


def unet_input_shapes(unet_config, batch: int, height: int, width: int, vae_scale_factor: int, text_len: int = 77):
    """Static input shapes (sample, timestep, encoder_hidden_states, text_embeds, time_ids), read from
    the UNet's config (never hard-coded to SDXL's 2048/1280)."""
    return [
        (batch, unet_config.in_channels, height // vae_scale_factor, width // vae_scale_factor),
        (1,),
        (batch, text_len, unet_config.cross_attention_dim),
        (batch, unet_pooled_dim(unet_config)),
        (batch, 6),
    ]


def engine_key(model: str, fingerprint: str, shapes, precision: str, versions: dict, device_name: str) -> dict:
    return {
        "model": model,
        "weights": fingerprint,
        "shapes": [list(s) for s in shapes],
        "precision": precision,
        "device": device_name,
        "versions": versions,
    }


def key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


def compile_unet(
    unet,
    *,
    model: str,
    batch: int,
    height: int,
    width: int,
    vae_scale_factor: int = 8,
    device: str | torch.device = "cuda",
    cache_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> TensorRTUNet:
    """A TensorRT fp16 engine of `unet` for one static shape, from the disk cache when it is there."""
    torch_tensorrt = import_torch_tensorrt()
    device = torch.device(device)
    say = progress or (lambda msg: log.info("%s", msg))
    shapes = unet_input_shapes(unet.config, batch, height, width, vae_scale_factor)
    dtypes = [torch.float16, torch.float32, torch.float16, torch.float16, torch.float16]
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    key = engine_key(model, weights_fingerprint(unet), shapes, PRECISION, library_versions(torch_tensorrt), device_name)
    folder = Path(cache_dir) if cache_dir is not None else cache.cache_dir() / "tensorrt"
    path = folder / f"unet-{model}-{batch}x{height}x{width}-{PRECISION}-{key_digest(key)}.ep"

    if path.is_file():
        say(f"TensorRT engine: cache hit {path}")
        return TensorRTUNet(load_engine(path, device), unet.config)

    say(f"TensorRT engine: building {model} UNet {batch}×{height}×{width} {PRECISION} (once; takes minutes)…")
    example = [torch.randn(s, dtype=d, device=device) for s, d in zip(shapes, dtypes)]
    example[1].fill_(999.0)
    module = UNetForExport(unet.to(device=device, dtype=torch.float16)).eval()
    trt_module = torch_tensorrt.compile(
        module,
        ir="dynamo",
        inputs=[torch_tensorrt.Input(s, dtype=d) for s, d in zip(shapes, dtypes)],
        enabled_precisions={torch.float16},
    )
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch_tensorrt.save(trt_module, str(tmp), output_format="exported_program", inputs=example)
    os.replace(tmp, path)  # atomic: a build interrupted half-way never looks like a cache hit
    path.with_suffix(".json").write_text(json.dumps(key, indent=2, sort_keys=True))
    say(f"TensorRT engine: saved {path}")
    return TensorRTUNet(trt_module, unet.config)


def load_engine(path: Path, device: torch.device) -> Any:
    """A saved engine as a callable module (torch.export.load; the TensorRT runtime ops come with the
    torch_tensorrt import)."""
    return torch.export.load(str(path)).module()
