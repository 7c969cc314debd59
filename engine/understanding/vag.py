"""VAG: valence–arousal–genre similarity and prompt generation (seed thesis §3.3–3.5).

Similarity of an image prompt I to a song S:  f(I|S) = α·d(I,S) + β·g(I,S)
- d = 1 − ‖VA_I − VA_S‖ / √2, with VA in [0, 1]² as in the thesis (so d ∈ [0, 1]). beatcanvas keeps
  valence/arousal in [−1, 1] everywhere else; `va_distance_similarity` maps them to [0, 1] first.
- g = 1 for the same genre; the thesis's indicator is 0 otherwise, here a softer `related` score
  (default 0.5) is given to genres of the same family (techno vs house), 0 to the rest.

The prompt generator turns (valence, arousal/energy, tempo, genre) into an image prompt from the
tables in engine/understanding/descriptors.py. It is deterministic given a seed: the zero-shot head seeds it from
the labels it heard, so the same music gives the same words (no hop-to-hop word flicker).
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass

import torch

from engine.understanding.descriptors import GENRE_BY_NAME, MOOD_WORDS, SETTINGS, STYLES, TEMPO_WORDS

SQRT2 = math.sqrt(2.0)


def _to_unit(x: float) -> float:
    return (max(-1.0, min(1.0, float(x))) + 1.0) / 2.0


def va_distance_similarity(va_i: tuple[float, float], va_s: tuple[float, float]) -> float:
    """d = 1 − ‖VA_I − VA_S‖/√2 on [0,1]² (inputs in [−1, 1])."""
    dv = _to_unit(va_i[0]) - _to_unit(va_s[0])
    da = _to_unit(va_i[1]) - _to_unit(va_s[1])
    return 1.0 - math.hypot(dv, da) / SQRT2


def genre_similarity(genre_i: str, genre_s: str, related: float = 0.5) -> float:
    """1 for the same genre, `related` for the same family, else 0 (unknown genres: exact match only)."""
    if genre_i == genre_s:
        return 1.0
    gi, gs = GENRE_BY_NAME.get(genre_i), GENRE_BY_NAME.get(genre_s)
    if gi is not None and gs is not None and gi.family == gs.family:
        return related
    return 0.0


def vag_similarity(
    va_i: tuple[float, float],
    genre_i: str,
    va_s: tuple[float, float],
    genre_s: str,
    alpha: float = 0.5,
    beta: float = 0.5,
    related: float = 0.5,
) -> float:
    """f(I|S) = α·d + β·g."""
    return alpha * va_distance_similarity(va_i, va_s) + beta * genre_similarity(genre_i, genre_s, related)


def va_unit(va: torch.Tensor) -> torch.Tensor:
    """(N, 2) valence/arousal in [−1, 1] → the thesis's [0, 1]² (clamped)."""
    return (va.clamp(-1, 1) + 1) / 2


