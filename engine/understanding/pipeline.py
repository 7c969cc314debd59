"""Understanding: one audio window in, smoothed SDXL conditioning out.

`Understanding.step(window)` is what the live conditioning worker and the exporter call every hop:
CLAP encode → head → (style mix) → scene-change check → smoother. It is a plain object with state
(the smoother and the scene reference) and no threads; `reset()` starts a new track.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from engine.understanding.conditioning import SceneDetector, Smoother, blend
from engine.models import cache
from engine.errors import BeatcanvasError
from engine.types import Conditioning, Features, Window

log = logging.getLogger(__name__)

HEADS = ("zeroshot", "transformer")


@dataclass
class StepInfo:
    """What the last step did, for the HUD / analyze: scene change, raw (unsmoothed) conditioning."""

    scene_change: bool = False
    raw: Conditioning | None = None
    heard: Any = None  # zero-shot `Heard` (labels, valence/arousal, prompts), else None


class Understanding:
    def __init__(
        self,
        encoder,
        head,
        smoother: Smoother | None = None,
        scene: SceneDetector | None = None,
        on_scene_change: str = "glide",
        style_conditioning: Conditioning | None = None,
        audio_weight: float = 1.0,
        prompt_encoder=None,
        negative: str = "",
    ):
        if on_scene_change not in ("glide", "cut"):
            raise BeatcanvasError(f"on_scene_change must be 'glide' or 'cut', got '{on_scene_change}'")
        self.encoder = encoder
        self.head = head
        self.smoother = smoother or Smoother(2.0)
        self.scene = scene or SceneDetector()
        self.on_scene_change = on_scene_change
        self.style_conditioning = style_conditioning
        self.audio_weight = float(audio_weight)
        self.prompt_encoder = prompt_encoder
        self.negative = negative
        self.info = StepInfo()

    def step(self, window: Window, features: Features | None = None) -> Conditioning:
        emb = self.encoder.encode_audio(window)
        return self.step_embedding(emb, window.t_end, features)

    def step_embedding(self, emb: torch.Tensor, t: float, features: Features | None = None) -> Conditioning:
        """The same as `step` from a precomputed CLAP embedding (1, D) (export batches its encodes)."""
        tempo = features.tempo_bpm if features is not None else 120.0
        cond = self.head.condition(emb, t=t, tempo_bpm=tempo)
        if self.style_conditioning is not None and self.audio_weight < 1.0:
            mixed = blend(replace(self.style_conditioning, t=t), cond, self.audio_weight)
            cond = replace(mixed, labels=cond.labels, prompt=cond.prompt, audio_embedding=emb)
        changed = self.scene.update(emb, t)
        if changed and self.on_scene_change == "cut":
            self.smoother.reset(cond)
            out = cond
        else:
            out = self.smoother.update(cond)
        self.info = StepInfo(changed, cond, getattr(self.head, "last", None))
        return out

    def negative_conditioning(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The unconditional branch for presets with guidance_scale > 1 (zeros for an empty negative)."""
        if self.prompt_encoder is None:
            raise BeatcanvasError("guidance needs SDXL's text encoders; build the understanding with them")
        return self.prompt_encoder.encode_negative(self.negative or None)

    def reset(self) -> None:
        self.smoother.reset()
        self.scene.reset()


def settings_kwargs(settings) -> dict:
    """`build_understanding` keyword arguments from a preset's `conditioning` group (duck-typed)."""
    return dict(
        head=settings.head,
        head_path=settings.head_path,
        style=settings.style,
        negative=settings.negative,
        audio_weight=settings.audio_weight,
        smoothing_s=settings.smoothing_s,
        on_scene_change=settings.on_scene_change,
        scene_threshold=settings.scene_threshold,
        top_k=settings.top_k,
        temperature=settings.temperature,
        descriptors=dict(settings.descriptors),
    )


