"""Shapes the SDXL UNet's config implies: read by the renderer and by every compile back-end.

Kept below both (`sdxl.py` and `tensorrt.py` import this, never each other), so the shape helpers
never tie the renderer and its back-ends into an import circle.
"""

from __future__ import annotations

from typing import Any

TEXT_TOKENS = 77  # CLIP's context length: SDXL's prompt embeddings are (B, 77, cross_attention_dim)


def unet_pooled_dim(unet_config: Any) -> int:
    """Width of the pooled text embedding the UNet takes: its added-condition input minus 6 time ids."""
    return unet_config.projection_class_embeddings_input_dim - 6 * unet_config.addition_time_embed_dim


def latent_shape(unet_config: Any, width: int, height: int, vae_scale_factor: int) -> tuple[int, int, int]:
    """(channels, height, width) of one latent for an image of `width`×`height` pixels."""
    return unet_config.in_channels, height // vae_scale_factor, width // vae_scale_factor
