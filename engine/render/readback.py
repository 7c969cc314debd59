"""Frames from the GPU to host memory with one frame always in flight.

`Readback.submit(images)` queues a copy of a uint8 frame (B, H, W, 3) into a pinned host buffer on a
side CUDA stream and returns at once. `take()` then hands back the frame submitted *before* it (waiting
for its copy if needed: it had a whole frame's time to finish), so the host never waits for the frame
it has just queued and the GPU always has the next frame's work while the host handles the last one.
Only the very first frame, with nothing older to show, is waited for (and shown twice). Slots form a ring (three by
default: the frame being rendered, the one being copied, the one being read), and nothing is
overwritten while it is read. On a CPU device the same calls copy synchronously and keep the same
order, so callers and tests have one code path.

Each returned array is the caller's own (copied out of the pinned slot, ~0.1 ms for 512²), so a
display thread may keep it as long as it likes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import torch

Meta = TypeVar("Meta")


@dataclass
class _Pending(Generic[Meta]):
    meta: Meta
    host: torch.Tensor | np.ndarray  # pinned slot (CUDA) or the finished copy (CPU)
    done: torch.cuda.Event | None  # None: already complete

    def result(self) -> tuple[np.ndarray, Meta]:
        if self.done is not None:
            self.done.synchronize()
        host = self.host.numpy() if isinstance(self.host, torch.Tensor) else self.host
        return host.copy(), self.meta


class Readback(Generic[Meta]):
    def __init__(self, device: torch.device, slots: int = 3):
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.slots = slots
        self._stream = torch.cuda.Stream(self.device) if self.cuda else None
        self._buffers: dict[tuple, list[tuple[torch.Tensor, torch.Tensor, torch.cuda.Event]]] = {}
        self._pending: list[_Pending[Meta]] = []  # oldest first
        self._next = 0

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def _slots_for(self, shape: tuple) -> list:
        if shape not in self._buffers:
            self._buffers[shape] = [
                (torch.empty(shape, dtype=torch.uint8, device=self.device),
                 torch.empty(shape, dtype=torch.uint8, pin_memory=True),
                 torch.cuda.Event())
                for _ in range(self.slots)
            ]
        return self._buffers[shape]

    def submit(self, images: torch.Tensor, meta: Meta) -> None:
        """Queue the copy of `images` (read now, on the current stream: it may be overwritten next)."""
        if self._stream is None:  # CPU: nothing to overlap
            self._pending.append(_Pending(meta, images.numpy().copy(), None))
            return
        shape = tuple(images.shape)
        k = self._next % self.slots
        self._next += 1
        staging, host, done = self._slots_for(shape)[k]
        main = torch.cuda.current_stream(self.device)
        main.wait_event(done)  # the copy that used this slot `slots` frames ago has finished (device-side wait)
        staging.copy_(images)  # on the render stream: ordered before the next frame overwrites `images`
        side = self._stream
        side.wait_stream(main)
        with torch.cuda.stream(side):
            host.copy_(staging, non_blocking=True)
            done.record()
        self._pending.append(_Pending(meta, host, done))
        del self._pending[: -self.slots + 1]  # never more in flight than slots − 1: the oldest are stale

    def take(self) -> tuple[np.ndarray, Meta] | None:
        """The frame submitted before the newest one (waiting for its copy only if it has not finished:
        it had a whole frame's time), or the newest when it is the only one (the first frame, which is
        then shown twice). Older frames are dropped; the newest always stays in flight."""
        if not self._pending:
            return None
        chosen = self._pending[-2] if len(self._pending) > 1 else self._pending[-1]
        self._pending = self._pending[-1:]
        return chosen.result()

    def wait_all(self) -> tuple[np.ndarray, Meta] | None:
        """The newest submitted frame, waiting for its copy (the synchronous path, and shutdown)."""
        if not self._pending:
            return None
        last = self._pending[-1]
        self._pending = []
        return last.result()

    def clear(self) -> None:
        self._pending = []