def build_understanding(
    profile: str = "tiny",
    head: str = "zeroshot",
    style: str = "",
    head_path: str | Path | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    models_dir: Path | None = None,
    cache_dir: Path | None = None,
    negative: str = "",
    audio_weight: float = 1.0,
    smoothing_s: float = 2.0,
    on_scene_change: str = "glide",
    scene_threshold: float = 0.35,
    top_k: int = 3,
    temperature: float = 0.1,
    descriptors: dict | None = None,
    sdxl_model: str = "sdxl-turbo",
    clap=None,
    text=None,
) -> Understanding:
    """Everything from a profile: CLAP, SDXL's text encoders, and the chosen head.

    `clap` / `text` may pass already-built bundles (the renderer shares SDXL's text encoders).
    A transformer head without `head_path` is randomly initialised on the tiny/random-full profiles
    (for tests and benchmarks) and an error on `real` (it has to be trained first).
    """
    from engine.understanding.clap import ClapEncoder
    from engine.models.profiles import build_clap, build_text_encoders
    from engine.understanding.prompt_encoding import PromptEncoder

    if head not in HEADS:
        raise BeatcanvasError(f"unknown head '{head}': choose one of {', '.join(HEADS)}")
    clap = clap or build_clap(profile, device=device, dtype=dtype, models_dir=models_dir)
    encoder = ClapEncoder(clap, device=device, dtype=dtype)
    need_text = head == "zeroshot" or bool(style) or bool(negative)
    prompts = None
    if need_text:
        text = text or build_text_encoders(profile, device=device, dtype=dtype, models_dir=models_dir, model=sdxl_model)
        prompts = PromptEncoder(text)
    if head == "zeroshot":
        the_head = _zeroshot(encoder, prompts, descriptors, cache_dir, top_k, temperature, style)
    else:
        the_head = _transformer(profile, head_path, encoder, text, device, dtype, models_dir, sdxl_model)
    style_cond = None
    if style and prompts is not None:
        pe, pooled = prompts.encode(style)
        style_cond = Conditioning(pe, pooled, labels={}, prompt=style)
    return Understanding(
        encoder,
        the_head,
        smoother=Smoother(smoothing_s),
        scene=SceneDetector(threshold=scene_threshold),
        on_scene_change=on_scene_change,
        style_conditioning=style_cond,
        audio_weight=audio_weight,
        prompt_encoder=prompts,
        negative=negative,
    )


def _zeroshot(encoder, prompts, descriptors, cache_dir, top_k, temperature, style):
    from engine.understanding.heads.zeroshot import ZeroShotHead

    return ZeroShotHead(
        encoder,
        prompts,
        descriptors=descriptors,
        cache_dir=cache_dir if cache_dir is not None else cache.cache_dir(),
        top_k=top_k,
        temperature=temperature,
        style=style,
    )


def _transformer(profile, head_path, encoder, text, device, dtype, models_dir, sdxl_model):
    from engine.understanding.heads.transformer import HeadConfig, TransformerHead

    if head_path:
        return TransformerHead.load(head_path, device=device, dtype=dtype)
    if profile == "real":
        raise BeatcanvasError(
            "the transformer head needs a trained checkpoint: set head_path (train one with `beatcanvas train`) "
            "or use head = \"zeroshot\""
        )
    if text is not None:
        cfg = HeadConfig.for_components(encoder.embed_dim, text)
    else:  # read the widths from the configs instead of building two text encoders
        cfg = HeadConfig.for_profile(profile, encoder.embed_dim)
    if min(cfg.widths) < 64:  # tiny widths (32) cannot split into 8 heads of useful size
        cfg = replace(cfg, heads=4)
    torch.manual_seed(0)
    head = TransformerHead(cfg)
    head = head.to(device=device, dtype=dtype) if dtype else head.to(device)
    return head.eval().requires_grad_(False)


def analyze_blocks(understanding: Understanding, blocks, hop_s: float = 5.0, sample_rate: int = 48_000,
                   window_s: float = 10.0, on_window=None) -> list[dict]:
    """Run `understanding` over streamed audio blocks every `hop_s` (windows zero-padded at the start,
    as live): per window, the time, top labels per category with weights, valence/arousal, prompts."""
    import numpy as np

    n_win, hop = int(window_s * sample_rate), max(1, int(round(hop_s * sample_rate)))
    buf = np.zeros(n_win, np.float32)  # silence before the track: early windows are zero-padded
    buf_start = -n_win  # sample index of buf[0]
    next_end, out = hop, []
    total = 0

    def emit(end: int) -> None:
        a = end - n_win - buf_start
        window = Window(buf[a : a + n_win].copy(), t_end=end / sample_rate, sample_rate=sample_rate)
        understanding.step(window)
        info = understanding.info
        row: dict = {"t": round(end / sample_rate, 3), "scene_change": info.scene_change}
        if info.heard is not None:
            row["labels"] = {c: [[lab, round(w, 3)] for lab, w in items] for c, items in info.heard.top.items()}
            row["valence"], row["arousal"] = round(info.heard.valence, 3), round(info.heard.arousal, 3)
            row["prompts"] = [[p, round(w, 3)] for p, w in info.heard.prompts]
        out.append(row)
        if on_window is not None:
            on_window(row)

    for block in blocks:
        buf = np.concatenate([buf, np.asarray(block, np.float32)])
        total += len(block)
        while next_end <= total:
            emit(next_end)
            next_end += hop
        keep = n_win + hop
        if len(buf) > keep:
            buf_start += len(buf) - keep
            buf = buf[-keep:]
    if total and next_end - hop < total:
        emit(total)  # the end of the track, unless a hop landed exactly on it
    return out
