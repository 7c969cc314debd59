"""The beat network at run time, in numpy: weights from safetensors, one pass over a whole track
(`Net.activations`) or a block of frames at a time with each layer's state kept (`StreamingBeatNet`).

Torch is only for training (`engine/audio/beatnet/model.py` holds the same network as a torch module,
and a test checks both give the same activations): a show, `analyze` and export run the network
without importing torch, which keeps their start-up fast and their feature thread light.

The network: a 1×1 input layer, `layers` residual blocks of a dilated convolution (kernel `kernel`,
dilation 2^k, causal or centred) + ReLU + a 1×1 mix, and a 1×1 output layer → beat and downbeat
logits per frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.audio.beatnet.features import FPS

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


class WeightsError(RuntimeError):
    """The weights file is missing, corrupt, or not a beat network; the message says what to do."""


@dataclass(frozen=True)
class _Layer:
    dilation: int
    conv: np.ndarray  # (kernel · channels) × channels: the taps stacked along the input axis
    conv_bias: np.ndarray
    mix: np.ndarray  # channels × channels
    mix_bias: np.ndarray


class Net:
    """The network's weights as matrices, ready for `x @ W` on rows of frames."""

    def __init__(self, cfg: NetConfig, state: dict[str, np.ndarray]) -> None:
        self.cfg = cfg
        sd = {k: np.asarray(v, dtype=np.float32) for k, v in state.items()}
        self.state = sd  # as saved (torch's layout), for training further (model.load_weights)
        k = cfg.kernel
        self.w_in, self.b_in = sd["inp.weight"][:, :, 0].T.copy(), sd["inp.bias"]
        self.layers = tuple(
            _Layer(2**i, np.concatenate([sd[f"blocks.{i}.conv.weight"][:, :, j].T for j in range(k)], axis=0),
                   sd[f"blocks.{i}.conv.bias"], sd[f"blocks.{i}.mix.weight"][:, :, 0].T.copy(), sd[f"blocks.{i}.mix.bias"])
            for i in range(cfg.layers))
        self.w_out, self.b_out = sd["out.weight"][:, :, 0].T.copy(), sd["out.bias"]

    def _pads(self, dilation: int) -> tuple[int, int]:
        p = (self.cfg.kernel - 1) * dilation
        return (p, 0) if self.cfg.causal else (p // 2, p - p // 2)

    @property
    def halo(self) -> int:
        """How many frames on either side of a frame its activation depends on."""
        return sum(max(self._pads(layer.dilation)) for layer in self.layers)

    def activations(self, feats: np.ndarray) -> np.ndarray:
        """Features (frames × N_INPUT) → probabilities (frames × 2), in one pass (padded with zeros
        at both ends, as in training)."""
        h = np.maximum(np.asarray(feats, dtype=np.float32) @ self.w_in + self.b_in, 0.0)
        n, c = h.shape
        for layer in self.layers:
            left, right = self._pads(layer.dilation)
            padded = np.pad(h, ((left, right), (0, 0)))
            d = layer.dilation
            acc = layer.conv_bias + padded[:n] @ layer.conv[:c]  # tap by tap: no (frames × k·c) copy
            for j in range(1, self.cfg.kernel):
                acc += padded[j * d : j * d + n] @ layer.conv[j * c : (j + 1) * c]
            h += np.maximum(acc, 0.0, out=acc) @ layer.mix + layer.mix_bias
        return _sigmoid(h @ self.w_out + self.b_out)


class OfflinePass:
    """The (centred) network over a track's features as they arrive, a piece at a time: it keeps the
    features of one piece and its halo, never the whole track's, and gives exactly the activations
    of one pass over the whole (a frame more than `halo` from a piece's cut sees no padding)."""

    def __init__(self, net: Net, piece: int = 2048) -> None:
        self.net, self.piece, self.halo = net, piece, net.halo
        self._buf = np.zeros((0, net.w_in.shape[0]), np.float32)
        self._buf_start = 0  # the track frame of _buf's first row
        self._arrived: list[np.ndarray] = []  # rows after _buf, joined to it only when a piece is due
        self._end = 0  # the track frame after the last row fed
        self._done = 0  # activations given for frames before this
        self._out: list[np.ndarray] = []

    def feed(self, feats: np.ndarray) -> None:
        rows = np.asarray(feats, dtype=np.float32)
        self._arrived.append(rows)
        self._end += len(rows)
        while self._end - self._done >= self.piece + self.halo:
            self._emit(self._done + self.piece)

    def finish(self) -> np.ndarray:
        """Every activation (frames × 2); the pass is spent afterwards."""
        if self._end > self._done:
            self._emit(self._end)
        return np.concatenate(self._out) if self._out else np.zeros((0, 2), np.float32)

    def _emit(self, stop: int) -> None:
        """Activations for frames done..stop from the buffered window around them; then drop the rows
        no later frame needs."""
        if self._arrived:
            self._buf = np.concatenate([self._buf, *self._arrived])
            self._arrived = []
        window_stop = min(self._end, stop + self.halo)
        act = self.net.activations(self._buf[: window_stop - self._buf_start])
        self._out.append(act[self._done - self._buf_start : stop - self._buf_start])
        self._done = stop
        keep_from = max(self._buf_start, stop - self.halo)
        self._buf = self._buf[keep_from - self._buf_start :].copy()
        self._buf_start = keep_from


class StretchedPass:
    """An `OfflinePass` over the track played `factor` times as fast: features resampled at frames
    k·factor (linear interpolation, as training's tempo augmentation) as they arrive, and the
    activations mapped back onto the track's own frames at the end."""

    def __init__(self, net: Net, factor: float, piece: int = 2048) -> None:
        self.factor = float(factor)
        self._pass = OfflinePass(net, piece)
        self._rows = np.zeros((0, net.w_in.shape[0]), np.float32)  # the rows later frames still read
        self._start = 0  # the track frame of _rows[0]
        self._k = 0  # the next resampled frame
        self._n = 0  # track frames fed

    def feed(self, feats: np.ndarray) -> None:
        rows = np.asarray(feats, dtype=np.float32)
        self._rows = np.concatenate([self._rows, rows])
        self._n += len(rows)
        # frame k reads rows ⌊k·factor⌋ and the one after: both must have arrived
        self._emit(int(np.ceil((self._n - 1) / self.factor)) if self._n > 1 else 0)

    def finish(self) -> np.ndarray:
        """Activations on the track's frames (frames × 2); the pass is spent afterwards."""
        if self._n == 0:
            return np.zeros((0, 2), np.float32)
        self._emit(int(np.floor((self._n - 1) / self.factor)) + 1)  # every k with k·factor inside the track
        act = self._pass.finish()
        at = np.arange(self._n) / self.factor
        return np.stack([np.interp(at, np.arange(len(act)), act[:, c]) for c in range(2)], axis=1).astype(np.float32)

    def _emit(self, stop: int) -> None:
        """Resample frames _k..stop−1 into the pass; keep only the rows later frames read."""
        if stop > self._k:
            pos = np.arange(self._k, stop) * self.factor
            i = np.minimum(pos.astype(np.int64), self._n - 1)
            w = (pos - i).astype(np.float32)[:, None]
            lo, hi = i - self._start, np.minimum(i + 1, self._n - 1) - self._start
            self._pass.feed(self._rows[lo] * (1 - w) + self._rows[hi] * w)
            self._k = stop
        keep_from = min(int(self._k * self.factor), self._n - 1)
        if keep_from > self._start:
            self._rows = self._rows[keep_from - self._start :]
            self._start = keep_from


class TempoViews:
    """The offline network over the track as it is and once per factor, played that much faster or
    slower, as the features arrive; `finish()` gives the mean of their activations."""

    def __init__(self, net: Net, factors: tuple[float, ...], piece: int = 2048) -> None:
        self._passes = [OfflinePass(net, piece) if f == 1.0 else StretchedPass(net, f, piece) for f in factors]

    def feed(self, feats: np.ndarray) -> None:
        for p in self._passes:
            p.feed(feats)

    def finish(self) -> np.ndarray:
        """The mean activations on the track's frames (frames × 2); the views are spent afterwards."""
        return np.mean([p.finish() for p in self._passes], axis=0)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return (0.5 + 0.5 * np.tanh(0.5 * z)).astype(np.float32)  # = 1 / (1 + e^-z), without overflow


def load_net(path: Path) -> Net:
    """The network in a safetensors file; `WeightsError` (one line) when that cannot be done."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"beat network weights not found at {path}: reinstall beatcanvas or train them "
                           "with scripts/train_beats.py")
    try:
        with safe_open(str(path), framework="np") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
        net = Net(NetConfig(**json.loads(meta["config"])), state)
        if net.w_out.shape[1] != 2 or any(layer.conv.shape[1] != net.cfg.channels for layer in net.layers):
            raise ValueError("the layers do not match the config")
    except (SafetensorError, OSError, KeyError, ValueError, TypeError, IndexError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise WeightsError(f"beat network weights at {path} are unreadable ({first}): "
                           "restore the file or train new ones with scripts/train_beats.py") from None
    return net


def beat_time_of_frame(i: np.ndarray | float) -> np.ndarray | float:
    """The beat time (s) an activation peak at frame index i stands for."""
    return (np.asarray(i) + 1) / FPS - LOOKAHEAD_S


def label_frame(t: np.ndarray) -> np.ndarray:
    """The frame index a beat at time t is labelled at (inverse of `beat_time_of_frame`)."""
    return np.round((np.asarray(t) + LOOKAHEAD_S) * FPS).astype(np.int64) - 1


class StreamingBeatNet:
    """The causal network run a block of frames at a time, with each layer's input history kept:
    blocks of any size give the rows one pass gives."""

    def __init__(self, net: Net) -> None:
        if not net.cfg.causal:
            raise ValueError("streaming needs the causal variant")
        self.net = net
        self.reset()

    def reset(self) -> None:
        k, c = self.net.cfg.kernel, self.net.cfg.channels
        self._state = [_Rows((k - 1) * layer.dilation, c) for layer in self.net.layers]

    def process(self, feats: np.ndarray) -> np.ndarray:
        """Features of the next n frames (n × N_INPUT) → probabilities (n × 2)."""
        net = self.net
        h = np.maximum(np.asarray(feats, dtype=np.float32) @ net.w_in + net.b_in, 0.0)
        n = len(h)
        for rows, layer in zip(self._state, net.layers):
            past = rows.push(h)  # the (k−1)·d inputs before these n, then these n
            d = layer.dilation
            taps = np.concatenate([past[j * d : j * d + n] for j in range(net.cfg.kernel)], axis=1)
            h = h + np.maximum(taps @ layer.conv + layer.conv_bias, 0.0) @ layer.mix + layer.mix_bias
        return _sigmoid(h @ net.w_out + net.b_out)


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
