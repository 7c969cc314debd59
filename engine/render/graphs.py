"""A frame as a program over static buffers: captured once as a CUDA graph, replayed every frame.

A few-step SDXL frame at 512² is hundreds of small kernels; launched one by one from Python the GPU
waits on the CPU (measured on an H100: 93 ms eager vs 15.7 ms replayed for the same 1-step frame,
bench/results/h100/). `FrameProgram` wraps a function that reads only static input buffers (noise,
conditioning, previous latents) and returns a tensor; on CUDA it is captured with `torch.cuda.graph`
on first use and replayed after that. Inputs change by writing into the buffers (`copy_`), never by
passing new tensors. Elsewhere (CPU, or when capture fails) the same function simply runs: one code
path, so the CPU tests check the arithmetic the GPU replays.

Capture runs the function a few times on a side stream first (cuDNN/cuBLAS pick their kernels then),
which would advance state a program writes (the feedback latent): `state` names those buffers, and
they are restored before the first real replay.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import torch

log = logging.getLogger(__name__)


class FrameProgram:
    """`program()` runs `fn` (eagerly, or as a replayed CUDA graph) and returns its output tensor.

    The output of a graphed program is a static tensor that the next replay overwrites: copy what you
    keep. `pool` shares graph memory between the programs of one renderer (they never run at once).
    """

    def __init__(
        self,
        fn: Callable[[], torch.Tensor],
        device: torch.device,
        *,
        use_graph: bool = True,
        state: tuple[torch.Tensor, ...] = (),
        pool: Any = None,
        warmup: int = 2,
        name: str = "frame",
    ):
        self.fn, self.device, self.state, self.pool, self.warmup, self.name = fn, device, state, pool, warmup, name
        self.use_graph = use_graph and device.type == "cuda"
        self.graph: torch.cuda.CUDAGraph | None = None
        self.output: torch.Tensor | None = None
        self.fallback_reason = ""

    @property
    def graphed(self) -> bool:
        return self.graph is not None

    def __call__(self) -> torch.Tensor:
        if self.use_graph and self.graph is None:
            self._capture()
        if self.graph is not None:
            self.graph.replay()
            assert self.output is not None
            return self.output
        return self.fn()

    def _capture(self) -> None:
        saved = [s.clone() for s in self.state]
        try:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(self.warmup):
                    self.fn()
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self.pool):
                output = self.fn()
            self.graph, self.output = graph, output
        except Exception as e:  # noqa: BLE001 - an uncapturable op (a host sync, a dynamic shape): run eagerly
            self.use_graph = False
            self.fallback_reason = f"{type(e).__name__}: {e}".splitlines()[0][:200]
            log.warning("CUDA graph capture of %s failed, running it eagerly: %s", self.name, self.fallback_reason)
        finally:
            for buf, value in zip(self.state, saved):
                buf.copy_(value)