def genre_table(
    genres_a: list[str], genres_b: list[str], related: float = 0.5, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`genre_similarity` over the distinct genres only: a (G, G) table and each list's indices into it,
    so `table[ia][:, ib]` is the (A, B) genre term for G² calls instead of A·B."""
    names = sorted(set(genres_a) | set(genres_b))
    col = {g: i for i, g in enumerate(names)}
    table = torch.tensor([[genre_similarity(x, y, related) for y in names] for x in names], dtype=dtype)
    ia = torch.tensor([col[g] for g in genres_a], dtype=torch.long)
    ib = torch.tensor([col[g] for g in genres_b], dtype=torch.long)
    return table, ia, ib


def vag_pairs(
    ua: torch.Tensor, ia: torch.Tensor, ub: torch.Tensor, ib: torch.Tensor, table: torch.Tensor,
    alpha: float = 0.5, beta: float = 0.5,
) -> torch.Tensor:
    """f(I|S) = α·d + β·g for all pairs of prepared inputs: `va_unit` points and `genre_table` indices."""
    d = 1 - torch.cdist(ua, ub) / SQRT2
    return alpha * d + beta * table[ia][:, ib]


def vag_similarity_matrix(
    va_a: torch.Tensor,
    genres_a: list[str],
    va_b: torch.Tensor,
    genres_b: list[str],
    alpha: float = 0.5,
    beta: float = 0.5,
    related: float = 0.5,
) -> torch.Tensor:
    """All pairs at once, (A, 2) × (B, 2) → (A, B), computed in float64. Training's NegativeSampler
    keeps the prepared inputs and calls `vag_pairs` per batch instead of building this whole matrix."""
    table, ia, ib = genre_table(genres_a, genres_b, related, torch.float64)
    return vag_pairs(va_unit(va_a).double(), ia, va_unit(va_b).double(), ib, table, alpha, beta).to(va_a.dtype)


def mood_region(valence: float, arousal: float, neutral: float = 0.15) -> str:
    """The MOOD_WORDS key for a VA point (a small neutral disc around the centre)."""
    if math.hypot(valence, arousal) < neutral:
        return "neutral"
    return f"{'bright' if valence >= 0 else 'dark'}-{'energetic' if arousal >= 0 else 'calm'}"


def tempo_band(tempo_bpm: float) -> int:
    """Index into TEMPO_WORDS of a tempo (bands end at 80, 110 and 135 BPM)."""
    for i, (upper, _) in enumerate(TEMPO_WORDS):
        if tempo_bpm < upper:
            return i
    return len(TEMPO_WORDS) - 1


def tempo_words(tempo_bpm: float) -> tuple[str, ...]:
    return TEMPO_WORDS[tempo_band(tempo_bpm)][1]


class TempoHysteresis:
    """Keeps the tempo words steady: the band changes only once the tempo is `margin_bpm` past one of
    its edges, so a tracker that jitters around 135 BPM does not flip the prompt every hop. `steady`
    returns the tempo clamped into the band it holds."""

    def __init__(self, margin_bpm: float = 4.0) -> None:
        self.margin = margin_bpm
        self.band: int | None = None

    def steady(self, tempo_bpm: float) -> float:
        band = tempo_band(tempo_bpm)
        if self.band is not None and band != self.band:
            lower = TEMPO_WORDS[self.band - 1][0] if self.band > 0 else float("-inf")
            upper = TEMPO_WORDS[self.band][0] if self.band < len(TEMPO_WORDS) - 1 else float("inf")
            if lower - self.margin <= tempo_bpm < upper + self.margin:
                return min(max(tempo_bpm, lower), upper - 1e-3)  # still inside the held band
        self.band = band
        return tempo_bpm

    def reset(self) -> None:
        self.band = None


def stable_seed(*parts: object) -> int:
    """A seed from values (not Python's salted hash): same labels → same seed in every process."""
    return zlib.crc32("|".join(map(str, parts)).encode())


@dataclass(frozen=True)
class VAGPrompt:
    text: str
    genre: str
    valence: float
    arousal: float
    tempo_bpm: float


def generate_prompt(
    valence: float,
    arousal: float,
    tempo_bpm: float = 120.0,
    genre: str | None = None,
    seed: int = 0,
    extra: tuple[str, ...] = (),
    style: str | None = None,
) -> VAGPrompt:
    """An image prompt for music at (valence, arousal) in [−1, 1], at `tempo_bpm`, of `genre`.

    "<style> of <setting>, <genre words>, <mood words>, <tempo word>, <extra...>". `style` overrides
    the drawn art style (a preset's style text is joined by the caller instead).
    """
    rng = random.Random(seed)
    g = GENRE_BY_NAME.get(genre or "")
    setting = rng.choice(g.settings if g and rng.random() < 0.8 else SETTINGS)
    art = style or rng.choice(STYLES)
    moods = rng.sample(MOOD_WORDS[mood_region(valence, arousal)], 2)
    parts = [f"{art} of {setting}"]
    if g is not None:
        parts.append(rng.choice(g.words))
    elif genre:
        parts.append(f"{genre} aesthetic")
    parts += moods
    parts.append(rng.choice(tempo_words(tempo_bpm)))
    parts += [e for e in extra if e]
    return VAGPrompt(", ".join(parts), genre or "", float(valence), float(arousal), float(tempo_bpm))
