"""TensorRT engines for the SDXL UNet through torch-tensorrt. **Unverified on hardware.**

No machine this was written on has TensorRT (the GPU machine this project borrows cannot install
it): the code follows torch-tensorrt 2.x's current documented API — `torch_tensorrt.compile(module,
ir="dynamo", arg_inputs=[torch_tensorrt.Input(shape, dtype=...)], enabled_precisions={torch.float16})`,
`torch_tensorrt.save(module, "x.pt2", output_format="exported_program", arg_inputs=[example tensors])`
and `torch_tensorrt.load("x.pt2").module()` (`.pt2`: the suffix torch.export's own files use) — and is unit-tested at that boundary with a fake
`torch_tensorrt` (tests/test_render_tensorrt.py). Run `beatcanvas bench --backend tensorrt` on a GPU
with torch-tensorrt before relying on it.

Engines (the UNet, and TAESD's decoder) are fp16 with static shapes (batch, latent size, 77 tokens):
TensorRT picks its fastest kernels for exactly those shapes. They take minutes to build, so they are
cached on disk, keyed by everything that makes an engine invalid: the model and its weights, the
shapes, the precision, the GPU, and the versions of torch, torch_tensorrt and TensorRT. The weights are
keyed by the checkpoint files' path, size and modification time (`files_fingerprint`: a cache hit
reads no weights and hashes nothing, where hashing SDXL's ~5 GB took seconds on every start); only
modules with no files behind them (the tiny profile) hash their values. A second build with the same
key loads the cached engine and does not compile again. An engine is saved under a temporary `.pt2`
name and renamed into place, so an interrupted build never looks like a cache hit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

import torch

from engine.models import cache
from engine.errors import BeatcanvasError
from engine.render.shapes import TEXT_TOKENS, unet_pooled_dim

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'beatcanvas[tensorrt]'"
PRECISION = "fp16"


def import_torch_tensorrt() -> Any:
    try:
        import torch_tensorrt
    except ImportError as e:
        raise BeatcanvasError(f"the tensorrt backend needs torch-tensorrt ({e}): {INSTALL_HINT}") from None
    return torch_tensorrt


def library_versions(torch_tensorrt: Any) -> dict[str, str]:
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
    """SHA-256 of every weight of `module` (names, shapes and all values, as fp16 bytes, so the module
    hashes the same before and after its fp16 cast). Two checkpoints that differ in one value get
    different engines. Streams one tensor at a time: a few seconds for the 2.6 B-parameter UNet."""
    h = hashlib.sha256()
    for name, p in module.state_dict().items():
        h.update(f"{name}{tuple(p.shape)}".encode())
        h.update(p.detach().to(torch.float16).contiguous().view(torch.uint8).cpu().numpy().tobytes())
    return h.hexdigest()[:32]


class UNetForExport(torch.nn.Module):
    """The UNet with positional tensor inputs and one tensor output, as TensorRT wants it."""

    def __init__(self, unet: Any) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor,
                text_embeds: torch.Tensor, time_ids: torch.Tensor) -> torch.Tensor:
        return self.unet(
            sample,
            timestep,
            encoder_hidden_states=encoder_hidden_states,
            added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids},
            return_dict=False,
        )[0]


class TensorRTUNet:
    """Calls a TensorRT UNet module like diffusers' `UNet2DConditionModel` (what the renderer expects)."""

    def __init__(self, module: Any, config: Any, dtype: torch.dtype = torch.float16) -> None:
        self.module, self.config, self.dtype = module, config, dtype

    def __call__(self, sample: torch.Tensor, timestep: torch.Tensor | float, encoder_hidden_states: torch.Tensor,
                 added_cond_kwargs: dict[str, torch.Tensor], return_dict: bool = False) -> tuple[torch.Tensor]:
        # One timestep per batch row (the stream batch gives each row its own); a scalar is broadcast.
        t = torch.as_tensor(timestep, device=sample.device).to(torch.float32).reshape(-1).expand(sample.shape[0])
        out = self.module(
            sample.to(self.dtype),
            t,
            encoder_hidden_states.to(self.dtype),
            added_cond_kwargs["text_embeds"].to(self.dtype),
            added_cond_kwargs["time_ids"].to(self.dtype),
        )
        return (out,)


