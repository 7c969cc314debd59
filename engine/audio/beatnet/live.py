"""The learned live tracker: the causal network's activations drive the phase-locked predicted grid.

`LearnedBeatTracker` is the DSP `BeatTracker` (tempo every 0.25 s, a phase-locked loop every 50 ms,
beats emitted as predictions of the grid, taps, silence handling, bar counting, section events) with
its activation swapped: instead of spectral-flux onsets, each hop's row is the causal network's beat
probability (`strength`: tempo and phase follow it) and downbeat probability (`low`: the bar counter
takes the meter and position whose beats carry the most downbeat probability, `MeterCounter`). The network runs on the very
spectra the feature thread computed (no extra FFT), its layer states kept between calls
(`StreamingBeatNet`); its labels sit 20 ms after the beat, so `delay` is 20 ms.

Hops are batched: the network's cost is mostly numpy's per-call overhead (11 layers, a few small
products each), so one call for 5 hops costs about what one call for 1 hop does. The tracker only
estimates tempo and phase every 50 ms (5 hops) and emits beats from its grid in between, so the
network runs on the hops where an estimate is due, with all the hops held since: the beats are
the same as hop by hop (tests/test_beatnet.py), at a fifth of the cost.
"""

from __future__ import annotations

import numpy as np

from engine.audio.beatnet.features import LogBands
from engine.audio.beatnet.net import LOOKAHEAD_S, Net, StreamingBeatNet
from engine.audio.beats import BeatTracker
from engine.audio.onsets import Onsets
from engine.types import SAMPLE_RATE


LIVE_METERS = (2, 3, 4)  # bar lengths the live bar counter chooses between (6/8: 2 dotted-quarter beats)
MAX_HELD_HOPS = 10  # the network runs at least every 100 ms (and on every hop where the tracker estimates)


class LearnedBeatTracker(BeatTracker):
    """Causal beat + downbeat tracking driven by the causal beat network (`net.cfg.variant == "causal"`)."""

    # The network's beat probability already says which level is the beat, so the tempo prior (an
    # octave-wide log-Gaussian around 120 BPM for onsets) is 1.6 octaves wide: on the 88 validation
    # audio pieces live beat F 0.699 → 0.703, downbeat F 0.419 → 0.434, tempo right 0.682 → 0.693.
    tempo_prior_octaves = 1.6

    def __init__(self, net: Net, sample_rate: int = SAMPLE_RATE, hop: int = 480, n_fft: int = 1024,
                 beats_per_bar: int = 4, max_held: int = MAX_HELD_HOPS) -> None:
        """`max_held`: hops held back at most before the network runs (1: every hop, unbatched)."""
        if (sample_rate, hop, n_fft) != (SAMPLE_RATE, 480, 1024):
            raise ValueError("the beat network hears 48 kHz audio in 480-sample hops with 1024-point frames")
        self._net = StreamingBeatNet(net)
        self._bands = LogBands()
        self._max_held = max(1, max_held)
        self._feats: list[np.ndarray] = []
        super().__init__(sample_rate, hop, n_fft, beats_per_bar, meters=LIVE_METERS)
        self.delay = LOOKAHEAD_S
        self._no_bands = np.zeros((0, self._onsets.n_bands), dtype=np.float32)
        self._none = Onsets(np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0, np.float32), self._no_bands)

    def _reset_activation(self) -> None:
        self._net.reset()
        self._bands.reset()
        self._feats = []

    def _activation(self, mags: np.ndarray, due: bool) -> Onsets:
        self._feats.append(self._bands.process(mags))
        if not due and self._held + len(mags) < self._max_held:  # the hops held so far, these included
            return self._none
        feats = self._feats[0] if len(self._feats) == 1 else np.concatenate(self._feats)
        self._feats = []
        act = self._net.process(feats)
        beat, down = act[:, 0], act[:, 1]
        if len(self._no_bands) != len(act):
            self._no_bands = np.zeros((len(act), self._onsets.n_bands), dtype=np.float32)
        return Onsets(beat, down, np.zeros_like(beat), self._no_bands)
