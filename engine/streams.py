"""Background GPU work that must not hold up the render stream.

The conditioning path (CLAP on a 10-second window, the head, prompt encodings) runs a few times a
second in its own thread. On a GPU its kernels would queue on the same default stream as the frames
and a 10 s window encode would stall the picture. `BackgroundStream` gives that thread its own CUDA
stream at the lowest priority, while the SDXL renderer runs on a stream of the highest priority
(`render_stream`), so the GPU's scheduler runs frame kernels first. The block's results are ready (its
stream synchronised, in that thread only) when the block ends, so the render thread may read them at
once. On a CPU both do nothing, and a CPU show never imports torch here.

    background = BackgroundStream(device)
    with background():
        conditioning = understanding.step(window)
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import torch


def render_stream(device: torch.device) -> torch.cuda.Stream | None:
    """A CUDA stream of the highest priority for the frames (None off CUDA)."""
    if device.type != "cuda":
        return None
    import torch

    _, greatest = torch.cuda.Stream.priority_range()  # (least, greatest), e.g. (0, -5): lower is more urgent
    return torch.cuda.Stream(device, priority=greatest)


class BackgroundStream:
    def __init__(self, device: str | torch.device):
        self.device = device
        self.stream: torch.cuda.Stream | None = None
        if str(device).startswith("cuda"):
            import torch

            least, _ = torch.cuda.Stream.priority_range()
            self.stream = torch.cuda.Stream(torch.device(device), priority=least)

    @contextmanager
    def __call__(self) -> Iterator[None]:
        if self.stream is None:
            yield
            return
        import torch

        # Inputs produced on the thread's current stream must be visible on ours.
        self.stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(self.stream):
            yield
        self.stream.synchronize()  # blocks this (background) thread only
