"""The thesis head (§4.1): CLAP embedding → SDXL's 77-token text-conditioning space, learned.

Two branches, one per SDXL text encoder (768 and 1280 wide on the real models): a linear projection of
the audio embedding, repeated to 77 tokens, plus a learned positional embedding, through an 8-head
4-layer transformer encoder. The branches are concatenated to 77×2048. SDXL also needs the pooled
1280-d vector of its second encoder (the thesis left it out): a layer-normed mean of the second
branch's tokens, linearly projected.

A checkpoint is one safetensors file: the weights, plus the config as JSON in the metadata, so it
loads without pickle and without knowing the architecture in advance.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from engine.errors import BeatcanvasError
from engine.files import atomic_write
from engine.types import Conditioning

if TYPE_CHECKING:
    from engine.models.profiles import TextEncoders

FORMAT = "beatcanvas-transformer-head"
VERSION = 1


@dataclass(frozen=True)
class HeadConfig:
    audio_dim: int = 512
    widths: tuple[int, int] = (768, 1280)  # hidden sizes of text_encoder and text_encoder_2
    pooled_dim: int = 1280
    tokens: int = 77
    heads: int = 8
    layers: int = 4
    ff_mult: int = 4
    dropout: float = 0.0

    @classmethod
    def for_components(cls, audio_dim: int, text: TextEncoders, **kw: Any) -> HeadConfig:
        """Widths read from the text encoders (32/32 on the tiny profile), never hard-coded."""
        widths = (int(text.text_encoder.config.hidden_size), int(text.text_encoder_2.config.hidden_size))
        return cls(audio_dim=int(audio_dim), widths=widths, pooled_dim=int(text.pooled_dim), **kw)

    @classmethod
    def for_profile(cls, profile: str, audio_dim: int, **kw: Any) -> HeadConfig:
        """Widths read from a profile's shipped configs, without building the text encoders."""
        from engine.models import tiny
        from engine.models.profiles import load_config

        if profile == "tiny":
            return cls(audio_dim=int(audio_dim), widths=(tiny.TEXT_WIDTH, tiny.TEXT_WIDTH), pooled_dim=tiny.TEXT_WIDTH, **kw)
        c1, c2 = load_config("clip_text"), load_config("clip_text_2")
        return cls(audio_dim=int(audio_dim), widths=(c1["hidden_size"], c2["hidden_size"]), pooled_dim=c2["projection_dim"], **kw)

    @property
    def prompt_dim(self) -> int:
        return sum(self.widths)

    @classmethod
    def from_metadata(cls, text: str) -> HeadConfig:
        """The config stored in a checkpoint, checked against LIMITS before anything is allocated (a
        file saying tokens=2e8 must not try a 25 GB positional embedding). ValueError says what is off."""
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("the config is not a JSON object")
        unknown = sorted(set(raw) - set(LIMITS))
        if unknown:
            raise ValueError(f"unknown config keys {', '.join(unknown)}")
        widths = raw.get("widths", cls.widths)
        if not (isinstance(widths, (list, tuple)) and len(widths) == 2):
            raise ValueError(f"widths={widths!r} must be two integers")
        values = {**{k: v for k, v in raw.items() if k != "widths"}, "width": widths[0], "width_2": widths[1]}
        for key, value in values.items():
            lo, hi = LIMITS["widths" if key.startswith("width") else key]
            kind = float if key == "dropout" else int
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
                raise ValueError(f"{key}={value!r} is not {'a number' if kind is float else 'an integer'}")
            if not lo <= value <= hi:
                raise ValueError(f"{key}={value!r} is outside {lo}..{hi}")
        numbers: dict[str, Any] = {k: float(v) if k == "dropout" else int(v) for k, v in raw.items() if k != "widths"}
        cfg = cls(**numbers, widths=(int(widths[0]), int(widths[1])))
        if any(w % cfg.heads for w in cfg.widths):
            raise ValueError(f"widths {cfg.widths} do not split into {cfg.heads} attention heads")
        return cfg


