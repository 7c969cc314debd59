"""The beat/downbeat network: a temporal convolutional network (TCN) on log-filtered spectra.

    frame features (N_INPUT) → 1×1 conv → ReLU → `layers` residual blocks → 1×1 conv → (beat, downbeat) logits

A residual block is a kernel-3 convolution with dilation 2^k (k = 0 … layers−1) → ReLU → 1×1 conv,
added to its input. With 11 blocks a frame sees ~20 s of audio. Two variants share the code:

- `causal`: every convolution looks only back (left padding), so the network runs frame by frame
  live; its labels sit `LOOKAHEAD_S` (20 ms) after the beat, its whole look-ahead.
- `offline`: centred convolutions (as much future as past), for `analyze` and export.

`BeatNet` (torch) is what is trained and what runs a whole track in one pass; `StreamingBeatNet`
runs the causal weights in numpy a block of frames at a time, keeping each layer's last 2·dilation
inputs between calls, so a hop costs a few small matmuls and never a window's worth of work. Both
give the same activations (tests/test_beatnet.py).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.audio.beatnet.features import FPS, N_INPUT

LOOKAHEAD_S = 0.02  # label frame i ends LOOKAHEAD_S after its beat: the causal model's look-ahead


@dataclass(frozen=True)
class NetConfig:
    variant: str = "causal"  # "causal" | "offline"
    channels: int = 32
    layers: int = 11
    kernel: int = 3
    dropout: float = 0.1

    @property
    def causal(self) -> bool:
        return self.variant == "causal"


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


def beat_time_of_frame(i: np.ndarray | float) -> np.ndarray | float:
    """The beat time (s) an activation peak at frame index i stands for."""
    return (np.asarray(i) + 1) / FPS - LOOKAHEAD_S


def label_frame(t: np.ndarray) -> np.ndarray:
    """The frame index a beat at time t is labelled at (inverse of `beat_time_of_frame`)."""
    return np.round((np.asarray(t) + LOOKAHEAD_S) * FPS).astype(np.int64) - 1


# ---------------------------------------------------------------------------- weights
class WeightsError(RuntimeError):
    """The weights file is missing, corrupt, or not a beat network; the message says what to do."""


def save_weights(net: BeatNet, path: Path, card: dict | None = None) -> None:
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_suffix(".tmp")
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    meta = {"config": json.dumps(asdict(net.cfg)), "card": json.dumps(card or {})}
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)


def load_weights(path: Path) -> BeatNet:
    """A BeatNet from a safetensors file; `WeightsError` (one line) when that cannot be done."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"beat network weights not found at {path}: reinstall beatcanvas or train them "
                           "with scripts/train_beats.py")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
        cfg = NetConfig(**json.loads(meta["config"]))
        net = BeatNet(cfg)
        net.load_state_dict(state)
    except (SafetensorError, OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise WeightsError(f"beat network weights at {path} are unreadable ({first}): "
                           "restore the file or train new ones with scripts/train_beats.py") from None
    net.eval()
    return net


# ---------------------------------------------------------------------------- streaming (numpy)
class StreamingBeatNet:
    """The causal network run a block of frames at a time in numpy, with each layer's state kept."""

    def __init__(self, net: BeatNet) -> None:
        if not net.cfg.causal:
            raise ValueError("streaming needs the causal variant")
        sd = {k: v.detach().numpy().astype(np.float32) for k, v in net.state_dict().items()}
        self.k = net.cfg.kernel
        self.w_in, self.b_in = sd["inp.weight"][:, :, 0].T.copy(), sd["inp.bias"]
        self.layers: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        for i, block in enumerate(net.blocks):
            w = sd[f"blocks.{i}.conv.weight"]  # out × in × k
            # taps stacked along the input axis: [x(t − (k−1)d), …, x(t)] @ W
            w_stack = np.concatenate([w[:, :, j].T for j in range(self.k)], axis=0)
            self.layers.append((int(block.dilation), w_stack, sd[f"blocks.{i}.conv.bias"],
                                sd[f"blocks.{i}.mix.weight"][:, :, 0].T.copy(), sd[f"blocks.{i}.mix.bias"]))
        self.w_out, self.b_out = sd["out.weight"][:, :, 0].T.copy(), sd["out.bias"]
        self.channels = net.cfg.channels
        self.reset()

    def reset(self) -> None:
        self._state = [_Rows((self.k - 1) * d, self.channels) for d, *_ in self.layers]

    def process(self, feats: np.ndarray) -> np.ndarray:
        """Features of the next n frames (n × N_INPUT) → probabilities (n × 2)."""
        h = np.maximum(np.asarray(feats, dtype=np.float32) @ self.w_in + self.b_in, 0.0)
        n = len(h)
        for rows, (d, w, b, wm, bm) in zip(self._state, self.layers):
            past = rows.push(h)  # the (k−1)·d inputs before these n, then these n
            taps = np.concatenate([past[j * d : j * d + n] for j in range(self.k)], axis=1)
            h = h + np.maximum(taps @ w + b, 0.0) @ wm + bm
        z = h @ self.w_out + self.b_out
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


class _Rows:
    """A layer's input history: the newest `keep` rows (zeros before the stream), appended in place
    into a buffer with room for more (rows move back only when it fills), read as one view."""

    def __init__(self, keep: int, width: int) -> None:
        self.keep = keep
        self._buf = np.zeros((keep + max(256, keep), width), dtype=np.float32)
        self._end = keep

    def push(self, x: np.ndarray) -> np.ndarray:
        """Append rows `x`; returns a view of the `keep` rows before them followed by them."""
        n, keep = len(x), self.keep
        if self._end + n > len(self._buf):
            if keep + n > len(self._buf):
                self._buf = np.concatenate([self._buf[self._end - keep : self._end], np.zeros((n, self._buf.shape[1]), np.float32)])
            else:
                self._buf[:keep] = self._buf[self._end - keep : self._end]
            self._end = keep
        self._buf[self._end : self._end + n] = x
        self._end += n
        return self._buf[self._end - n - keep : self._end]
