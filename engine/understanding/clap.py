"""The CLAP encoder: 10-second 48 kHz windows (and descriptor text) → unit-norm embeddings.

Preprocessing is a torch port of transformers' `ClapFeatureExtractor` that runs on the model's device
(the extractor loops over 1001 frames in numpy; here it is one `torch.stft`). It uses the extractor's
own mel filter banks, so its output equals the extractor's for the same audio (tested with atol).

Determinism: the extractor crops *randomly* when audio is longer than 10 s ("rand_trunc") and, for
fusion models, marks a *random* clip as "longer" when none is. Live use must never be random, so:
the truncation mode is derived from the model (`enable_fusion` → "fusion", else "rand_trunc", the
same choice the extractor config makes for larger_clap_music), audio longer than 10 s keeps its
*latest* 10 s (the music that is playing now), and `is_longer` is always False (a window is never
longer than the model's 10 s). Shorter audio is repeat-padded exactly as the extractor does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import torch

from engine.errors import BeatcanvasError
from engine.types import SAMPLE_RATE, Window

if TYPE_CHECKING:
    from engine.models.profiles import ClapBundle

log = logging.getLogger(__name__)

AudioBatch: TypeAlias = Window | Sequence[Window] | np.ndarray | torch.Tensor | Sequence[np.ndarray]


def truncation_for(model: Any) -> str:
    """The extractor truncation mode that matches the model's audio tower (fusion or not)."""
    return "fusion" if getattr(model.config.audio_config, "enable_fusion", False) else "rand_trunc"


class ClapMel(torch.nn.Module):
    """`ClapFeatureExtractor` as a torch module: (B, samples) → (B, C, frames, mels) log-mel in dB.

    C is 4 for fusion models (the extractor stacks 4 copies for audio ≤ 10 s), else 1.
    """

    def __init__(self, extractor: Any, fusion: bool):
        super().__init__()
        self.n_fft = int(extractor.fft_window_size)
        self.hop = int(extractor.hop_length)
        self.max_samples = int(extractor.nb_max_samples)
        self.padding = str(extractor.padding)
        self.fusion = fusion
        # htk filters for fusion, slaney (librosa) for rand_trunc: the extractor's choice, copied.
        filters = extractor.mel_filters if fusion else extractor.mel_filters_slaney  # (freq, mel)
        self.register_buffer("filters", torch.from_numpy(np.asarray(filters, dtype=np.float32)), persistent=False)
        self.register_buffer("window", torch.hann_window(self.n_fft, periodic=True), persistent=False)

    def fit(self, samples: np.ndarray) -> np.ndarray:
        """One clip to exactly `max_samples`: latest 10 s if longer, the extractor's padding if shorter."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        n = self.max_samples
        if x.shape[0] > n:
            return x[-n:]
        if x.shape[0] == 0:
            return np.zeros(n, np.float32)
        if x.shape[0] < n:
            if self.padding == "repeat":
                x = np.tile(x, n // len(x) + 1)[:n]
            elif self.padding == "repeatpad":
                x = np.tile(x, n // len(x))
            x = np.pad(x, (0, n - x.shape[0]))
        return x

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        audio = audio.float()
        spec = torch.stft(
            audio,
            n_fft=self.n_fft,
            hop_length=self.hop,
            window=self.window.to(audio.device),
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )  # (B, freq, frames)
        power = spec.real.square() + spec.imag.square()
        mel = torch.einsum("fm,bft->btm", self.filters.to(audio.device), power)
        mel = 10.0 * torch.log10(mel.clamp_min(1e-10))  # power_to_db, reference 1.0, no top_db
        mel = mel.unsqueeze(1)
        return mel.expand(-1, 4, -1, -1).contiguous() if self.fusion else mel


def _as_clips(audio: AudioBatch) -> list[np.ndarray]:
    if isinstance(audio, Window):
        audio = [audio]
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().float().cpu().numpy()
    if isinstance(audio, np.ndarray):
        if audio.ndim == 1:
            return [audio]
        if audio.ndim == 2:
            return list(audio)
        raise BeatcanvasError(f"audio must be (samples,) or (batch, samples), got shape {audio.shape}: pass mono audio")
    clips = []
    for a in audio:
        if isinstance(a, Window):
            if a.sample_rate != SAMPLE_RATE:
                raise BeatcanvasError(f"window is at {a.sample_rate} Hz; CLAP needs {SAMPLE_RATE} Hz — resample it")
            a = a.samples
        clips.append(np.asarray(a, dtype=np.float32))
    if not clips:
        raise BeatcanvasError("no audio to encode: pass at least one window")
    return clips


class ClapEncoder:
    """transformers `ClapModel` → unit-norm audio and text embeddings, batched, on any device/dtype."""

    def __init__(self, bundle: ClapBundle, device: str | torch.device = "cpu", dtype: torch.dtype | None = None):
        self.bundle = bundle
        self.device = torch.device(device)
        self.model = bundle.model.to(device=self.device, dtype=dtype) if dtype else bundle.model.to(self.device)
        self.model.eval().requires_grad_(False)
        self.dtype = next(self.model.parameters()).dtype
        self.processor = bundle.processor
        self.truncation = truncation_for(self.model)
        self.mel = ClapMel(self.processor.feature_extractor, fusion=self.truncation == "fusion").to(self.device)
        self.name = bundle.name

    @property
    def embed_dim(self) -> int:
        return int(self.model.config.projection_dim)

    def features(self, audio: AudioBatch) -> torch.Tensor:
        """Log-mel input features (B, C, 1001, 64) on the device, float32."""
        clips = np.stack([self.mel.fit(c) for c in _as_clips(audio)])
        return self.mel(torch.from_numpy(clips).to(self.device))

    @torch.inference_mode()
    def encode_audio(self, audio: AudioBatch, batch_size: int = 16) -> torch.Tensor:
        """Windows or arrays (B, 480000) at 48 kHz → (B, D) float32 unit-norm embeddings."""
        clips = _as_clips(audio)
        out = []
        for i in range(0, len(clips), batch_size):
            feats = self.features(clips[i : i + batch_size]).to(self.dtype)
            is_longer = torch.zeros(feats.shape[0], 1, dtype=torch.bool, device=self.device)
            emb = _pooled(self.model.get_audio_features(input_features=feats, is_longer=is_longer))
            out.append(emb.float())
        return torch.nn.functional.normalize(torch.cat(out), dim=-1)

    @torch.inference_mode()
    def encode_text(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """Descriptor phrases → (B, D) float32 unit-norm embeddings from CLAP's text tower."""
        texts = list(texts)
        if not texts:
            raise BeatcanvasError("no text to encode: pass at least one phrase")
        tok = self.processor.tokenizer
        max_len = min(int(tok.model_max_length), int(self.model.config.text_config.max_position_embeddings) - 2)
        out = []
        for i in range(0, len(texts), batch_size):
            enc = tok(texts[i : i + batch_size], padding=True, truncation=True, max_length=max_len, return_tensors="pt")
            enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
            out.append(_pooled(self.model.get_text_features(**enc)).float())
        return torch.nn.functional.normalize(torch.cat(out), dim=-1)

    def fingerprint(self) -> str:
        """Model name + config + projection weights hash: what a descriptor-bank cache is keyed by."""
        import hashlib

        h = hashlib.sha256(self.name.encode())
        h.update(self.model.config.to_json_string(use_diff=False).encode())
        w = self.model.text_projection.state_dict()
        for k in sorted(w):
            h.update(w[k].detach().float().cpu().numpy().tobytes())
        return h.hexdigest()[:16]


