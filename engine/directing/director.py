"""The director: the music's conditioning, mixed every frame with the scheduled style and the lyric.

The understanding stage turns the music into conditioning once per hop (0.5 s). A schedule or a
lyric must change the picture on the exact frame its time says, so the mix happens per frame, here:

    style  = the style prompts at t, slerped by their weights          (blend_weighted, slerp)
    shown  = (1 − audio_weight)·style + audio_weight·music              (blend, as the preset's style)
    shown  = (1 − w)·shown + w·lyric,  w = lyrics_weight × emphasis     (blend)

The functions are engine.understanding.conditioning's `blend` / `blend_weighted`, the ones the zero-shot head
mixes its prompts with. Prompt encodings come from the shared `PromptEncoder` (LRU-cached) and are
also kept here per text, so a song's style and lyric prompts are encoded once (`prepare` encodes
them all before the show starts).

In a directed show the director owns the style share: the understanding's own style blend must be
off (its `audio_weight` = 1), or the style would count twice.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from engine.types import Conditioning

if TYPE_CHECKING:
    from engine.understanding.prompt_encoding import PromptEncoder


@dataclass(frozen=True)
class Direction:
    """What the music is mixed with at one instant."""

    style: tuple[tuple[str, float], ...] = ()  # style prompts and their weights; "" = no style
    audio_weight: float = 1.0  # the music's share against the style
    lyric: str = ""  # the picture words of the line being sung
    lyric_weight: float = 0.0  # its share, already × emphasis
    slerp: bool = True  # style prompts blend on the sphere


class Director:
    def __init__(self, prompt_encoder: PromptEncoder) -> None:
        self.prompts = prompt_encoder
        self._encoded: dict[str, Conditioning] = {}
        self._lock = threading.Lock()
        self._last: tuple[Conditioning | None, Direction, Conditioning | None] | None = None

    def encode(self, text: str) -> Conditioning:
        hit = self._encoded.get(text)
        if hit is None:
            pe, pooled = self.prompts.encode(text)
            hit = self._encoded[text] = Conditioning(pe, pooled, prompt=text)
        return hit

    def prepare(self, texts: Iterable[str]) -> None:
        """Encode ahead of time (a miss during the show costs two text-encoder passes)."""
        missing = [t for t in dict.fromkeys(texts) if t and t not in self._encoded]
        if missing:
            pe, pooled = self.prompts.encode(missing)
            for i, text in enumerate(missing):
                self._encoded[text] = Conditioning(pe[i : i + 1], pooled[i : i + 1], prompt=text)

    def condition(self, music: Conditioning | None, d: Direction) -> Conditioning | None:
        """The conditioning to render; `music` None (before the first hop) gives style and lyric alone."""
        with self._lock:
            last = self._last
            if last is not None and last[0] is music and last[1] == d:
                return last[2]  # same hop, same instant of the schedule: nothing to redo
            out = self._mix(music, d)
            self._last = (music, d, out)
            return out

    def _mix(self, music: Conditioning | None, d: Direction) -> Conditioning | None:
        from engine.understanding.conditioning import blend, blend_weighted  # torch: only with an understanding attached

        styles = [(self.encode(text), w) for text, w in d.style if text and w > 0]
        style = blend_weighted(styles, slerp=d.slerp) if styles else None
        shown: Conditioning | None
        if style is not None and music is not None:
            shown = blend(style, music, d.audio_weight)
        else:
            shown = music if music is not None else style
        parts = [music.prompt if music is not None else "", " + ".join(t for t, w in d.style if t and w > 0)]
        if d.lyric and d.lyric_weight > 0:
            lyric = self.encode(d.lyric)
            shown = lyric if shown is None else blend(shown, lyric, d.lyric_weight)
            parts.insert(1, d.lyric)
        if shown is None:
            return None
        base = music if music is not None else shown
        return replace(shown, t=base.t, labels=base.labels, audio_embedding=base.audio_embedding,
                       prompt=" | ".join(p for p in parts if p))
