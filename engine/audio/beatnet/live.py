"""The learned live tracker: the causal network's activations drive the phase-locked predicted grid.

`LearnedBeatTracker` is the DSP `BeatTracker` (tempo every 0.25 s, a phase-locked loop every 50 ms,
beats emitted as predictions of the grid, taps, silence handling, bar counting, section events) with
its activation swapped: instead of spectral-flux onsets, each hop's row is the causal network's beat
probability (`strength`: tempo and phase follow it) and downbeat probability (`low`: the bar counter
takes the meter and position whose beats carry the most downbeat probability, `MeterCounter`). The network runs on the very
spectra the feature thread computed (no extra FFT), a block of hops per call, its layer states kept
between calls (`StreamingBeatNet`); its labels sit 20 ms after the beat, so `delay` is 20 ms.
"""

from __future__ import annotations

import numpy as np

from engine.audio.beatnet.features import LogBands
from engine.audio.beatnet.net import LOOKAHEAD_S, Net, StreamingBeatNet
from engine.audio.beats import BeatTracker
from engine.audio.onsets import Onsets
from engine.types import SAMPLE_RATE


LIVE_METERS = (2, 3, 4)  # bar lengths the live bar counter chooses between (6/8: 2 dotted-quarter beats)


class LearnedBeatTracker(BeatTracker):
    """Causal beat + downbeat tracking driven by the causal beat network (`net.cfg.variant == "causal"`)."""

    def __init__(self, net: Net, sample_rate: int = SAMPLE_RATE, hop: int = 480, n_fft: int = 1024,
                 beats_per_bar: int = 4) -> None:
        if (sample_rate, hop, n_fft) != (SAMPLE_RATE, 480, 1024):
            raise ValueError("the beat network hears 48 kHz audio in 480-sample hops with 1024-point frames")
        self._net = StreamingBeatNet(net)
        self._bands = LogBands()
        super().__init__(sample_rate, hop, n_fft, beats_per_bar, meters=LIVE_METERS)
        self.delay = LOOKAHEAD_S
        self._no_bands = np.zeros((0, self._onsets.n_bands), dtype=np.float32)

    def _reset_activation(self) -> None:
        self._net.reset()
        self._bands.reset()

    def _activation(self, mags: np.ndarray) -> Onsets:
        act = self._net.process(self._bands.process(mags))
        beat, down = act[:, 0], act[:, 1]
        if len(self._no_bands) != len(act):
            self._no_bands = np.zeros((len(act), self._onsets.n_bands), dtype=np.float32)
        return Onsets(beat, down, np.zeros_like(beat), self._no_bands)
