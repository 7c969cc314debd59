"""The zero-shot head: no training, public weights, and labels that explain what it heard.

1. A bank of musical descriptors (genre, mood, energy, instrument, era; engine/understanding/descriptors.py, with
   preset overrides) is embedded once with CLAP's text tower and cached on disk as safetensors, keyed
   by the CLAP fingerprint (name + config + projection weights) and a hash of the bank.
2. Per audio embedding: cosine similarities → softmax with a temperature, per category → top-k labels.
3. Valence/arousal: the probability-weighted VA points of the moods (and the energy words' arousal).
4. Each top genre gives a VAG prompt (engine/understanding/vag.py) built from the top mood/instrument labels and the
   VA estimate, seeded by the labels so the words are stable while the music is; the preset's style
   text is joined to it.
5. The prompts go through SDXL's text encoders (engine/understanding/prompt_encoding.py, LRU-cached) and their
   genre-weighted blend (`engine.understanding.conditioning.mix_prompts`) is the `Conditioning`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from engine.files import atomic_write
from engine.understanding.conditioning import mix_prompts
from engine.types import Conditioning
from engine.understanding.descriptors import ENERGY, MOODS, bank_with_overrides
from engine.understanding.vag import generate_prompt, mood_region, stable_seed

if TYPE_CHECKING:
    from engine.understanding.clap import ClapEncoder, LaionClapEncoder
    from engine.understanding.prompt_encoding import PromptEncoder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Heard:
    """What the head heard in one window: top labels per category, VA estimate, prompts used."""

    top: dict[str, list[tuple[str, float]]]
    valence: float
    arousal: float
    prompts: list[tuple[str, float]] = field(default_factory=list)

    @property
    def labels(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for items in self.top.values():
            for label, w in items:
                out.setdefault(label, round(float(w), 4))
        return out


def bank_hash(bank: dict[str, dict[str, str]]) -> str:
    return hashlib.sha256(json.dumps(bank, sort_keys=True).encode()).hexdigest()[:16]


class ZeroShotHead:
    def __init__(
        self,
        encoder: ClapEncoder | LaionClapEncoder,
        prompt_encoder: PromptEncoder | None = None,
        descriptors: dict[str, tuple[str, ...] | list[str]] | None = None,
        cache_dir: str | Path | None = None,
        top_k: int = 3,
        temperature: float = 0.1,
        style: str = "",
    ):
        self.encoder = encoder
        self.prompts = prompt_encoder
        self.bank = bank_with_overrides(descriptors)
        self.top_k = top_k
        self.temperature = temperature
        self.style = style.strip()
        self.categories = list(self.bank)
        self.labels = {c: list(self.bank[c]) for c in self.categories}
        phrases = [p for c in self.categories for p in self.bank[c].values()]
        self.slices: dict[str, slice] = {}
        start = 0
        for c in self.categories:
            self.slices[c] = slice(start, start + len(self.bank[c]))
            start += len(self.bank[c])
        self.text_embeddings = self._embed_bank(phrases, cache_dir)  # (N, D) unit-norm, float32

    # ----------------------------------------------------------------------------- descriptor bank

    def cache_path(self, cache_dir: str | Path) -> Path:
        return Path(cache_dir) / f"clap-bank-{self.encoder.fingerprint()}-{bank_hash(self.bank)}.safetensors"

    def _embed_bank(self, phrases: list[str], cache_dir: str | Path | None) -> torch.Tensor:
        from safetensors.torch import load_file, save_file

        path = self.cache_path(cache_dir) if cache_dir is not None else None
        if path is not None and path.is_file():
            try:
                emb = load_file(str(path))["embeddings"]
                if emb.shape[0] == len(phrases):
                    log.debug("descriptor bank from cache %s", path)
                    return emb.to(self.encoder.device)
            except Exception as e:  # noqa: BLE001 - a bad cache is rebuilt, never fatal
                log.warning("descriptor cache %s unreadable (%s); rebuilding", path, e)
        emb = self.encoder.encode_text(phrases).float()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(path) as tmp:
                save_file({"embeddings": emb.cpu().contiguous()}, str(tmp), metadata={"bank": bank_hash(self.bank)})
        return emb

    # ----------------------------------------------------------------------------------- listening

    def probabilities(self, audio_emb: torch.Tensor) -> dict[str, torch.Tensor]:
        """category → (B, n) softmax(similarity / temperature), on the host: the similarities come back
        in one copy (one host sync per hop) and the few hundred numbers after that are host work."""
        sims = (audio_emb.float().to(self.text_embeddings.device) @ self.text_embeddings.T).cpu()
        return {c: torch.softmax(sims[:, s] / self.temperature, dim=-1) for c, s in self.slices.items()}

    def hear(self, audio_emb: torch.Tensor, tempo_bpm: float = 120.0) -> list[Heard]:
        """Per batch item: top-k labels (weights renormalised within the top k), VA, prompts."""
        probs = self.probabilities(audio_emb)
        out = []
        for b in range(audio_emb.shape[0]):
            top: dict[str, list[tuple[str, float]]] = {}
            for c in self.categories:
                p = probs[c][b]
                k = min(self.top_k, p.numel())
                w, idx = p.topk(k)
                w = w / w.sum()
                top[c] = [(self.labels[c][i], float(x)) for i, x in zip(idx.tolist(), w)]
            v, a = self._valence_arousal({c: probs[c][b] for c in probs})
            out.append(Heard(top, v, a, self._prompts(top, v, a, tempo_bpm)))
        return out

    def _valence_arousal(self, probs: dict[str, torch.Tensor]) -> tuple[float, float]:
        v = a = 0.0
        if "mood" in probs and all(m in MOODS for m in self.labels["mood"]):
            va = torch.tensor([MOODS[m] for m in self.labels["mood"]], device=probs["mood"].device)
            v, a = (probs["mood"].float() @ va).tolist()
        if "energy" in probs and all(e in ENERGY for e in self.labels["energy"]):
            ea = torch.tensor([ENERGY[e] for e in self.labels["energy"]], device=probs["energy"].device)
            a = 0.5 * a + 0.5 * float(probs["energy"].float() @ ea)
        return float(v), float(a)

    def _prompts(self, top: dict[str, list[tuple[str, float]]], valence: float, arousal: float, tempo_bpm: float) -> list[tuple[str, float]]:
        mood = top["mood"][0][0] if "mood" in top else ""
        extra = tuple(top[c][0][0] for c in ("instrument", "era") if c in top)
        anchors = top.get("genre") or next(iter(top.values()))
        prompts = []
        for genre, w in anchors:
            seed = stable_seed(genre, mood, mood_region(valence, arousal), *extra)
            text = generate_prompt(valence, arousal, tempo_bpm, genre, seed=seed, extra=extra).text
            if self.style:
                text = f"{text}, {self.style}"
            prompts.append((text, w))
        return prompts

    # -------------------------------------------------------------------------------- conditioning

    @torch.inference_mode()
    def condition(self, audio_emb: torch.Tensor, t: float = 0.0, tempo_bpm: float = 120.0) -> Conditioning:
        """(1, D) audio embedding → Conditioning: the weighted blend of the top prompts' encodings."""
        if self.prompts is None:
            raise RuntimeError("ZeroShotHead needs a PromptEncoder to produce conditioning")
        heard = self.hear(audio_emb[:1], tempo_bpm)[0]
        self.last = heard
        mixed = mix_prompts(self.prompts, heard.prompts, t=t)  # the one prompt mixer (also schedules, lyrics)
        return replace(mixed, labels=heard.labels, prompt=heard.prompts[0][0], audio_embedding=audio_emb[:1])
