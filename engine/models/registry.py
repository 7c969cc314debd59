"""The one place that names every published model beatcanvas uses.

Each `ModelSpec` says where a model comes from (Hugging Face repo + pinned revision), under which
licence, what it is for, and exactly which files to fetch (never every variant in the repo: SDXL
repos hold 30+ GB of alternatives). `resolve` finds a model on this machine without ever touching
the network, in this order:

1. an explicit directory (`--models-dir DIR`): `DIR/<name>/` holding the files;
2. `$BEATCANVAS_MODELS`: the same layout;
3. the Hugging Face cache (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`).

Only `fetch` (the `beatcanvas models fetch` command) downloads.

SDXL's two text encoders and tokenizers live inside the SDXL repos as the subfolders `text_encoder`,
`text_encoder_2`, `tokenizer`, `tokenizer_2`: they are fetched with `sdxl-turbo`, or with
`sdxl-base` for SDXL-Lightning, which publishes only UNet checkpoints trained on SDXL base.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import BeatcanvasError

log = logging.getLogger(__name__)

ENV_MODELS_DIR = "BEATCANVAS_MODELS"

# Tokenizer files of the SDXL repos (CLIP BPE): small, always fetched whole.
_TOKENIZERS = ["tokenizer/*", "tokenizer_2/*"]
_TEXT_ENCODERS_FP16 = [
    "text_encoder/config.json",
    "text_encoder/model.fp16.safetensors",
    "text_encoder_2/config.json",
    "text_encoder_2/model.fp16.safetensors",
]


@dataclass(frozen=True)
class ModelSpec:
    """One published model: where it lives, what it may be used for, which files we need."""

    name: str
    repo_id: str
    revision: str  # a commit hash where verified, else a branch/ref
    licence: str
    licence_id: str  # the Hub's short licence tag, for narrow tables
    commercial_ok: bool
    purpose: str
    loader: str  # the class that loads it (diffusers/transformers), for humans and profiles.py
    allow_patterns: tuple[str, ...]  # what `fetch` downloads (safetensors only)
    required: tuple[str, ...]  # globs that must each match a file for the model to count as present
    subfolders: tuple[str, ...] = ()  # components inside the repo (diffusers layout), if any
    variant: str | None = None  # weights variant to pass to from_pretrained (e.g. "fp16")
    size_gb: float = 0.0  # approximate download size of `allow_patterns`
    depends_on: tuple[str, ...] = ()  # other registry entries needed to use this one
    notes: str = ""

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo_id}"


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            name="clap",
            repo_id="laion/larger_clap_music",
            # The main branch holds only a pickled pytorch_model.bin; the Hub's safetensors
            # conversion (PR #1 by SFconvertbot) holds model.safetensors of the same weights.
            revision="refs/pr/1",
            licence="Apache-2.0",
            licence_id="apache-2.0",
            commercial_ok=True,
            purpose="audio encoder: 10 s of 48 kHz audio -> 512-d CLAP embedding (and its text tower)",
            loader="transformers.ClapModel + ClapProcessor",
            allow_patterns=(
                "config.json",
                "model.safetensors",
                "preprocessor_config.json",
                "special_tokens_map.json",
                "tokenizer.json",
                "tokenizer_config.json",
                "vocab.json",
                "merges.txt",
            ),
            required=("config.json", "model.safetensors", "preprocessor_config.json", "tokenizer_config.json"),
            size_gb=0.78,
        ),
        ModelSpec(
            name="sdxl-turbo",
            repo_id="stabilityai/sdxl-turbo",
            revision="b0ff6e8c8d37d300d650d5f371c80d8bce29de92",
            licence="Stability AI Non-Commercial Research Community License (sai-nc-community)",
            licence_id="sai-nc-community",
            commercial_ok=False,
            purpose="image model: 1-4 step SDXL at 512x512 (UNet, scheduler, both CLIP text encoders and tokenizers)",
            loader="diffusers.UNet2DConditionModel + transformers.CLIPTextModel/CLIPTextModelWithProjection",
            allow_patterns=(
                "model_index.json",
                "scheduler/scheduler_config.json",
                "unet/config.json",
                "unet/diffusion_pytorch_model.fp16.safetensors",
                *_TEXT_ENCODERS_FP16,
                *_TOKENIZERS,
            ),
            required=(
                "unet/config.json",
                "unet/diffusion_pytorch_model*.safetensors",
                "text_encoder/model*.safetensors",
                "text_encoder_2/model*.safetensors",
                "tokenizer/vocab.json",
                "tokenizer_2/vocab.json",
            ),
            subfolders=("unet", "scheduler", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2"),
            variant="fp16",
            size_gb=6.8,
            notes="LICENSE.TXT at this revision is non-commercial; the model card now sends commercial users to "
            "stability.ai/license (Community License: registration, revenue cap). Not a default for paid gigs.",
        ),
        ModelSpec(
            name="sdxl-base",
            repo_id="stabilityai/stable-diffusion-xl-base-1.0",
            revision="462165984030d82259a11f4367a4eed129e94a7b",
            licence="CreativeML Open RAIL++-M",
            licence_id="openrail++",
            commercial_ok=True,
            purpose="SDXL base pieces SDXL-Lightning runs on: UNet config, scheduler, CLIP text encoders, tokenizers "
            "(not the base UNet weights)",
            loader="transformers.CLIPTextModel/CLIPTextModelWithProjection + diffusers UNet config",
            allow_patterns=(
                "model_index.json",
                "scheduler/scheduler_config.json",
                "unet/config.json",
                *_TEXT_ENCODERS_FP16,
                *_TOKENIZERS,
            ),
            required=(
                "unet/config.json",
                "text_encoder/model*.safetensors",
                "text_encoder_2/model*.safetensors",
                "tokenizer/vocab.json",
                "tokenizer_2/vocab.json",
            ),
            subfolders=("unet", "scheduler", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2"),
            variant="fp16",
            size_gb=1.6,
            notes="Open RAIL++-M: commercial use allowed, subject to its use-based restrictions (Attachment A).",
        ),
        ModelSpec(
            name="sdxl-lightning",
            repo_id="ByteDance/SDXL-Lightning",
            revision="c9a24f48e1c025556787b0c58dd67a091ece2e44",
            licence="CreativeML Open RAIL++-M",
            licence_id="openrail++",
            commercial_ok=True,
            purpose="image model: distilled 2/4/8-step SDXL UNet at 1024x1024, loaded into the SDXL base UNet "
            "architecture (EulerDiscreteScheduler, trailing timesteps)",
            loader="diffusers.UNet2DConditionModel (sdxl-base unet config) + safetensors state dict",
            allow_patterns=("sdxl_lightning_4step_unet.safetensors", "LICENSE.md"),
            required=("sdxl_lightning_*step_unet.safetensors",),
            size_gb=5.1,
            depends_on=("sdxl-base",),
            notes="Fetches the 4-step UNet (fp16, 5.1 GB); the 2- and 8-step files are siblings in the same repo.",
        ),
        ModelSpec(
            name="taesdxl",
            repo_id="madebyollin/taesdxl",
            revision="main",
            licence="MIT",
            licence_id="mit",
            commercial_ok=True,
            purpose="tiny latent decoder for SDXL latents (much faster than the full VAE)",
            loader="diffusers.AutoencoderTiny",
            allow_patterns=("config.json", "diffusion_pytorch_model.safetensors"),
            required=("config.json", "diffusion_pytorch_model*.safetensors"),
            size_gb=0.01,
        ),
        ModelSpec(
            name="sdxl-vae-fp16-fix",
            repo_id="madebyollin/sdxl-vae-fp16-fix",
            revision="main",
            licence="MIT",
            licence_id="mit",
            commercial_ok=True,
            purpose="full-quality SDXL VAE that runs in fp16 without NaNs (decoder='vae', and img2img encoding)",
            loader="diffusers.AutoencoderKL",
            allow_patterns=("config.json", "diffusion_pytorch_model.safetensors"),
            required=("config.json", "diffusion_pytorch_model*.safetensors"),
            size_gb=0.33,
        ),
    ]
}


@dataclass(frozen=True)
class ModelStatus:
    """Where (if anywhere) a model was found on this machine."""

    spec: ModelSpec
    path: Path | None
    source: str | None  # "models-dir" | "BEATCANVAS_MODELS" | "hf-cache" | None

    @property
    def present(self) -> bool:
        return self.path is not None


@dataclass
class FetchResult:
    name: str
    path: Path
    files: list[str] = field(default_factory=list)


def spec(name: str) -> ModelSpec:
    """The registry entry for `name`, or a one-line error listing the known names."""
    try:
        return MODELS[name]
    except KeyError:
        raise BeatcanvasError(f"unknown model '{name}': choose one of {', '.join(MODELS)}") from None


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment on every call (tests change it)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def pretrained_kwargs(name: str) -> dict:
    """Keyword arguments for `from_pretrained` on a resolved folder: offline, and the fp16 variant
    where that is what `fetch` downloaded (without `variant="fp16"` diffusers/transformers look for
    `diffusion_pytorch_model.safetensors` / `model.safetensors` and fail)."""
    s = spec(name)
    kwargs: dict = {"local_files_only": True}
    if s.variant:
        kwargs["variant"] = s.variant
    return kwargs


def _has_files(root: Path, s: ModelSpec) -> bool:
    """Every `required` glob matches a real file under root (a half-copied folder is not 'present')."""
    if not root.is_dir():
        return False
    for pattern in s.required:
        folder, _, leaf = pattern.rpartition("/")
        base = root / folder if folder else root
        if not base.is_dir() or not any(
            fnmatch.fnmatch(p.name, leaf) and p.is_file() for p in base.iterdir()
        ):
            return False
    return True


def _from_hf_cache(s: ModelSpec) -> Path | None:
    cache = hf_cache_dir()
    if not (cache / f"models--{s.repo_id.replace('/', '--')}").is_dir():
        return None  # skip importing huggingface_hub for the common "nothing cached" case
    from huggingface_hub import snapshot_download

    try:
        path = Path(
            snapshot_download(
                s.repo_id,
                revision=s.revision,
                cache_dir=cache,
                allow_patterns=list(s.allow_patterns),
                local_files_only=True,
            )
        )
    except Exception as e:  # LocalEntryNotFoundError and friends: simply not cached
        log.debug("%s not in HF cache %s: %s", s.name, cache, e)
        return None
    return path if _has_files(path, s) else None


def locate(name: str, models_dir: str | Path | None = None) -> ModelStatus:
    """Find `name` on this machine (explicit dir, then $BEATCANVAS_MODELS, then HF cache); never downloads."""
    s = spec(name)
    candidates: list[tuple[str, Path]] = []
    if models_dir:
        candidates.append(("models-dir", Path(models_dir).expanduser() / s.name))
    if os.environ.get(ENV_MODELS_DIR):
        candidates.append((ENV_MODELS_DIR, Path(os.environ[ENV_MODELS_DIR]).expanduser() / s.name))
    for source, path in candidates:
        if _has_files(path, s):
            return ModelStatus(s, path.resolve(), source)
        log.debug("%s not complete in %s", name, path)
    cached = _from_hf_cache(s)
    return ModelStatus(s, cached, "hf-cache" if cached else None)


def resolve(name: str, models_dir: str | Path | None = None) -> Path:
    """The local folder holding model `name`, or a BeatcanvasError that says how to get it."""
    found = locate(name, models_dir)
    if found.path is None:
        s = found.spec
        raise BeatcanvasError(
            f"model '{s.name}' ({s.repo_id}) is not on this machine: run `beatcanvas models fetch {s.name}` "
            f"(needs internet) or pass --models-dir"
        )
    return found.path


def status(models_dir: str | Path | None = None) -> list[ModelStatus]:
    """Presence of every registered model, in registry order."""
    return [locate(name, models_dir) for name in MODELS]


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    first = text[0] if text else type(e).__name__
    return (first[:160] + "...") if len(first) > 160 else first


def fetch(name: str, models_dir: str | Path | None = None, progress: bool = True) -> FetchResult:
    """Download model `name` (its `allow_patterns` only) into models_dir/<name>/ or the HF cache.

    Any failure (no internet, gated repo, missing revision) becomes one BeatcanvasError line.
    """
    s = spec(name)
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    target = Path(models_dir).expanduser() / s.name if models_dir else None
    created = target is not None and not target.exists()
    was_disabled = are_progress_bars_disabled()
    if not progress:
        disable_progress_bars()
    try:
        kwargs = dict(revision=s.revision, allow_patterns=list(s.allow_patterns))
        if target is not None:
            target.mkdir(parents=True, exist_ok=True)
            path = Path(snapshot_download(s.repo_id, local_dir=target, **kwargs))
        else:
            path = Path(snapshot_download(s.repo_id, cache_dir=hf_cache_dir(), **kwargs))
    except BeatcanvasError:
        raise
    except Exception as e:
        if created and target is not None and target.is_dir() and not any(target.iterdir()):
            target.rmdir()  # leave no empty folder that looks like a half-fetched model
        raise BeatcanvasError(
            f"could not download '{s.name}' ({s.repo_id}@{s.revision}): {type(e).__name__}: {_short(e)} "
            f"- check the internet connection, or copy the files into --models-dir DIR/{s.name}/"
        ) from e
    finally:
        if not progress and not was_disabled:
            enable_progress_bars()
    if not _has_files(path, s):
        raise BeatcanvasError(
            f"downloaded '{s.name}' to {path} but files are missing ({', '.join(s.required)}): "
            f"the repository layout may have changed; re-run with --debug and report it"
        )
    files = sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts)
    return FetchResult(s.name, path, files)
