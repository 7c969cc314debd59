"""Which beat tracker runs: `learned` (the beat network, default when its weights load) or `dsp`.

The weights ship in `engine/audio/beatnet/weights/` (`causal.safetensors` for live,
`offline.safetensors` for analyze and export). A missing or corrupt file falls back to the DSP
tracker, and `note` says why in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from engine.audio.beatmap import BeatAnalyzer, BeatMap
from engine.audio.beats import BeatTracker

if TYPE_CHECKING:
    from engine.audio.beatnet.net import Net

BEAT_TRACKERS = ("learned", "dsp")
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


class OfflineBeats(Protocol):
    def feed(self, block: np.ndarray) -> None: ...

    def finish(self) -> BeatMap: ...


@dataclass(frozen=True)
class Choice:
    used: str  # "learned" | "dsp"
    note: str  # "" or one line: why the learned tracker is not used


def weights_path(variant: str, weights_dir: Path | None = None) -> Path:
    return (weights_dir or WEIGHTS_DIR) / f"{variant}.safetensors"


@lru_cache(maxsize=8)
def _load(path: Path) -> Net:
    from engine.audio.beatnet.net import load_net  # numpy: a show never imports torch for its beats

    return load_net(path)


def _net(kind: str, variant: str, weights_dir: Path | None) -> tuple[Net | None, Choice]:
    if kind not in BEAT_TRACKERS:
        raise ValueError(f"beats must be one of {', '.join(BEAT_TRACKERS)}, not {kind!r}")
    if kind == "dsp":
        return None, Choice("dsp", "")
    from engine.audio.beatnet.net import WeightsError

    try:
        net = _load(weights_path(variant, weights_dir))
    except WeightsError as e:
        return None, Choice("dsp", f"beats: using the DSP tracker: {e}")
    if net.cfg.variant != variant:
        return None, Choice("dsp", f"beats: using the DSP tracker: {weights_path(variant, weights_dir)} holds "
                                   f"the {net.cfg.variant} network, not the {variant} one")
    return net, Choice("learned", "")


def live_tracker(kind: str = "learned", weights_dir: Path | None = None) -> tuple[BeatTracker, Choice]:
    """The live beat tracker for `kind` (the causal network, or the DSP tracker as fallback)."""
    from engine.audio.beatnet.live import LearnedBeatTracker

    net, choice = _net(kind, "causal", weights_dir)
    return (LearnedBeatTracker(net) if net is not None else BeatTracker()), choice


def offline_analyzer(kind: str = "learned", weights_dir: Path | None = None) -> tuple[OfflineBeats, Choice]:
    """The offline beat pass for `kind` (the offline network + bar-pointer Viterbi, or DSP)."""
    from engine.audio.beatnet.offline import LearnedBeatAnalyzer

    net, choice = _net(kind, "offline", weights_dir)
    return (LearnedBeatAnalyzer(net) if net is not None else BeatAnalyzer()), choice


def analyze_track_beats(path: str | Path, kind: str = "learned", block_size: int = 4800) -> tuple[BeatMap, Choice]:
    """The BeatMap of an audio file with the chosen tracker (decoded block by block)."""
    from engine.audio.io import iter_audio_blocks
    from engine.types import SAMPLE_RATE

    analyzer, choice = offline_analyzer(kind)
    for block in iter_audio_blocks(path, block_size, SAMPLE_RATE):
        analyzer.feed(block)
    return analyzer.finish(), choice
