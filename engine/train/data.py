"""Training data for the transformer head: an audio manifest, or text-distillation pairs.

Audio (the thesis's way, §5): a CSV with one song per row — `path, valence, energy, genre[, prompt]
[, tempo]`. Valence and energy are in [-1, 1] (energy is arousal); genre is one of the descriptor
tables' genres. A missing prompt is written by the VAG prompt generator. Only the middle 3/5 of each
song is used (§5.2: intros and outros say little about a song), and the train/validation split is by
*song*, stratified by valence bin × energy bin × genre (§5.1), so validation hears no song it trained on.

Text distillation (no audio needed): CLAP maps audio and text into one space, so the head can learn
from CLAP *text* embeddings of music descriptions ("energetic euphoric techno music with synthesizer,
fast tempo") paired with the image prompt the VAG generator writes for the same valence, arousal,
tempo and genre — then run on CLAP *audio* embeddings live.

Every manifest row is checked before any training starts; the first bad one is reported by row
number (as a spreadsheet shows it: the header is row 1) with what to fix.
"""

from __future__ import annotations

import csv
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from engine.understanding.descriptors import ENERGY, GENRE_BY_NAME, GENRES, INSTRUMENTS, MOODS
from engine.errors import BeatcanvasError
from engine.understanding.vag import generate_prompt, stable_seed

if TYPE_CHECKING:
    from engine.train.augment import AugmentConfig
    from engine.understanding.clap import ClapEncoder

REQUIRED = ("path", "valence", "energy", "genre")
OPTIONAL = ("prompt", "tempo")


@dataclass(frozen=True)
class Song:
    path: Path
    valence: float
    energy: float
    genre: str
    prompt: str
    tempo: float
    row: int  # CSV row number (header = 1), for messages


def _float(raw: str, name: str, where: str, lo: float, hi: float) -> float:
    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise BeatcanvasError(f"{where}: {name} {raw!r} is not a number — use a value in [{lo:g}, {hi:g}]") from None
    if not math.isfinite(v) or not lo <= v <= hi:
        raise BeatcanvasError(f"{where}: {name} {raw!r} is outside [{lo:g}, {hi:g}] — rescale it")
    return v