def _pooled(out: Any) -> torch.Tensor:
    # transformers ≥ 5 returns BaseModelOutputWithPooling (normalized projection in pooler_output).
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class LaionClapEncoder:
    """Optional back-end: original LAION `.pt` checkpoints through the `laion_clap` package (extra `laion`).

    Same interface as `ClapEncoder`. The checkpoint is read with `torch.load(weights_only=True)`:
    never pickle code from a user file.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        amodel: str = "HTSAT-base",
        enable_fusion: bool = False,
    ):
        try:
            import laion_clap  # noqa: F401
        except ImportError as e:
            raise BeatcanvasError(
                "the laion-clap back-end needs the `laion` extra: pip install 'beatcanvas[laion]' "
                "(or use the default transformers CLAP)"
            ) from e
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise BeatcanvasError(f"LAION CLAP checkpoint not found: {path} — check the path")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable/unsafe file is a user problem
            raise BeatcanvasError(f"cannot read LAION CLAP checkpoint {path.name}: {e.__class__.__name__} — "
                                  "use an original laion-clap .pt file") from e
        state = state.get("state_dict", state)
        state = {k.removeprefix("module."): v for k, v in state.items()}
        self.model = laion_clap.CLAP_Module(enable_fusion=enable_fusion, amodel=amodel, device=str(device))
        self.model.model.load_state_dict(state, strict=False)
        self.model.model.to(device=device, dtype=dtype).eval()
        self.device = torch.device(device)
        self.name = f"laion:{path.name}"
        self.embed_dim = int(self.model.model.audio_projection[-1].out_features)

    @torch.inference_mode()
    def encode_audio(self, audio: AudioBatch, batch_size: int = 16) -> torch.Tensor:
        clips = np.stack([c[-480_000:] if len(c) >= 480_000 else np.pad(c, (0, 480_000 - len(c)))
                          for c in _as_clips(audio)])
        emb = self.model.get_audio_embedding_from_data(x=clips, use_tensor=False)
        return torch.nn.functional.normalize(torch.as_tensor(emb, dtype=torch.float32, device=self.device), dim=-1)

    @torch.inference_mode()
    def encode_text(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        emb = self.model.get_text_embedding(list(texts), use_tensor=False)
        return torch.nn.functional.normalize(torch.as_tensor(emb, dtype=torch.float32, device=self.device), dim=-1)

    def fingerprint(self) -> str:
        return self.name
