"""The one hop clock: when the conditioning runs, and how audio reaches the ring buffer off-line.

- `HOP_S`: the conditioning period (hop k is at k·HOP_S seconds of audio), live and export alike.
- `HopClock`: the hop schedule in samples. Export and analyze run every hop on the 10 s window ending
  exactly there; the live conditioning worker follows the same schedule on the audio clock, but runs
  only the newest due hop (a slow encoder drops hops rather than fall behind).
- `AudioFeed`: a track's blocks into a `RingBuffer` (and a feature tracker) up to an exact sample,
  in the ≤10 ms pieces the live feature thread sees; what export and analyze use instead of a sound
  card. Beats between two reads are remembered, so none is lost.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Generator, Iterator

import numpy as np

from engine.audio.features import FeatureTracker
from engine.types import SAMPLE_RATE, UNHEARD, WINDOW_SECONDS, Features, Window
from live.audio.ringbuffer import RingBuffer

HOP_S = 0.5
FEATURE_BLOCK = 480  # the tracker's hop: 10 ms at 48 kHz


class HopClock:
    """Hop k at sample round(k·hop_s·rate). `start_k` skips the hops before it (export's --start)."""

    def __init__(self, hop_s: float = HOP_S, sample_rate: int = SAMPLE_RATE, start_k: int = 0) -> None:
        if not hop_s > 0:
            raise ValueError(f"the hop must be positive, not {hop_s}")
        self.hop_s, self.sample_rate, self.k = float(hop_s), int(sample_rate), int(start_k)

    @classmethod
    def starting_at(cls, t: float, hop_s: float = HOP_S, sample_rate: int = SAMPLE_RATE) -> HopClock:
        """The clock whose first hop is the first one at or after `t` seconds (hop 0 for t ≤ 0)."""
        return cls(hop_s, sample_rate, max(0, math.floor(t / hop_s + 1e-9)))

    @property
    def next_sample(self) -> int:
        return int(round(self.k * self.hop_s * self.sample_rate))

    @property
    def next_time(self) -> float:
        return self.next_sample / self.sample_rate

    def due(self, sample: int) -> Iterator[int]:
        """Each hop at or before `sample` not yet taken, oldest first (the caller runs every one)."""
        while self.next_sample <= sample:
            hop = self.next_sample
            self.k += 1
            yield hop

    def newest_due(self, t: float) -> float | None:
        """The newest hop time ≤ t, skipping older ones (live: the encoder only ever sees fresh audio)."""
        last = None
        for hop in self.due(int(round(t * self.sample_rate))):
            last = hop
        return None if last is None else last / self.sample_rate


class AudioFeed:
    """Streams blocks into `ring` (sanitised there) and `tracker` up to an exact sample; a block is
    split at the target so each read sees precisely the audio before its time."""

    def __init__(self, blocks: Iterator[np.ndarray], ring: RingBuffer | None = None,
                 tracker: FeatureTracker | None = None, sample_rate: int = SAMPLE_RATE, start: int = 0) -> None:
        """`start`: the sample the blocks begin at (a feed that seeked into the track)."""
        self.sr = sample_rate
        self.ring = ring or RingBuffer(WINDOW_SECONDS, sample_rate)
        self.tracker = tracker
        self._blocks = blocks
        self._buf = np.zeros(0, dtype=np.float32)
        self._pos = 0
        self.fed = int(start)  # the sample fed up to
        self.exhausted = False
        self._features: Features | None = None
        self._beat = False

    def feed_to(self, sample: int) -> None:
        while self.fed < sample and not self.exhausted:
            if self._pos >= len(self._buf):
                nxt = next(self._blocks, None)
                if nxt is None:
                    self.exhausted = True
                    break
                self._buf, self._pos = np.asarray(nxt, dtype=np.float32), 0
            n = min(len(self._buf) - self._pos, sample - self.fed, FEATURE_BLOCK)
            piece = self._buf[self._pos : self._pos + n]
            self._pos += n
            self.fed += n
            t = self.fed / self.sr
            clean = self.ring.write(piece, t)
            if self.tracker is not None:
                feats = self.tracker.process(clean, t)
                self._beat = self._beat or bool(feats.beat)
                self._features = feats

    def window_at(self, sample: int, seconds: float = WINDOW_SECONDS) -> Window:
        """The `seconds` ending at `sample` (fed up to there first), zero-padded before the track."""
        self.feed_to(sample)
        w = self.ring.latest(seconds)
        return Window(w.samples, sample / self.sr, w.sample_rate)

    def take_features(self, t: float) -> Features:
        """The newest features, with `beat` set if a beat landed since the last call."""
        if self._features is None:
            return dataclasses.replace(UNHEARD, t=t)
        feats = dataclasses.replace(self._features, beat=self._beat)
        self._beat = False
        return feats

    @property
    def features(self) -> Features | None:
        """The newest features without taking the remembered beat (the conditioning's tempo)."""
        return self._features

    def close(self) -> None:
        if isinstance(self._blocks, Generator):  # a generator over an open file
            self._blocks.close()


def hop_windows(feed: AudioFeed, hops: HopClock) -> Iterator[Window]:
    """The 10 s window at each hop until the track ends, then one at its last sample (unless a hop
    landed exactly there). What `analyze --head` steps the understanding with."""
    last = -1
    while True:
        hop = hops.next_sample
        feed.feed_to(hop)
        if feed.fed < hop:
            break
        next(hops.due(hop))
        last = hop
        yield feed.window_at(hop)
    if feed.fed > max(last, 0):
        yield feed.window_at(feed.fed)
