"""Understanding: one audio window in, smoothed SDXL conditioning out.

`Understanding.step(window, features)` is what the live conditioning worker and the exporter call
every hop: CLAP encode → head → (style mix) → scene-change check → smoother. It is a plain object with
state (the smoother and the scene reference) and no threads; `reset()` starts a new track. The
measured tempo in `features` picks the zero-shot prompts' tempo words.

`UnderstandingSettings` is everything a preset's `[conditioning]` section says, as plain data: the
engine never reads a preset. `configure(settings)` applies a change in place (style, negative,
smoothing, scene rules, zero-shot knobs, even a new descriptor bank) and names what only a rebuild can
change (another head).

A non-finite value (a NaN burst in the audio, an overflow in fp16) never becomes the show's state: a
step whose conditioning is not finite raises and leaves the smoother and scene reference as they were.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch

from engine.errors import BeatcanvasError
from engine.models import cache
from engine.models.profiles import Profile
from engine.types import Conditioning, Features, Reconfigured, Window
from engine.understanding.conditioning import blend, is_finite
from engine.understanding.heads.transformer import TransformerHead
from engine.understanding.heads.zeroshot import ZeroShotHead
from engine.understanding.settings import HEADS, REBUILD_KEYS, UnderstandingSettings
from engine.understanding.smoother import SceneDetector, Smoother
from engine.understanding.vag import TempoHysteresis

log = logging.getLogger(__name__)

DEFAULT_TEMPO_BPM = 120.0  # before the tracker has measured one


@dataclass
class StepInfo:
    """What the last step did, for the HUD / analyze: scene change, raw (unsmoothed) conditioning."""

    scene_change: bool = False
    raw: Conditioning | None = None
    heard: Any = None  # zero-shot `Heard` (labels, valence/arousal, prompts), else None


Head = ZeroShotHead | TransformerHead


@dataclass
class Understanding:
    encoder: Any  # engine.understanding.clap.ClapEncoder (or the laion back-end)
    head: Head
    settings: UnderstandingSettings = field(default_factory=UnderstandingSettings)
    prompt_encoder: Any = None  # engine.understanding.prompt_encoding.PromptEncoder; None: no text
    cache_dir: Path | None = None
    smoother: Smoother = field(init=False)
    scene: SceneDetector = field(init=False)
    style_conditioning: Conditioning | None = field(init=False, default=None)
    info: StepInfo = field(init=False, default_factory=StepInfo)
    tempo: TempoHysteresis = field(init=False, default_factory=TempoHysteresis)  # steady tempo words

    def __post_init__(self) -> None:
        s = self.settings
        if s.on_scene_change not in ("glide", "cut"):
            raise BeatcanvasError(f"on_scene_change must be 'glide' or 'cut', got '{s.on_scene_change}'")
        self.smoother = Smoother(s.smoothing_s)
        self.scene = SceneDetector(threshold=s.scene_threshold)
        self.style_conditioning = self._style(s.style)

    # -- the hop ------------------------------------------------------------------------------------

    def step(self, window: Window, features: Features | None = None) -> Conditioning:
        emb = self.encoder.encode_audio(window)
        return self.step_embedding(emb, window.t_end, features)

    def step_embedding(self, emb: torch.Tensor, t: float, features: Features | None = None) -> Conditioning:
        """The same as `step` from a precomputed CLAP embedding (1, D) (export batches its encodes)."""
        emb_host = emb.detach().float().cpu()  # one wait for CLAP; the checks below read host memory
        if not bool(torch.isfinite(emb_host).all()):
            raise BeatcanvasError("the audio embedding is not finite (NaN/Inf in the audio?); kept the last good conditioning")
        tempo = self.tempo.steady(features.tempo_bpm if features is not None and features.tempo_bpm > 0 else DEFAULT_TEMPO_BPM)
        cond = self.head.condition(emb, t=t, tempo_bpm=tempo)
        weight = self.settings.audio_weight
        if features is not None:  # the subject stem (default: the voice) pulls the picture towards the music
            weight += (1.0 - weight) * min(1.0, 0.5 * self.settings.stems.drive(features.stems, "subject"))
        if self.style_conditioning is not None and weight < 1.0:
            mixed = blend(replace(self.style_conditioning, t=t), cond, weight)
            cond = replace(mixed, labels=cond.labels, prompt=cond.prompt, audio_embedding=emb)
        if not is_finite(cond):
            raise BeatcanvasError("the head's conditioning is not finite; kept the last good conditioning")
        changed = self.scene.update(emb_host, t)
        if changed and self.settings.on_scene_change == "cut":
            self.smoother.reset(cond)
            out = cond
        else:
            out = self.smoother.update(cond)
        self.info = StepInfo(changed, cond, self.head.last if isinstance(self.head, ZeroShotHead) else None)
        return out

    def negative_conditioning(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The unconditional branch for presets with guidance_scale > 1 (zeros for an empty negative)."""
        if self.prompt_encoder is None:
            raise BeatcanvasError("guidance needs SDXL's text encoders; build the understanding with them")
        pair: tuple[torch.Tensor, torch.Tensor] = self.prompt_encoder.encode_negative(self.settings.negative or None)
        return pair

    def reset(self) -> None:
        self.smoother.reset()
        self.scene.reset()
        self.tempo.reset()

    # -- settings -----------------------------------------------------------------------------------

    def configure(self, settings: UnderstandingSettings) -> Reconfigured:
        """Apply a changed `[conditioning]` section; what cannot change in place is named in `rebuild`
        and left as it was."""
        old = self.settings
        changed = settings.changed(old)
        rebuild = tuple(k for k in changed if k in REBUILD_KEYS)
        needs_text = (settings.style or settings.negative) and self.prompt_encoder is None
        if needs_text and ("style" in changed or "negative" in changed):
            rebuild += ("style" if settings.style else "negative",)
        if rebuild:
            return Reconfigured(rebuild=rebuild)
        if "descriptors" in changed and isinstance(self.head, ZeroShotHead):
            self.head = ZeroShotHead(self.encoder, self.prompt_encoder, descriptors=dict(settings.descriptors),
                                     cache_dir=self.cache_dir, top_k=settings.top_k,
                                     temperature=settings.temperature, style=settings.style)
        if isinstance(self.head, ZeroShotHead):
            self.head.top_k, self.head.temperature, self.head.style = settings.top_k, settings.temperature, settings.style.strip()
        if "style" in changed:
            self.style_conditioning = self._style(settings.style)
        self.smoother.tau = float(settings.smoothing_s)
        self.scene.threshold = float(settings.scene_threshold)
        self.settings = settings
        return Reconfigured(applied=changed)

    def _style(self, style: str) -> Conditioning | None:
        if not style or self.prompt_encoder is None:
            return None
        pe, pooled = self.prompt_encoder.encode(style)
        return Conditioning(pe, pooled, labels={}, prompt=style)