# What a checkpoint's config may say (inclusive ranges); the real models sit well inside them.
LIMITS: dict[str, tuple[float, float]] = {
    "audio_dim": (1, 8192), "widths": (1, 8192), "pooled_dim": (1, 8192), "tokens": (1, 1024),
    "heads": (1, 64), "layers": (1, 64), "ff_mult": (1, 16), "dropout": (0.0, 1.0),
}


class Branch(nn.Module):
    def __init__(self, cfg: HeadConfig, width: int):
        super().__init__()
        self.tokens = cfg.tokens
        self.proj = nn.Linear(cfg.audio_dim, width)
        self.pos = nn.Parameter(torch.randn(1, cfg.tokens, width) * 0.02)
        layer = nn.TransformerEncoderLayer(
            width, cfg.heads, width * cfg.ff_mult, cfg.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)

    def forward(self, audio_emb: torch.Tensor) -> torch.Tensor:
        x = self.proj(audio_emb).unsqueeze(1).expand(-1, self.tokens, -1) + self.pos
        return self.encoder(x)


class TransformerHead(nn.Module):
    def __init__(self, cfg: HeadConfig):
        super().__init__()
        if any(w % cfg.heads for w in cfg.widths):
            raise BeatcanvasError(f"head widths {cfg.widths} must be divisible by heads={cfg.heads}")
        self.config = cfg
        self.branches = nn.ModuleList([Branch(cfg, w) for w in cfg.widths])
        self.pool_norm = nn.LayerNorm(cfg.widths[-1])
        self.pool = nn.Linear(cfg.widths[-1], cfg.pooled_dim)

    def forward(self, audio_emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, audio_dim) → prompt_embeds (B, 77, prompt_dim), pooled (B, pooled_dim)."""
        outs = [b(audio_emb) for b in self.branches]
        pooled = self.pool(self.pool_norm(outs[-1].mean(dim=1)))
        return torch.cat(outs, dim=-1), pooled

    @torch.inference_mode()
    def condition(self, audio_emb: torch.Tensor, t: float = 0.0, **_: object) -> Conditioning:
        p = next(self.parameters())
        pe, pooled = self(audio_emb.to(device=p.device, dtype=p.dtype))
        return Conditioning(pe, pooled, t=t, audio_embedding=audio_emb)

    # ------------------------------------------------------------------------------- checkpoint

    def save(self, path: str | Path, extra: dict[str, str] | None = None) -> Path:
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        meta = {"format": FORMAT, "version": str(VERSION), "config": json.dumps(asdict(self.config))}
        meta.update(extra or {})
        with atomic_write(path) as tmp:
            save_file(state, str(tmp), metadata=meta)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
             ) -> TransformerHead:
        from safetensors import safe_open

        path = Path(path).expanduser()
        hint = "retrain it with `beatcanvas train` or point head_path at a beatcanvas head .safetensors"
        if not path.is_file():
            raise BeatcanvasError(f"transformer head not found: {path} — {hint}")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                state = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as e:  # noqa: BLE001 - truncated/corrupt/not safetensors: all user-fixable
            raise BeatcanvasError(f"head file {path.name} is corrupted or not safetensors ({e.__class__.__name__}) — {hint}") from e
        if meta.get("format") != FORMAT:
            raise BeatcanvasError(f"{path.name} is not a beatcanvas transformer head (format={meta.get('format')!r}) — {hint}")
        try:
            cfg = HeadConfig.from_metadata(meta["config"])
        except (KeyError, TypeError, ValueError) as e:
            raise BeatcanvasError(f"head file {path.name} has an unreadable config ({e}) — {hint}") from e
        head = cls(cfg)
        try:
            head.load_state_dict(state, strict=True)
        except RuntimeError as e:
            first = str(e).splitlines()[0] if str(e) else "weights do not match"
            raise BeatcanvasError(f"head file {path.name} does not match its config: {first} — {hint}") from e
        head = head.to(device=device, dtype=dtype) if dtype else head.to(device)
        return head.eval().requires_grad_(False)
