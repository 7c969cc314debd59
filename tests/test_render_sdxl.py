"""The few-step SDXL renderer against diffusers' own SDXL pipelines, on the tiny profile."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline
from diffusers.utils.torch_utils import randn_tensor

from engine.errors import BeatcanvasError
from engine.models.profiles import _scheduler
from engine.render.base import Renderer
from engine.render.denoise import feedback_steps, native_grid
from engine.render.sdxl import SDXLRenderer
from engine.types import Conditioning, Features

SIZE = 64  # tiny UNet sample_size 8 × vae factor 8


def conditioning(text, seed: int) -> Conditioning:
    g = torch.Generator().manual_seed(seed)
    return Conditioning(
        prompt_embeds=torch.randn(1, 77, text.prompt_dim, generator=g),
        pooled_prompt_embeds=torch.randn(1, text.pooled_dim, generator=g),
    )


def components_for(sdxl, model: str):
    """The tiny components with a fresh scheduler of `model` (pipelines mutate scheduler state)."""
    return dataclasses.replace(sdxl, scheduler=_scheduler(model), model=model)


def pipeline(cls, text, comps, decoder: str = "taesd"):
    pipe = cls(
        vae=comps.taesd if decoder == "taesd" else comps.vae,
        text_encoder=text.text_encoder,
        text_encoder_2=text.text_encoder_2,
        tokenizer=text.tokenizer,
        tokenizer_2=text.tokenizer_2,
        unet=comps.unet,
        scheduler=copy.deepcopy(comps.scheduler),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def reference_t2i(text, comps, cond, seed, steps, guidance_scale=0.0, output_type="latent", decoder="taesd"):
    """diffusers' text-to-image with the renderer's noise: the generator draws the starting noise first,
    then (ancestral Euler) the per-step noise."""
    pipe = pipeline(StableDiffusionXLPipeline, text, comps, decoder)
    gen = torch.Generator().manual_seed(seed)
    noise = randn_tensor((1, 4, SIZE // 8, SIZE // 8), generator=gen, dtype=torch.float32)
    out = pipe(
        prompt_embeds=cond.prompt_embeds,
        pooled_prompt_embeds=cond.pooled_prompt_embeds,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        latents=noise,
        generator=gen,
        height=SIZE,
        width=SIZE,
        output_type=output_type,
    )
    return out.images


@pytest.mark.parametrize("model,steps", [("sdxl-turbo", 1), ("sdxl-turbo", 4), ("sdxl-lightning", 2)])
def test_text_to_image_latents_equal_diffusers_pipeline(tiny_components, model, steps):
    _, text, sdxl = tiny_components
    comps = components_for(sdxl, model)
    cond = conditioning(text, 1)
    renderer = SDXLRenderer(comps, SIZE, SIZE, steps=steps, seed=7)
    ours = renderer.render_latents(cond)
    ref = reference_t2i(text, comps, cond, seed=7, steps=steps)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("decoder", ["taesd", "vae"])
def test_frame_pixels_equal_pipeline_decoded_with_same_decoder(tiny_components, decoder):
    _, text, sdxl = tiny_components
    comps = components_for(sdxl, "sdxl-turbo")
    cond = conditioning(text, 2)
    frame = SDXLRenderer(comps, SIZE, SIZE, steps=2, seed=3, decoder=decoder).render(cond, Features(), 0.0)
    ref = reference_t2i(text, comps, cond, seed=3, steps=2, output_type="np", decoder=decoder)[0]
    assert frame.image.dtype == np.uint8 and frame.image.shape == (SIZE, SIZE, 3)
    assert np.abs(frame.image.astype(int) - np.round(ref * 255).astype(int)).max() <= 1


def test_classifier_free_guidance_equals_pipeline_with_zero_negative(tiny_components):
    _, text, sdxl = tiny_components
    comps = components_for(sdxl, "sdxl-lightning")
    cond = conditioning(text, 4)
    ours = SDXLRenderer(comps, SIZE, SIZE, steps=2, guidance_scale=3.0, seed=5).render_latents(cond)
    ref = reference_t2i(text, comps, cond, seed=5, steps=2, guidance_scale=3.0)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)
    plain = SDXLRenderer(comps, SIZE, SIZE, steps=2, guidance_scale=0.0, seed=5).render_latents(cond)
    assert not torch.allclose(ours, plain, atol=1e-3)


@pytest.mark.parametrize("model,steps,feedback,k", [
    ("sdxl-turbo", 1, 0.5, 1),  # 1 call: t = 249 of 999, 749, 499, 249
    ("sdxl-turbo", 2, 0.3, 2),  # strength 0.7 → 3 grid points, capped at 2 calls: 499, 249 (not 666, 332)
    ("sdxl-turbo", 4, 0.6, 2),  # fewer calls than steps: 499, 249
    ("sdxl-lightning", 2, 0.75, 1),  # the 2-step checkpoint's own grid 999, 499: t = 499
    ("sdxl-lightning", 4, 0.3, 3),  # 749, 499, 249
])
def test_feedback_frame_equals_img2img_pipeline_on_the_models_own_grid(tiny_components, model, steps, feedback, k):
    """A feedback frame is diffusers' img2img on the previous latent with the model's distilled N-point
    grid as `num_inference_steps` and strength k/N: only timesteps the model was trained on."""
    _, text, sdxl = tiny_components
    comps = components_for(sdxl, model)
    first, second = conditioning(text, 1), conditioning(text, 2)
    renderer = SDXLRenderer(comps, SIZE, SIZE, steps=steps, feedback=feedback, seed=11)
    n = native_grid(model, steps)
    assert feedback_steps(steps, feedback, n) == k
    grid = [999.0, 749.0, 499.0, 249.0] if n == 4 else [999.0, 499.0]
    assert [s.t for s in renderer.feedback_schedule(feedback).steps] == grid[n - k:]
    prev = renderer.render_latents(first).clone()
    ours = renderer.render_latents(second)

    pipe = pipeline(StableDiffusionXLImg2ImgPipeline, text, comps)
    ref = pipe(
        image=prev,  # 4 channels: taken as latents, no VAE encode (diffusers' prepare_latents)
        prompt_embeds=second.prompt_embeds,
        pooled_prompt_embeds=second.pooled_prompt_embeds,
        num_inference_steps=n,
        strength=k / n,
        guidance_scale=0.0,
        generator=torch.Generator().manual_seed(11),
        output_type="latent",
    ).images
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(ours, SDXLRenderer(comps, SIZE, SIZE, steps=steps, seed=11).render_latents(second), atol=1e-3)


def test_lightning_one_step_is_refused_with_a_clear_error(tiny_components):
    _, _, sdxl = tiny_components
    with pytest.raises(BeatcanvasError, match="1-step checkpoint predicts x0"):
        SDXLRenderer(components_for(sdxl, "sdxl-lightning"), SIZE, SIZE, steps=1)


def test_non_finite_conditioning_keeps_the_last_frame_and_feedback_latent(tiny_components):
    """A NaN conditioning is caught on the device (no host sync): the frame repeats the last one and
    the next good frame is not blacked out by a NaN feedback latent."""
    _, text, sdxl = tiny_components
    comps = components_for(sdxl, "sdxl-turbo")
    good = conditioning(text, 1)
    bad = Conditioning(torch.full_like(good.prompt_embeds, float("nan")), good.pooled_prompt_embeds)
    r = SDXLRenderer(comps, SIZE, SIZE, steps=2, feedback=0.5, seed=3)
    last = r.render(good).image
    before = r.inputs(1).prev.clone()
    np.testing.assert_array_equal(r.render(bad).image, last)
    torch.testing.assert_close(r.inputs(1).prev, before)
    after = r.render_latents(good)
    assert torch.isfinite(after).all()


def test_feedback_zero_reproduces_text_to_image(tiny_components):
    _, text, sdxl = tiny_components
    comps = components_for(sdxl, "sdxl-turbo")
    a, b = conditioning(text, 1), conditioning(text, 2)
    with_state = SDXLRenderer(comps, SIZE, SIZE, steps=1, feedback=0.0, seed=9)
    with_state.render(a, Features(), 0.0)
    frame = with_state.render(b, Features(), 0.5)
    fresh = SDXLRenderer(comps, SIZE, SIZE, steps=1, seed=9).render(b, Features(), 0.5)
    np.testing.assert_array_equal(frame.image, fresh.image)


def test_same_seed_same_frame_and_conditioning_changes_the_frame(tiny_components):
    _, text, sdxl = tiny_components
    comps = components_for(sdxl, "sdxl-turbo")
    renderer = SDXLRenderer(comps, SIZE, SIZE, steps=2, seed=1)
    assert isinstance(renderer, Renderer)
    a = renderer.render(conditioning(text, 1), Features(), 0.0).image
    again = renderer.render(conditioning(text, 1), Features(), 0.1).image
    other = renderer.render(conditioning(text, 2), Features(), 0.2).image
    np.testing.assert_array_equal(a, again)  # steady music → steady picture
    # The tiny random decoder squashes differences into a few grey levels: compare latents as well.
    assert not np.array_equal(a, other)
    la = renderer.render_latents(conditioning(text, 1))
    assert (la - renderer.render_latents(conditioning(text, 2))).abs().mean() > 0.05
    renderer.reset(2)
    assert (la - renderer.render_latents(conditioning(text, 1))).abs().mean() > 0.1


def test_seed_drift_and_noise_reuse(tiny_components):
    _, text, sdxl = tiny_components
    comps = components_for(sdxl, "sdxl-turbo")
    cond = conditioning(text, 1)
    drift = SDXLRenderer(comps, SIZE, SIZE, steps=1, seed=1, seed_policy="drift")
    f0, f1 = drift.render(cond).image, drift.render(cond).image
    assert f0.tolist() != f1.tolist()
    drift.reset(1)
    np.testing.assert_array_equal(drift.render(cond).image, f0)  # reproducible after reset

    steady = SDXLRenderer(comps, SIZE, SIZE, steps=1, seed=1, feedback=0.5, reuse_noise=True)
    fresh = SDXLRenderer(comps, SIZE, SIZE, steps=1, seed=1, feedback=0.5, reuse_noise=False)
    for r in (steady, fresh):
        r.render(cond)
    assert not torch.allclose(steady.render_latents(cond), fresh.render_latents(cond))


def test_user_errors_are_beatcanvas_errors(tiny_components):
    _, _, sdxl = tiny_components
    with pytest.raises(BeatcanvasError, match="multiples of 8"):
        SDXLRenderer(sdxl, 60, 64)
    with pytest.raises(BeatcanvasError, match="with_vae"):
        SDXLRenderer(dataclasses.replace(sdxl, vae=None), SIZE, SIZE, decoder="vae")
    with pytest.raises(BeatcanvasError, match="backend"):
        SDXLRenderer(sdxl, SIZE, SIZE, backend="warp-drive")


def test_guidance_uses_the_negative_conditioning(tiny_components):
    _, text, sdxl = tiny_components
    comps = components_for(sdxl, "sdxl-turbo")
    cond, neg = conditioning(text, 1), conditioning(text, 3)
    with_neg = SDXLRenderer(comps, SIZE, SIZE, steps=1, guidance_scale=2.0, seed=0, negative=neg).render_latents(cond)
    pair = SDXLRenderer(comps, SIZE, SIZE, steps=1, guidance_scale=2.0, seed=0,
                        negative=(neg.prompt_embeds, neg.pooled_prompt_embeds)).render_latents(cond)
    zeros = SDXLRenderer(comps, SIZE, SIZE, steps=1, guidance_scale=2.0, seed=0).render_latents(cond)
    torch.testing.assert_close(with_neg, pair)
    assert not torch.allclose(with_neg, zeros, atol=1e-3)


def test_a_second_renderer_on_the_same_components_leaves_the_first_alone(tiny_components):
    """A rebuild (back-end switch, step-down) builds a second renderer on the running one's components:
    each has its own scheduler, so the second's set_timesteps cannot change the first's frames."""
    _, text, sdxl = tiny_components
    comps = components_for(sdxl, "sdxl-turbo")
    c = conditioning(text, 1)
    first = SDXLRenderer(comps, SIZE, SIZE, steps=2, seed=1)
    before = first.render_latents(c)
    second = SDXLRenderer(comps, SIZE, SIZE, steps=4, seed=1, feedback=0.5)
    second.render_latents(c)
    assert first._scheduler is not second._scheduler and first._scheduler is not comps.scheduler
    first.reset(1)
    torch.testing.assert_close(first.render_latents(c), before)