def unet_input_shapes(unet_config: Any, batch: int, height: int, width: int, vae_scale_factor: int,
                      text_len: int = TEXT_TOKENS) -> list[tuple[int, ...]]:
    """Static input shapes (sample, timestep, encoder_hidden_states, text_embeds, time_ids), read from
    the UNet's config (never hard-coded to SDXL's 2048/1280)."""
    return [
        (batch, unet_config.in_channels, height // vae_scale_factor, width // vae_scale_factor),
        (batch,),
        (batch, text_len, unet_config.cross_attention_dim),
        (batch, unet_pooled_dim(unet_config)),
        (batch, 6),
    ]


def engine_key(model: str, fingerprint: str, shapes: Sequence[Sequence[int]], precision: str, versions: dict,
               device_name: str) -> dict:
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


def _build_or_load(module: torch.nn.Module, name: str, shapes: Sequence[Sequence[int]], dtypes: Sequence[torch.dtype],
                   *, model: str, fingerprint: str, device: torch.device, cache_dir: str | Path | None,
                   progress: Callable[[str], None] | None) -> Any:
    """A TensorRT module for `module` at static `shapes`, from the disk cache when the key matches."""
    torch_tensorrt = import_torch_tensorrt()
    say = progress or (lambda msg: log.info("%s", msg))
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    key = engine_key(model, fingerprint, shapes, PRECISION, library_versions(torch_tensorrt), device_name)
    folder = Path(cache_dir) if cache_dir is not None else cache.cache_dir() / "tensorrt"
    shape_tag = "x".join(str(v) for v in shapes[0])
    path = folder / f"{name}-{model}-{shape_tag}-{PRECISION}-{key_digest(key)}.pt2"
    if path.is_file():
        say(f"TensorRT engine: cache hit {path}")
        return load_engine(path, device)

    say(f"TensorRT engine: building {name} {shape_tag} {PRECISION} (once; takes minutes)…")
    example = [torch.randn(s, dtype=d, device=device) for s, d in zip(shapes, dtypes)]
    trt_module = torch_tensorrt.compile(
        module,
        ir="dynamo",
        arg_inputs=[torch_tensorrt.Input(s, dtype=d) for s, d in zip(shapes, dtypes)],
        enabled_precisions={torch.float16},
    )
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.pt2")
    try:
        torch_tensorrt.save(trt_module, str(tmp), output_format="exported_program", arg_inputs=example)
        os.replace(tmp, path)  # atomic: a build interrupted half-way never looks like a cache hit
    finally:
        tmp.unlink(missing_ok=True)
    path.with_suffix(".json").write_text(json.dumps(key, indent=2, sort_keys=True))
    say(f"TensorRT engine: saved {path}")
    return trt_module


def compile_unet(
    unet: Any,
    *,
    model: str,
    batch: int,
    height: int,
    width: int,
    vae_scale_factor: int = 8,
    device: str | torch.device = "cuda",
    cache_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    fingerprint: str = "",
) -> TensorRTUNet:
    """A TensorRT fp16 engine of `unet` for one static shape, from the disk cache when it is there.
    `fingerprint`: the weights' key (`files_fingerprint` of its checkpoint); "" hashes the values."""
    import_torch_tensorrt()
    device = torch.device(device)
    shapes = unet_input_shapes(unet.config, batch, height, width, vae_scale_factor)
    dtypes = [torch.float16, torch.float32, torch.float16, torch.float16, torch.float16]
    module = UNetForExport(unet.to(device=device, dtype=torch.float16)).eval()
    trt = _build_or_load(module, "unet", shapes, dtypes, model=model, fingerprint=fingerprint or weights_fingerprint(unet),
                         device=device, cache_dir=cache_dir, progress=progress)
    return TensorRTUNet(trt, unet.config)


class DecoderForExport(torch.nn.Module):
    """TAESD's decode as a module with one tensor in and one out."""

    def __init__(self, decoder: Any) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.decoder.decode(latents, return_dict=False)[0]


class TensorRTDecoder:
    """Calls a TensorRT decoder like diffusers' `AutoencoderTiny.decode` (keeps the original config)."""

    def __init__(self, module: Any, config: Any) -> None:
        self.module, self.config = module, config

    def decode(self, latents: torch.Tensor, return_dict: bool = False) -> tuple[torch.Tensor]:
        return (self.module(latents.to(torch.float16)),)


def compile_decoder(
    decoder: Any,
    *,
    name: str,
    height: int,
    width: int,
    vae_scale_factor: int = 8,
    batch: int = 1,
    device: str | torch.device = "cuda",
    cache_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> TensorRTDecoder:
    """A TensorRT fp16 engine of a decoder (TAESDXL) for one static latent shape."""
    import_torch_tensorrt()
    device = torch.device(device)
    channels = decoder.config.latent_channels
    shapes = [(batch, channels, height // vae_scale_factor, width // vae_scale_factor)]
    module = DecoderForExport(decoder.to(device=device, dtype=torch.float16)).eval()
    trt = _build_or_load(module, "decoder", shapes, [torch.float16], model=name,
                         fingerprint=weights_fingerprint(decoder), device=device, cache_dir=cache_dir, progress=progress)
    return TensorRTDecoder(trt, decoder.config)


def load_engine(path: Path, device: torch.device) -> Any:
    """A saved engine as a callable module (the TensorRT runtime ops come with the torch_tensorrt import)."""
    torch_tensorrt = import_torch_tensorrt()
    return torch_tensorrt.load(str(path)).module()