def build_understanding(
    profile: Profile = "tiny",
    settings: UnderstandingSettings | None = None,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    models_dir: Path | None = None,
    cache_dir: Path | str | None = None,
    sdxl_model: str = "sdxl-turbo",
    clap: Any = None,
    text: Any = None,
    **knobs: Any,
) -> Understanding:
    """Everything from a profile: CLAP, SDXL's text encoders, and the chosen head.

    `knobs` override single fields of `settings` (`head="transformer"`). `clap` / `text` may pass
    already-built bundles (the renderer shares SDXL's text encoders). A transformer head without
    `head_path` is randomly initialised on the tiny/random-full profiles (for tests and benchmarks)
    and an error on `real` (it has to be trained first).
    """
    from engine.models.profiles import build_clap, build_text_encoders
    from engine.understanding.clap import ClapEncoder
    from engine.understanding.prompt_encoding import PromptEncoder

    s = replace(settings or UnderstandingSettings(), **knobs)
    if s.head not in HEADS:
        raise BeatcanvasError(f"unknown head '{s.head}': choose one of {', '.join(HEADS)}")
    folder = Path(cache_dir) if cache_dir is not None else cache.cache_dir()
    clap = clap or build_clap(profile, device=device, dtype=dtype, models_dir=models_dir)
    encoder = ClapEncoder(clap, device=device, dtype=dtype)
    prompts = None
    if s.head == "zeroshot" or s.style or s.negative:
        text = text or build_text_encoders(profile, device=device, dtype=dtype, models_dir=models_dir, model=sdxl_model)
        prompts = PromptEncoder(text)
    head: Head
    if s.head == "zeroshot":
        head = ZeroShotHead(encoder, prompts, descriptors=dict(s.descriptors), cache_dir=folder,
                            top_k=s.top_k, temperature=s.temperature, style=s.style)
    else:
        head = _transformer(profile, s.head_path, encoder, text, device, dtype)
    return Understanding(encoder, head, s, prompt_encoder=prompts, cache_dir=folder)


def _transformer(profile: Profile, head_path: str | Path | None, encoder: Any, text: Any,
                 device: str | torch.device, dtype: torch.dtype | None) -> TransformerHead:
    from engine.understanding.heads.transformer import HeadConfig

    if head_path:
        head = TransformerHead.load(head_path, device=device, dtype=dtype)
        if head.config.audio_dim != encoder.embed_dim:
            raise BeatcanvasError(
                f"head file {Path(head_path).name} expects {head.config.audio_dim}-d audio embeddings but this CLAP "
                f"gives {encoder.embed_dim} — train a head for this CLAP model (`beatcanvas train`) or use head = \"zeroshot\""
            )
        return head
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