def read_manifest(path: str | Path, check_files: bool = True) -> list[Song]:
    """Read and validate a manifest CSV. Relative audio paths are relative to the manifest's folder."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BeatcanvasError(f"manifest not found: {path} — pass a CSV with columns {', '.join(REQUIRED)}[, prompt]")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise BeatcanvasError(f"cannot read manifest {path.name} ({e.__class__.__name__}) — save it as UTF-8 CSV") from e
    reader = csv.DictReader(text.splitlines())
    cols = [c.strip().lower() for c in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        raise BeatcanvasError(
            f"{path.name}: header lacks column(s) {', '.join(missing)} — the first row must name "
            f"{', '.join(REQUIRED)} (optional: {', '.join(OPTIONAL)})"
        )
    songs: list[Song] = []
    seen: dict[Path, int] = {}
    for i, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if isinstance(v, str) or v is None}
        where = f"{path.name} row {i}"
        if not any(row.values()):
            continue  # blank line
        if None in raw:  # more cells than header columns
            raise BeatcanvasError(f"{where}: more cells than header columns — quote fields that contain commas")
        if not row.get("path"):
            raise BeatcanvasError(f"{where}: empty path — give the audio file for this song")
        audio = Path(row["path"]).expanduser()
        audio = audio if audio.is_absolute() else path.parent / audio
        if check_files and not audio.is_file():
            raise BeatcanvasError(f"{where}: audio file not found: {audio} — fix the path (relative paths are relative to the manifest)")
        if audio in seen:
            raise BeatcanvasError(f"{where}: {audio.name} is already listed in row {seen[audio]} — list each song once")
        seen[audio] = i
        valence = _float(row.get("valence", ""), "valence", where, -1, 1)
        energy = _float(row.get("energy", ""), "energy", where, -1, 1)
        genre = row.get("genre", "").lower()
        if genre not in GENRE_BY_NAME:
            near = _nearest(genre)
            raise BeatcanvasError(f"{where}: unknown genre {row.get('genre')!r}{near} — use one of `beatcanvas train --list-genres`")
        tempo = _float(row["tempo"], "tempo", where, 20, 400) if row.get("tempo") else 120.0
        prompt = row.get("prompt") or generate_prompt(valence, energy, tempo, genre, seed=stable_seed(audio.name)).text
        songs.append(Song(audio, valence, energy, genre, prompt, tempo, i))
    if not songs:
        raise BeatcanvasError(f"{path.name} lists no songs — add one row per song under the header")
    return songs


def _nearest(genre: str) -> str:
    import difflib

    m = difflib.get_close_matches(genre, list(GENRE_BY_NAME), n=1)
    return f" (did you mean {m[0]!r}?)" if m else ""


def middle_three_fifths(samples: np.ndarray) -> np.ndarray:
    """The song without its first and last fifth (thesis §5.2)."""
    n = len(samples)
    return samples[n // 5 : n - n // 5]


def value_bin(v: float, bins: int = 3) -> int:
    """[-1, 1] → 0..bins-1 (low / mid / high for 3)."""
    return min(bins - 1, int((v + 1.0) / 2.0 * bins))


def stratified_split(
    keys: list[tuple], val_fraction: float = 0.15, seed: int = 0
) -> tuple[list[int], list[int]]:
    """Indices → (train, val), each stratum (a key) split in proportion, rounding by a running total
    so small strata still add up to the requested fraction overall. Every index lands in exactly one side."""
    if not 0.0 <= val_fraction < 1.0:
        raise BeatcanvasError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        groups[k].append(i)
    rng = random.Random(seed)
    train, val = [], []
    carry = 0.0
    for k in sorted(groups, key=repr):
        idx = groups[k]
        rng.shuffle(idx)
        carry += val_fraction * len(idx)
        take = min(len(idx), int(carry))
        carry -= take
        val += idx[:take]
        train += idx[take:]
    if val_fraction > 0 and not val and len(train) > 1:
        val.append(train.pop())
    return sorted(train), sorted(val)


def song_strata(songs: list[Song], bins: int = 3) -> list[tuple]:
    return [(value_bin(s.valence, bins), value_bin(s.energy, bins), s.genre) for s in songs]


# ------------------------------------------------------------------------------- text distillation


@dataclass(frozen=True)
class TextPair:
    description: str  # what CLAP's text tower reads (a music caption)
    prompt: str  # the image prompt the head should produce
    valence: float
    arousal: float
    genre: str


def _tempo_phrase(bpm: float) -> str:
    return "slow tempo" if bpm < 90 else "medium tempo" if bpm < 125 else "fast tempo"


def text_distill_pairs(n: int, seed: int = 0) -> list[TextPair]:
    """`n` (music caption, image prompt) pairs drawn from the descriptor tables, deterministic in `seed`.

    A mood fixes valence; an energy word close to the mood's arousal fixes arousal; tempo follows
    arousal; one or two instruments colour the caption. The image prompt comes from the VAG generator
    at the same (valence, arousal, tempo, genre), so caption and picture agree on what VAG measures.
    """
    if n < 2:
        raise BeatcanvasError(f"text distillation needs at least 2 pairs (got {n}) — raise --pairs")
    rng = random.Random(seed)
    moods, energies = list(MOODS.items()), list(ENERGY.items())
    pairs = []
    for i in range(n):
        genre = rng.choice(GENRES).name
        mood, (valence, mood_arousal) = rng.choice(moods)
        target = max(-1.0, min(1.0, mood_arousal + rng.gauss(0, 0.25)))
        energy, arousal = min(energies, key=lambda e: abs(e[1] - target))
        arousal = (arousal + mood_arousal) / 2
        tempo = max(60.0, min(180.0, 115 + 45 * arousal + rng.gauss(0, 12)))
        inst = rng.sample(INSTRUMENTS, rng.choice((1, 2)))
        desc = f"{energy} {mood} {genre} music with {' and '.join(inst)}, {_tempo_phrase(tempo)}"
        prompt = generate_prompt(valence, arousal, tempo, genre, seed=stable_seed(seed, i)).text
        pairs.append(TextPair(desc, prompt, float(valence), float(arousal), genre))
    return pairs


# ---------------------------------------------------------------------------- what the loop consumes


@dataclass
class PromptBank:
    """Deduplicated prompts with the (valence, arousal, genre) each was written for."""

    texts: list[str]
    va: torch.Tensor  # (P, 2)
    genres: list[str]

    @classmethod
    def from_items(cls, prompts: list[str], va: list[tuple[float, float]], genres: list[str]) -> tuple[PromptBank, torch.Tensor]:
        """Returns the bank and, per item, the index of its prompt in it."""
        index: dict[str, int] = {}
        texts: list[str] = []
        bva: list[tuple[float, float]] = []
        bg: list[str] = []
        item_idx: list[int] = []
        for p, v, g in zip(prompts, va, genres):
            if p not in index:
                index[p] = len(texts)
                texts.append(p)
                bva.append(v)
                bg.append(g)
            item_idx.append(index[p])
        return cls(texts, torch.tensor(bva, dtype=torch.float32), bg), torch.tensor(item_idx, dtype=torch.long)


@dataclass
class TrainData:
    """Items (songs or captions) with their positive prompt, VA and genre, split into train/val."""

    bank: PromptBank
    prompt_idx: torch.Tensor  # (N,) index into bank
    va: torch.Tensor  # (N, 2)
    genres: list[str]
    train: list[int]
    val: list[int]
    inputs: TextInputs | AudioInputs  # .embed(indices, epoch, train) -> (len, D)
    names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.genres)


class TextInputs:
    """Fixed CLAP text embeddings: the same input every epoch."""

    def __init__(self, emb: torch.Tensor):
        self.emb = emb.float().clone()  # a normal tensor, not an inference-mode one

    @property
    def dim(self) -> int:
        return int(self.emb.shape[1])

    def embed(self, indices: list[int], epoch: int, train: bool) -> torch.Tensor:
        return self.emb[indices]


class AudioInputs:
    """CLAP audio embeddings of songs' middle 3/5: a seeded augmentation per (epoch, song) for training,
    the fixed centre 10 s for validation (cached: it never changes).

    Augmentation (one CPU core, ~0.2 s a clip) and CLAP cost far more than a head step. With `views`
    = K > 0, epoch e reuses augmentation number e mod K and its embedding is kept in memory, so only
    the first K epochs pay for audio (2 KB per song and view at 512-d).
    """

    def __init__(self, segments: list[np.ndarray], clap: ClapEncoder, augment_cfg: AugmentConfig | None = None,
                 seed: int = 0, views: int = 0) -> None:
        from engine.train.augment import AugmentConfig

        self.segments = segments
        self.clap = clap
        self.cfg = augment_cfg or AugmentConfig()
        self.seed = seed
        self.views = views
        self._val: dict[int, torch.Tensor] = {}
        self._train: dict[tuple[int, int], torch.Tensor] = {}

    @property
    def dim(self) -> int:
        return int(self.clap.embed_dim)

    def embed(self, indices: list[int], epoch: int, train: bool) -> torch.Tensor:
        from engine.train.augment import augment, centre_crop

        if not train:
            todo = [i for i in indices if i not in self._val]
            if todo:
                emb = self.clap.encode_audio(np.stack([centre_crop(self.segments[i], self.cfg.seconds) for i in todo]))
                self._val.update({i: e for i, e in zip(todo, emb.cpu().clone())})
            return torch.stack([self._val[i] for i in indices])
        view = epoch % self.views if self.views > 0 else epoch
        todo = [i for i in indices if (view, i) not in self._train]
        if todo:
            clips = [augment(self.segments[i], np.random.default_rng([self.seed, view, i]), self.cfg) for i in todo]
            emb = self.clap.encode_audio(np.stack(clips)).cpu().clone()  # inference tensor → autograd-usable
            if self.views > 0:
                self._train.update({(view, i): e for i, e in zip(todo, emb)})
            else:
                fresh = dict(zip(todo, emb))
                return torch.stack([fresh[i] for i in indices])
        return torch.stack([self._train[(view, i)] for i in indices])


def audio_data(songs: list[Song], clap: ClapEncoder, val_fraction: float = 0.15, seed: int = 0,
               augment_cfg: AugmentConfig | None = None, views: int = 0) -> TrainData:
    """Decode every song once (middle 3/5 kept in memory as float32), split by song."""
    from engine.audio.io import load_audio

    segments = [middle_three_fifths(load_audio(s.path)) for s in songs]
    bank, pidx = PromptBank.from_items([s.prompt for s in songs], [(s.valence, s.energy) for s in songs],
                                       [s.genre for s in songs])
    train, val = stratified_split(song_strata(songs), val_fraction, seed)
    return TrainData(bank, pidx, torch.tensor([(s.valence, s.energy) for s in songs], dtype=torch.float32),
                     [s.genre for s in songs], train, val, AudioInputs(segments, clap, augment_cfg, seed, views),
                     [s.path.name for s in songs])


def text_data(n_pairs: int, clap: ClapEncoder, val_fraction: float = 0.15, seed: int = 0) -> TrainData:
    pairs = text_distill_pairs(n_pairs, seed)
    emb = clap.encode_text([p.description for p in pairs]).cpu()
    bank, pidx = PromptBank.from_items([p.prompt for p in pairs], [(p.valence, p.arousal) for p in pairs],
                                       [p.genre for p in pairs])
    keys = [(value_bin(p.valence), value_bin(p.arousal), p.genre) for p in pairs]
    train, val = stratified_split(keys, val_fraction, seed)
    return TrainData(bank, pidx, torch.tensor([(p.valence, p.arousal) for p in pairs], dtype=torch.float32),
                     [p.genre for p in pairs], train, val, TextInputs(emb), [p.description for p in pairs])
