"""The 10-second ring buffer between an audio source and everything that listens to it.

One writer (the audio callback or a feeder thread) and any number of readers. Writes copy into a
preallocated array and then publish `(samples written, t_end)` as one tuple assignment, which is
atomic under the GIL: readers never take a lock, and a reader that was overtaken by the writer
mid-copy notices (the count moved too far) and copies again.

The ring is where audio enters the show, so it is where audio is made safe: NaN and ±Inf (a glitching
interface, a float wav) become silence and are counted in `nonfinite`. Nothing downstream (features,
CLAP, the picture) ever sees them.
"""

from __future__ import annotations

import numpy as np

from engine.types import SAMPLE_RATE, WINDOW_SECONDS, Window


class RingBuffer:
    """Fixed-capacity float32 mono history with the timestamp of its newest sample."""

    def __init__(self, seconds: float = WINDOW_SECONDS, sample_rate: int = SAMPLE_RATE) -> None:
        self.sample_rate = sample_rate
        self.capacity = int(round(seconds * sample_rate))
        if self.capacity <= 0:
            raise ValueError("ring buffer needs a positive capacity")
        self._buf = np.zeros(self.capacity, dtype=np.float32)
        self._head: tuple[int, float] = (0, 0.0)  # (total samples written, time of the last one)
        self.nonfinite = 0  # NaN/Inf samples replaced by silence so far

    @property
    def written(self) -> int:
        """Samples written since creation (or clear)."""
        return self._head[0]

    @property
    def t_end(self) -> float:
        """Time (s) of the newest sample."""
        return self._head[1]

    def clear(self) -> None:
        self._buf[:] = 0
        self._head = (0, 0.0)

    def write(self, block: np.ndarray, t_end: float | None = None) -> np.ndarray:
        """Append a mono block and return it as stored (non-finite samples zeroed). `t_end` is the
        time of its last sample (default: samples / rate).

        Allocation-free for clean 1-D float32 input (one sum checks it), so it is safe to call from an
        audio callback; only a block that holds NaN/Inf is copied.
        """
        n = len(block)
        if n == 0:
            return block
        if not np.isfinite(np.sum(block)):
            bad = ~np.isfinite(block)
            self.nonfinite += int(bad.sum())
            block = np.where(bad, np.float32(0.0), block).astype(np.float32, copy=False)
        count, _ = self._head
        cap = self.capacity
        if n >= cap:
            # Only the newest `cap` samples survive; lay them out where a sample-by-sample write
            # would have put them, so the write position keeps following the count.
            count_after = count + n
            self._buf[:] = np.roll(block[n - cap :], count_after % cap)
        else:
            pos = count % cap
            first = min(n, cap - pos)
            self._buf[pos : pos + first] = block[:first]
            if first < n:
                self._buf[: n - first] = block[first:]
            count_after = count + n
        self._head = (count_after, float(t_end) if t_end is not None else count_after / self.sample_rate)
        return block

    def latest(self, seconds: float | None = None) -> Window:
        """A copy of the newest `seconds` of audio, zero-padded at the start if not yet filled."""
        n = self.capacity if seconds is None else int(round(seconds * self.sample_rate))
        if n > self.capacity:
            raise ValueError(f"ring buffer holds {self.capacity / self.sample_rate:.1f} s, asked for {seconds} s")
        out = np.zeros(n, dtype=np.float32)
        for _ in range(4):
            count, t_end = self._head
            have = min(n, count)
            if have:
                end = count % self.capacity
                start = end - have
                if start >= 0:
                    out[n - have :] = self._buf[start:end]
                else:
                    out[n - have : n - have - start] = self._buf[start:]
                    if end:
                        out[n - end :] = self._buf[:end]
            # If the writer lapped the region we copied, the copy may be torn: try again.
            if self._head[0] - count <= self.capacity - have:
                break
        return Window(samples=out, t_end=t_end, sample_rate=self.sample_rate)
