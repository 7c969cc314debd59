"""Skip renders whose input has barely changed (StreamDiffusion's stochastic similarity filter).

When the music is steady the conditioning hardly moves, and a new SDXL frame would look like the last
one. The filter compares the incoming conditioning with the one of the last *rendered* frame (cosine
similarity of the pooled and token embeddings) and skips with probability

    p = clamp((similarity − threshold) / (1 − threshold), 0, 1)

so nearly identical input is skipped almost always and a real change never is. At most `max_skip`
frames in a row are skipped, so latent feedback keeps evolving the picture slowly. The random draws
come from a seeded generator (reproducible). Export never uses it: every exported frame is rendered.

No host synchronisation: on CUDA the similarity is computed on a side stream into pinned memory and
used once its event has completed; until then the frame is rendered (never wrongly skipped).
"""

from __future__ import annotations

import random

import torch

from engine.types import Conditioning


def conditioning_similarity(a: Conditioning, b: Conditioning) -> torch.Tensor:
    """Mean of the cosine similarities of the pooled embeddings and of the flattened token embeddings
    (a 0-d float32 tensor on a's device)."""
    def cos(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = x.reshape(-1).float(), y.reshape(-1).to(device=x.device, dtype=torch.float32)
        return torch.nn.functional.cosine_similarity(x, y, dim=0, eps=1e-8)

    return 0.5 * (cos(a.pooled_prompt_embeds, b.pooled_prompt_embeds) + cos(a.prompt_embeds, b.prompt_embeds))


class SimilarityFilter:
    def __init__(self, threshold: float = 0.98, max_skip: int = 10, seed: int = 0):
        if not 0.0 <= threshold < 1.0:
            raise ValueError(f"similarity threshold must be in [0, 1), got {threshold}")
        self.threshold, self.max_skip = threshold, max_skip
        self.rng = random.Random(seed)
        self.rendered: Conditioning | None = None  # conditioning of the last rendered frame
        self._candidate: Conditioning | None = None  # the one whose similarity is being computed
        self._similarity: float | None = None
        self._pending: tuple[torch.Tensor, torch.cuda.Event] | None = None
        self._stream: torch.cuda.Stream | None = None
        self.skipped_in_a_row = 0
        self.frames = 0
        self.skips = 0

    @property
    def skip_rate(self) -> float:
        return self.skips / self.frames if self.frames else 0.0

    def should_skip(self, conditioning: Conditioning | None) -> bool:
        """Decide for one frame; call `rendered_with` when the frame is then rendered."""
        self.frames += 1
        similarity = self._similarity_to_rendered(conditioning)
        skip = False
        if similarity is not None and self.skipped_in_a_row < self.max_skip:
            p = min(1.0, max(0.0, (similarity - self.threshold) / (1.0 - self.threshold)))
            skip = self.rng.random() < p
        if skip:
            self.skips += 1
            self.skipped_in_a_row += 1
        return skip

    def rendered_with(self, conditioning: Conditioning | None) -> None:
        self.rendered, self.skipped_in_a_row = conditioning, 0
        self._candidate, self._similarity, self._pending = None, None, None

    def _similarity_to_rendered(self, cond: Conditioning | None) -> float | None:
        if self.rendered is None or cond is None:
            return None
        if cond is self.rendered:
            return 1.0
        if cond is not self._candidate:  # a new conditioning: start computing its similarity
            self._candidate, self._similarity = cond, None
            sim = conditioning_similarity(cond, self.rendered)
            if sim.device.type == "cuda":
                self._pending = self._launch(sim)
            else:
                self._similarity = float(sim)
        if self._pending is not None and self._pending[1].query():
            self._similarity, self._pending = float(self._pending[0]), None  # pinned memory: no sync
        return self._similarity

    def _launch(self, sim: torch.Tensor) -> tuple[torch.Tensor, torch.cuda.Event]:
        # The similarity kernels were queued on the current stream; copy the result out on a side stream
        # so that reading it never waits for the frame being rendered.
        if self._stream is None:
            self._stream = torch.cuda.Stream(sim.device)
        host = torch.empty((), dtype=torch.float32, pin_memory=True)
        done = torch.cuda.Event()
        self._stream.wait_stream(torch.cuda.current_stream(sim.device))
        with torch.cuda.stream(self._stream):
            host.copy_(sim, non_blocking=True)
            done.record()
        return host, done
