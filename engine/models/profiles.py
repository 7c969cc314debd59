"""Component builders for the three model profiles.

- `tiny`: the real classes with tiny configs and fixed seeds (engine/models/tiny.py); seconds on a CPU.
- `random-full`: the real full-size configs shipped in engine/models/configs/ with random weights, for timing
  the true architecture on a GPU without downloads (speed does not depend on weight values).
- `real`: the published weights, found through the registry (engine/models/registry.py); never downloads.

Each builder returns a small dataclass of components, in the spirit of diffusers' pipelines:
components are passed in to whoever uses them, there are no hidden globals.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from engine.errors import BeatcanvasError

if TYPE_CHECKING:  # torch and the tiny models are imported by the builders: naming a profile stays light
    import torch

log = logging.getLogger(__name__)

Profile = Literal["tiny", "random-full", "real"]
PROFILES: tuple[str, ...] = ("tiny", "random-full", "real")
SDXL_MODELS: tuple[str, ...] = ("sdxl-turbo", "sdxl-lightning")
CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass
class ClapBundle:
    """CLAP (transformers `ClapModel`) and its processor (feature extractor + tokenizer)."""

    model: Any
    processor: Any
    name: str = "clap"

    @property
    def embed_dim(self) -> int:
        return self.model.config.projection_dim


@dataclass
class TextEncoders:
    """SDXL's two CLIP text encoders and tokenizers, named as in diffusers' SDXL pipeline."""

    tokenizer: Any
    tokenizer_2: Any
    text_encoder: Any  # CLIPTextModel
    text_encoder_2: Any  # CLIPTextModelWithProjection

    @property
    def prompt_dim(self) -> int:
        return self.text_encoder.config.hidden_size + self.text_encoder_2.config.hidden_size

    @property
    def pooled_dim(self) -> int:
        return self.text_encoder_2.config.projection_dim


@dataclass
class SDXLComponents:
    """What the few-step renderer needs: UNet, scheduler, and decoders."""

    unet: Any
    scheduler: Any
    taesd: Any  # AutoencoderTiny (TAESDXL)
    vae: Any | None  # AutoencoderKL (fp16-fix); only built when asked for
    model: str = "sdxl-turbo"
    fingerprint: str = ""  # the UNet weights' cache key (checkpoint files, or the random seed); "" = hash them

    @property
    def vae_scale_factor(self) -> int:
        return 8


def load_config(name: str) -> dict:
    """A shipped full-size config (engine/models/configs/NAME.json), without `_`-prefixed comment keys."""
    path = CONFIG_DIR / f"{name}.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BeatcanvasError(f"config {path} is missing from the installation: reinstall beatcanvas")
    return {k: v for k, v in data.items() if not k.startswith("_") or k in ("_class_name",)}


def as_profile(name: str) -> Profile:
    """`name` as a Profile, or a one-line error listing the profiles."""
    for p in get_args(Profile):
        if name == p:
            return cast(Profile, p)
    raise BeatcanvasError(f"unknown profile '{name}': choose one of {', '.join(PROFILES)}")



def _place(module: torch.nn.Module, device: str | torch.device, dtype: torch.dtype | None) -> torch.nn.Module:
    # Cast only when needed: diffusers warns on every `.to(dtype)`, even a no-op one.
    if dtype is not None and next(module.parameters()).dtype != dtype:
        module = module.to(dtype=dtype)
    return module.to(device).eval().requires_grad_(False)


def _random(cls: Any, config: Any, device: str | torch.device) -> Any:
    """A full-size model with random weights, created directly on `device` (fast on a GPU).
    `config` is a dict for diffusers classes, a config object for transformers ones."""
    import torch

    from engine.models import tiny

    torch.manual_seed(tiny.SEED)
    with torch.device(device):
        return cls.from_config(config) if hasattr(cls, "from_config") else cls(config)


def _scheduler(model: str) -> Any:
    from diffusers import EulerAncestralDiscreteScheduler, EulerDiscreteScheduler

    if model not in SDXL_MODELS:
        raise BeatcanvasError(f"unknown image model '{model}': choose one of {', '.join(SDXL_MODELS)}")
    if model == "sdxl-turbo":
        return EulerAncestralDiscreteScheduler.from_config(load_config("scheduler_turbo"))
    return EulerDiscreteScheduler.from_config(load_config("scheduler_lightning"))


def _clap_feature_extractor() -> Any:
    from transformers import ClapFeatureExtractor

    return ClapFeatureExtractor(**load_config("clap_feature_extractor"))


# ---------------------------------------------------------------------------------------------- CLAP


def build_clap(
    profile: Profile = "tiny",
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    models_dir: Path | None = None,
) -> ClapBundle:
    as_profile(profile)
    from engine.models import tiny

    from transformers import ClapConfig, ClapModel, ClapProcessor

    if profile != "real":
        if profile == "tiny":
            model = tiny.clap()
        else:
            model = _random(ClapModel, ClapConfig.from_dict(load_config("clap")), device)
        processor = ClapProcessor(feature_extractor=_clap_feature_extractor(), tokenizer=tiny.roberta_tokenizer())
    else:
        from engine.models.registry import pretrained_kwargs, resolve

        path = resolve("clap", models_dir)
        model = ClapModel.from_pretrained(path, **pretrained_kwargs("clap"))
        processor = ClapProcessor.from_pretrained(path, local_files_only=True)
    return ClapBundle(model=_place(model, device, dtype), processor=processor)


# ------------------------------------------------------------------------------- SDXL text encoders


def build_text_encoders(
    profile: Profile = "tiny",
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    models_dir: Path | None = None,
    model: str = "sdxl-turbo",
) -> TextEncoders:
    as_profile(profile)
    from engine.models import tiny

    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    if profile == "tiny":
        te, te2 = tiny.text_encoders()
        tok, tok2 = tiny.clip_tokenizer(), tiny.clip_tokenizer()
    elif profile == "random-full":
        te = _random(CLIPTextModel, CLIPTextConfig.from_dict(load_config("clip_text")), device)
        te2 = _random(CLIPTextModelWithProjection, CLIPTextConfig.from_dict(load_config("clip_text_2")), device)
        # Token ids from the tiny vocab are valid ids of the full-size embedding tables.
        tok, tok2 = tiny.clip_tokenizer(), tiny.clip_tokenizer()
    else:
        from engine.models.registry import pretrained_kwargs, resolve

        source = _text_model_source(model)
        path, kw = resolve(source, models_dir), pretrained_kwargs(source)
        tok = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer", local_files_only=True)
        tok2 = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer_2", local_files_only=True)
        te = CLIPTextModel.from_pretrained(path, subfolder="text_encoder", **kw)
        te2 = CLIPTextModelWithProjection.from_pretrained(path, subfolder="text_encoder_2", **kw)
    return TextEncoders(tok, tok2, _place(te, device, dtype), _place(te2, device, dtype))


def _text_model_source(model: str) -> str:
    """SDXL-Lightning ships only UNets: its text encoders come from the SDXL base repository."""
    return "sdxl-base" if model == "sdxl-lightning" else model


# ------------------------------------------------------------------------------------- SDXL renderer


def build_sdxl(
    profile: Profile = "tiny",
    model: str = "sdxl-turbo",
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    models_dir: Path | None = None,
    with_vae: bool = False,
    lightning_steps: int = 4,
) -> SDXLComponents:
    """UNet + scheduler + TAESDXL (+ the full fp16-fix VAE when `with_vae`)."""
    as_profile(profile)
    from engine.models import tiny

    from diffusers import AutoencoderKL, AutoencoderTiny, UNet2DConditionModel

    scheduler = _scheduler(model)
    vae = None
    fingerprint = ""
    if profile == "tiny":
        unet, taesd = tiny.unet(), tiny.taesd()
        vae = tiny.vae() if with_vae else None
    elif profile == "random-full":
        unet_config = load_config("sdxl_unet")
        if model == "sdxl-turbo":
            unet_config["sample_size"] = 64  # turbo is trained at 512²; the architecture is the same
        unet = _random(UNet2DConditionModel, unet_config, device)
        fingerprint = f"random-full/{model}/seed{tiny.SEED}"  # the weights follow from config and seed
        taesd = _random(AutoencoderTiny, load_config("taesdxl"), device)
        vae = _random(AutoencoderKL, load_config("sdxl_vae"), device) if with_vae else None
    else:
        from engine.models.registry import pretrained_kwargs, resolve
        from engine.models.cache import files_fingerprint

        if model == "sdxl-turbo":
            fingerprint = files_fingerprint([resolve("sdxl-turbo", models_dir) / "unet"])
            unet = UNet2DConditionModel.from_pretrained(
                resolve("sdxl-turbo", models_dir), subfolder="unet", **pretrained_kwargs("sdxl-turbo")
            )
        else:
            if lightning_steps == 1:
                raise BeatcanvasError("SDXL-Lightning's 1-step checkpoint predicts x0 and is not supported: "
                                      "use steps 2, 4 or 8, or sdxl-turbo for 1 step")
            unet = _lightning_unet(resolve("sdxl-base", models_dir), resolve("sdxl-lightning", models_dir), lightning_steps)
            fingerprint = files_fingerprint([resolve("sdxl-lightning", models_dir) / f"sdxl_lightning_{lightning_steps}step_unet.safetensors"])
        taesd = AutoencoderTiny.from_pretrained(resolve("taesdxl", models_dir), **pretrained_kwargs("taesdxl"))
        if with_vae:
            vae = AutoencoderKL.from_pretrained(
                resolve("sdxl-vae-fp16-fix", models_dir), **pretrained_kwargs("sdxl-vae-fp16-fix")
            )
    return SDXLComponents(
        unet=_place(unet, device, dtype),
        scheduler=scheduler,
        taesd=_place(taesd, device, dtype),
        vae=_place(vae, device, dtype) if vae is not None else None,
        model=model,
        fingerprint=fingerprint,
    )


def _lightning_unet(base_dir: Path, lightning_dir: Path, steps: int) -> Any:
    """SDXL-Lightning: the base UNet architecture with a distilled N-step checkpoint loaded into it."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import load_file

    ckpt = lightning_dir / f"sdxl_lightning_{steps}step_unet.safetensors"
    if not ckpt.is_file():
        raise BeatcanvasError(
            f"SDXL-Lightning {steps}-step UNet not found at {ckpt}: run `beatcanvas models fetch sdxl-lightning`"
        )
    import torch

    config = UNet2DConditionModel.load_config(base_dir, subfolder="unet", local_files_only=True)
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
    unet.load_state_dict(load_file(ckpt), assign=True)
    return unet


@cache
def build_tiny_all() -> tuple[ClapBundle, TextEncoders, SDXLComponents]:
    """Every tiny component at once (cached: tests share one build)."""
    return build_clap("tiny"), build_text_encoders("tiny"), build_sdxl("tiny", with_vae=True)
