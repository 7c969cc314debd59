"""The beat/downbeat network for training: a temporal convolutional network (TCN) on log-filtered spectra.

    frame features (N_INPUT) → 1×1 conv → ReLU → `layers` residual blocks → 1×1 conv → (beat, downbeat) logits

A residual block is a kernel-3 convolution with dilation 2^k (k = 0 … layers−1) → ReLU → 1×1 conv,
added to its input. With 11 blocks a frame sees ~20 s of audio. Two variants share the code:

- `causal`: every convolution looks only back (left padding), so the network runs frame by frame
  live; its labels sit `LOOKAHEAD_S` (20 ms) after the beat, its whole look-ahead.
- `offline`: centred convolutions (as much future as past), for `analyze` and export.

`BeatNet` (torch) is what `scripts/train_beats.py` trains and saves. At run time the same weights run
in numpy (`engine/audio/beatnet/net.py`: one pass, or streaming a block of frames at a time), so a
show never imports torch; both give the same activations (tests/test_beatnet.py).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.audio.beatnet.features import N_INPUT
from engine.audio.beatnet.net import Net, NetConfig, load_net


class _Block(nn.Module):
    def __init__(self, c: int, dilation: int, cfg: NetConfig) -> None:
        super().__init__()
        self.dilation, self.causal = dilation, cfg.causal
        self.conv = nn.Conv1d(c, c, cfg.kernel, dilation=dilation)
        self.mix = nn.Conv1d(c, c, 1)
        self.drop = nn.Dropout(cfg.dropout)
        self.pad = (cfg.kernel - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.pad
        h = nn.functional.pad(x, (p, 0) if self.causal else (p // 2, p - p // 2))
        return x + self.mix(self.drop(nn.functional.relu(self.conv(h))))


class BeatNet(nn.Module):
    """(batch, frames, N_INPUT) → (batch, frames, 2) logits: beat, downbeat."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.inp = nn.Conv1d(N_INPUT, cfg.channels, 1)
        self.blocks = nn.ModuleList(_Block(cfg.channels, 2**k, cfg) for k in range(cfg.layers))
        self.out = nn.Conv1d(cfg.channels, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.relu(self.inp(x.transpose(1, 2)))
        for b in self.blocks:
            h = b(h)
        return self.out(h).transpose(1, 2)

    def activations(self, feats: np.ndarray) -> np.ndarray:
        """A whole track's features (frames × N_INPUT) → probabilities (frames × 2), in one pass."""
        self.eval()
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(feats, dtype=np.float32))[None]
            return torch.sigmoid(self(x))[0].numpy()


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# ---------------------------------------------------------------------------- weights
def save_weights(net: BeatNet, path: Path, card: dict | None = None) -> None:
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_suffix(".tmp")
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    meta = {"config": json.dumps(asdict(net.cfg)), "card": json.dumps(card or {})}
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)


def load_weights(path: Path) -> BeatNet:
    """A BeatNet (torch, for training further) from a safetensors file; `WeightsError` (one line)
    when that cannot be done (the same checks as the run-time loader, `net.load_net`)."""
    run_time = load_net(path)
    net = BeatNet(run_time.cfg)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in run_time.state.items()})
    net.eval()
    return net


def to_net(net: BeatNet) -> Net:
    """The run-time (numpy) network with this module's weights."""
    return Net(net.cfg, {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()})
