"""Frames from the GPU to host memory without stalling the GPU.

`Readback.submit(images)` queues a copy of a uint8 frame (B, H, W, 3) into a pinned host buffer on a
side CUDA stream and returns at once; the render stream goes on with the next frame while the copy
runs. `newest()` hands back the newest completed copy (double buffered: two slots, so the copy of frame
N overlaps the render of frame N+1 and nothing is overwritten while it is read). On a CPU device the
same calls copy synchronously, so callers have one code path.

Each returned array is the caller's own (copied out of the pinned slot, ~0.1 ms for 512²), so a
display thread may keep it as long as it likes.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import numpy as np
import torch

Meta = TypeVar("Meta")


class Readback(Generic[Meta]):
    def __init__(self, device: torch.device, slots: int = 2):
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.slots = slots
        self._stream = torch.cuda.Stream(self.device) if self.cuda else None
        self._buffers: dict[tuple, list[tuple[torch.Tensor, torch.Tensor, torch.cuda.Event]]] = {}
        self._pending: list[tuple[int, tuple, Meta]] = []  # (slot, shape, meta), oldest first
        self._next = 0
        self._ready: tuple[np.ndarray, Meta] | None = None  # CPU path

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
            self._ready = (images.numpy().copy(), meta)
            return
        shape = tuple(images.shape)
        k = self._next % self.slots
        self._next += 1
        staging, host, done = self._slots_for(shape)[k]
        main = torch.cuda.current_stream(self.device)
        main.wait_event(done)  # the copy that used this slot `slots` frames ago has finished
        staging.copy_(images)  # on the render stream: ordered before the next frame overwrites `images`
        side = self._stream
        side.wait_stream(main)
        with torch.cuda.stream(side):
            host.copy_(staging, non_blocking=True)
            done.record()
        self._pending = [p for p in self._pending if p[0] != k] + [(k, shape, meta)]

    def newest(self, wait: bool = True) -> tuple[np.ndarray, Meta] | None:
        """The newest completed frame and its meta, or None. With `wait`, wait for the newest submitted
        one when none has completed yet (the first frame)."""
        if not self.cuda:
            return self._ready
        done = [p for p in self._pending if self._buffers[p[1]][p[0]][2].query()]
        chosen = done[-1] if done else (self._pending[-1] if wait and self._pending else None)
        if chosen is None:
            return None
        k, shape, meta = chosen
        _, host, event = self._buffers[shape][k]
        event.synchronize()
        self._pending = self._pending[self._pending.index(chosen) + 1:]  # older frames are stale now
        return host.numpy().copy(), meta

    def wait_all(self) -> tuple[np.ndarray, Meta] | None:
        """The newest submitted frame, waiting for its copy (the synchronous path, and shutdown)."""
        if not self.cuda:
            return self._ready
        if not self._pending:
            return None
        k, shape, meta = self._pending[-1]
        _, host, event = self._buffers[shape][k]
        event.synchronize()
        self._pending = []
        return host.numpy().copy(), meta
