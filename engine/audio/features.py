"""Fast per-block musical features: level, onsets, bands with AGC, beats, valence/arousal.

One `FeatureTracker` follows one stream. `process(block, t)` is called for every audio block
(about 10 ms, or longer) and returns an `engine.types.Features`. The 1024-point spectra of all the
block's hops are computed together, then a few scalar updates run per hop; the heavier analyses
(tempo autocorrelation, chroma for the mode) run every few hundred milliseconds, so the tracker
runs over a hundred times faster than real time on one core (scripts/bench_features.py).

Conventions (what the compositor can rely on):
- `rms`: linear RMS of the hop (full scale sine ≈ 0.707).
- `onset`: spectral-flux onset strength, 0..1 relative to recent peaks (the block's strongest).
- `low`/`mid`/`high`: band amplitudes with automatic gain control — 1.0 means "typical for this
  track so far" (MilkDrop's convention); a kick drum pushes `low` to 2–4, silence gives 0.
  `low_peak`: the block's loudest hop of `low` (a long block's kick, decayed by its newest hop).
- `beat`, `beat_phase`, `downbeat`, `beat_confidence`, `event`, `grid`, `tempo_bpm`: from the
  phase-locked `engine.audio.beats.BeatTracker`, fed the same spectrum (or from taps, `tap(t)`).
- `stems`: percussive, bass, harmonic and voice envelopes, onsets and descriptors from the same
  spectra (`engine.audio.stems`, 20 ms behind the newest hop: its median filter looks ahead).
- `valence`/`arousal`: -1..1, smoothed over about 2 s. Arousal from loudness, onset rate, tempo
  and spectral centroid; valence from major/minor mode (key-profile correlation of a chroma
  vector) and brightness.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from engine.audio.beats import BeatTracker
from engine.audio.onsets import SampleTail, hop_spectra
from engine.audio.stems import StemSeparator
from engine.types import SAMPLE_RATE, Features, Stems

N_FFT = 1024
LONG_FFT = 16384  # chroma needs ~3 Hz resolution to separate semitones around 100–200 Hz
BAND_EDGES_HZ = (20.0, 250.0, 4000.0, 16000.0)  # low | mid | high
CHROMA_EVERY_S = 0.5  # a 16k-point FFT each time: the costliest thing the tracker does
CHROMA_MEMORY_S = 1.5  # how long the key-mode estimate remembers
VA_SMOOTH_S = 2.0
AGC_TAU_S = 15.0  # "typical so far": a running mean for the first 15 s, then a 15 s EMA
SILENCE_RMS = 1e-4  # -80 dBFS
SPECTRUM_BANDS = 16  # log-spaced 40 Hz..16 kHz, for renderers that draw the spectrum
WAVE_POINTS = 64

# Krumhansl–Kessler key profiles (C major / C minor), rotated for the 12 tonics.
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def _profiles(p: np.ndarray) -> np.ndarray:
    rot = np.stack([np.roll(p, k) for k in range(12)])
    rot = rot - rot.mean(axis=1, keepdims=True)
    return rot / np.linalg.norm(rot, axis=1, keepdims=True)


_MAJOR_ROT = _profiles(_MAJOR)
_MINOR_ROT = _profiles(_MINOR)


def _squash(x: float, lo: float, hi: float) -> float:
    """Map x linearly so lo → -1 and hi → +1, clipped."""
    return max(-1.0, min(1.0, 2.0 * (x - lo) / (hi - lo) - 1.0))


class FeatureTracker:
    """Streaming feature extractor for one audio stream at `sample_rate` (mono float32).

    Blocks of any length may be fed: they are cut internally into hops of `block_size` samples
    (the beat tracker needs an even rate) and the Features of the newest complete hop are returned.
    `t` is the time (s) of the block's last sample; when omitted, the tracker counts samples.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, block_size: int = 480, stems: bool = True,
                 beats: BeatTracker | None = None) -> None:
        """`stems`: also separate the four stems (engine/audio/stems.py). `beats`: the beat tracker to run
        on this stream's spectra (default: the DSP one; the learned one comes from
        `engine.audio.beatnet.choice.live_tracker`)."""
        if block_size <= 0 or block_size > N_FFT:
            raise ValueError(f"block_size must be in 1..{N_FFT}")
        self.sample_rate = sample_rate
        self.block_size = block_size
        self.fps = sample_rate / block_size  # hops per second
        sr, hop = sample_rate, block_size

        self._window = np.hanning(N_FFT).astype(np.float32)
        freqs = np.fft.rfftfreq(N_FFT, 1.0 / sr)
        # One matmul gives the three band energies, the total and the centroid numerator.
        rows = [((freqs >= a) & (freqs < b)).astype(np.float32) for a, b in zip(BAND_EDGES_HZ, BAND_EDGES_HZ[1:])]
        rows.append(np.ones_like(freqs, dtype=np.float32))
        rows.append(freqs.astype(np.float32))
        self._to_bands = np.ascontiguousarray(np.stack(rows).T)  # bins × (low, mid, high, total, centroid)
        edges = np.geomspace(40.0, 16000.0, SPECTRUM_BANDS + 1)
        to_spectrum = np.stack(
            [((freqs >= a) & (freqs < max(b, a + sr / N_FFT))).astype(np.float32) for a, b in zip(edges, edges[1:])]
        ).T  # bins × SPECTRUM_BANDS
        # Both from one matmul of the power spectrum: the band sums, then the spectrum's bands.
        self._n_sums = len(rows)
        self._to_bands = np.ascontiguousarray(np.concatenate([self._to_bands, to_spectrum], axis=1))
        self._prev_logmag = np.zeros(len(freqs), dtype=np.float32)

        self._past = SampleTail(LONG_FFT)  # chroma's frame; the short frames start in it too
        self._long_window = np.hanning(LONG_FFT).astype(np.float32)
        lf = np.fft.rfftfreq(LONG_FFT, 1.0 / sr)
        sel = (lf >= 80.0) & (lf <= 2000.0)
        self._chroma_bins = np.nonzero(sel)[0]
        self._chroma_pc = (np.round(12 * np.log2(lf[sel] / 440.0) + 69).astype(int)) % 12
        self._chroma = np.zeros(12)
        self._chroma_every = max(1, int(round(CHROMA_EVERY_S * self.fps)))
        self._chroma_rate = 1.0 - math.exp(-self._chroma_every / self.fps / CHROMA_MEMORY_S)

        self.beats = beats if beats is not None else BeatTracker(sr, hop, N_FFT)
        self.stems = StemSeparator(sr, hop, N_FFT) if stems else None
        self.reset_state()

    # ----------------------------------------------------------------- state
    def reset_state(self) -> None:
        """Forget the stream (new track) but keep the configuration."""
        self._past.reset()
        self._prev_logmag[:] = 0
        self.beats.reset()
        if self.stems is not None:
            self.stems.reset()
        self._no_samples = self._pending = np.zeros(0, dtype=np.float32)
        self._hops = 0
        self._band_mean = [0.0, 0.0, 0.0]
        self._spectrum_mean = np.zeros(SPECTRUM_BANDS)
        self._flux_peak = 1e-6
        self._flux_mean = 0.0
        self._onset_rate = 0.0
        self._last_onset_hop = -(10**9)
        self._chroma[:] = 0
        self._mode = 0.0
        self._centroid = 1000.0
        self._loud_db = -80.0
        self._bands = [0.0, 0.0, 0.0]  # the newest hop's low/mid/high
        # VA smoothing with bias correction (so the first seconds are not dragged towards 0)
        self._va = [0.0, 0.0]  # arousal, valence
        self._va_weight = 0.0
        self._last = Features(low=0.0, mid=0.0, high=0.0, tempo_bpm=self.beats.tempo_bpm)

    # ----------------------------------------------------------------- beats
    def tap(self, t: float) -> None:
        """The performer tapped at time `t` (s, same clock as `process`); see `BeatTracker.tap`."""
        self.beats.tap(t)

    def clear_taps(self) -> None:
        """Hand tempo back to the automatic tracker."""
        self.beats.clear_taps()

    @property
    def tapped(self) -> bool:
        return self.beats.tapped

    @property
    def tempo_bpm(self) -> float:
        return self.beats.tempo_bpm

    @property
    def tempo_confidence(self) -> float:
        return self.beats.tempo_confidence

    @property
    def last_beat_time(self) -> float | None:
        return self.beats.last_beat_time

    # ----------------------------------------------------------------- main entry
    def process(self, block: np.ndarray, t: float | None = None) -> Features:
        """Feed one block (float32 mono); returns the Features at the end of its last whole hop.

        Every hop of the block is analysed (the spectra of all of them at once: a caller that fell
        behind catches up faster); the result is the newest hop's, with `beat`, `downbeat`, `event`
        and `onset` covering the whole block, so a beat is not lost in a long block.
        """
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        if block.size and not np.isfinite(block).all():
            block = np.nan_to_num(block, nan=0.0, posinf=0.0, neginf=0.0)
        hop, sr = self.block_size, self.sample_rate
        if t is None:
            t = (self._hops * hop + len(self._pending) + len(block)) / sr
        data = np.concatenate([self._pending, block]) if len(self._pending) else block
        n = len(data) // hop
        self._pending = data[n * hop :].copy() if len(data) > n * hop else self._no_samples
        if n == 0:  # not a full hop yet: the previous features, re-timed
            return self._with_time(t)
        return self._hops_of(data[: n * hop], t - len(self._pending) / sr)

    def _with_time(self, t: float) -> Features:
        last = self._last
        return dataclasses.replace(last, t=t, low_peak=last.low, beat=False, downbeat=False, event="", beat_phase=last.grid.phase_at(t),
                                   stems=dataclasses.replace(last.stems, hit=(False, False, False, False)))

    def _hops_of(self, x: np.ndarray, t: float) -> Features:
        """Whole hops `x`, the last ending at `t`: spectra in one go, then the running state hop by hop."""
        hop = self.block_size
        n = len(x) // hop
        mags = hop_spectra(self._past.last(N_FFT - hop), x, hop, self._window)
        hops = x.reshape(n, hop)
        rms = np.sqrt(np.add.reduce(hops * hops, axis=1) / hop)
        logmag = np.log1p(mags * 100.0)
        flux = np.add.reduce(np.maximum(logmag - np.concatenate([self._prev_logmag[None], logmag[:-1]]), 0.0), axis=1)
        self._prev_logmag = logmag[-1]
        sums = (mags * mags) @ self._to_bands
        energies = sums[:, : self._n_sums]

        bt = self.beats
        beat = bt.update_spectra(mags, t, rms.tolist())
        stems = self.stems.process(mags) if self.stems is not None else Stems()
        onset = low_peak = 0.0
        for i, (level, fl, e) in enumerate(zip(rms.tolist(), flux.tolist(), energies.tolist())):
            onset = max(onset, self._hop(level, fl, e))
            low_peak = max(low_peak, self._bands[0])
            if self._hops % self._chroma_every == 0:  # chroma of the LONG_FFT samples up to this hop
                self._update_chroma(np.concatenate([self._past.last(LONG_FFT), x[: (i + 1) * hop]])[-LONG_FFT:])
        spectrum = self._spectrum(sums[-1, self._n_sums :], float(rms[-1]) < SILENCE_RMS)
        wave = tuple(np.concatenate([self._past.last(WAVE_POINTS * 8), x])[-WAVE_POINTS * 8 :: 8].tolist())
        self._past.append(x)
        valence, arousal = self._va_now()
        grid = bt.grid
        feats = Features(
            t=t, rms=float(rms[-1]), onset=min(onset, 1.0), low=self._bands[0], mid=self._bands[1], high=self._bands[2], low_peak=low_peak,
            beat=beat, beat_phase=grid.phase_at(t), tempo_bpm=bt.tempo_bpm,
            valence=valence, arousal=arousal, downbeat=bt.downbeat,
            beat_confidence=grid.confidence, event=bt.event, grid=grid, spectrum=spectrum, wave=wave, stems=stems,
        )
        self._last = feats
        return feats

    def _spectrum(self, power: np.ndarray, silent: bool) -> tuple[float, ...]:
        """Log-spaced band amplitudes (from the bands' power sums) with the same automatic gain as
        low/mid/high (for the shader renderer's spectrum ribbons)."""
        if silent:
            return (0.0,) * SPECTRUM_BANDS
        amps = np.sqrt(power)
        self._spectrum_mean += max(1.0 / self._hops, 1.0 / (AGC_TAU_S * self.fps)) * (amps - self._spectrum_mean)
        return tuple(np.minimum(amps / np.maximum(self._spectrum_mean, 1e-9), 10.0).round(3).tolist())

    def _hop(self, rms: float, flux: float, energies: list[float]) -> float:
        """The running state for one hop (its RMS, spectral flux and band energies); its onset strength."""
        self._hops += 1
        # Onset strength 0..1 against a slowly decaying peak; onset events for the rate.
        self._flux_peak = max(flux, self._flux_peak * 0.999)
        onset = flux / self._flux_peak if self._flux_peak > 1e-6 else 0.0
        self._flux_mean += 0.01 * (flux - self._flux_mean)
        is_onset = (
            flux > 1.5 * self._flux_mean + 1.0
            and self._hops - self._last_onset_hop > 0.08 * self.fps
            and rms > SILENCE_RMS
        )
        if is_onset:
            self._last_onset_hop = self._hops
        a_rate = 1.0 / (VA_SMOOTH_S * self.fps)
        self._onset_rate += a_rate * ((self.fps if is_onset else 0.0) - self._onset_rate)

        # Bands with AGC: amplitude relative to the running typical amplitude.
        amps = [math.sqrt(max(e, 0.0)) for e in energies[:3]]
        silent = rms < SILENCE_RMS
        mean = self._band_mean
        if not silent:
            a = max(1.0 / self._hops, 1.0 / (AGC_TAU_S * self.fps))
            for j in range(3):
                mean[j] += a * (amps[j] - mean[j])
        self._bands = [0.0 if silent or m < 1e-9 else min(x / m, 10.0) for x, m in zip(amps, mean)]
        if energies[3] > 1e-12 and not silent:
            self._centroid += 0.05 * (energies[4] / energies[3] - self._centroid)
        db = 20.0 * math.log10(max(rms, 1e-5))
        self._loud_db += a_rate * 5 * (db - self._loud_db)  # ~0.4 s loudness follower
        self._update_va()
        return onset

    # ----------------------------------------------------------------- valence / arousal
    def _update_chroma(self, buf: np.ndarray) -> None:
        """`buf`: the newest LONG_FFT samples."""
        spec = np.abs(np.fft.rfft(buf * self._long_window))
        power = spec[self._chroma_bins]
        total = float(power.sum())
        if total < 1e-6:
            return
        chroma = np.bincount(self._chroma_pc, weights=power, minlength=12) / total
        self._chroma += self._chroma_rate * (chroma - self._chroma)
        c = self._chroma - self._chroma.mean()
        norm = np.linalg.norm(c)
        if norm < 1e-9:
            return
        c /= norm
        self._mode = float((_MAJOR_ROT @ c).max() - (_MINOR_ROT @ c).max())

    def _update_va(self) -> None:
        loud = _squash(self._loud_db, -50.0, -8.0)
        rate = _squash(self._onset_rate, 0.0, 8.0)
        tempo = _squash(self.tempo_bpm, 70.0, 170.0) if self.tempo_confidence > 0.3 else -0.3
        bright = _squash(math.log2(max(self._centroid, 50.0)), math.log2(300.0), math.log2(5000.0))
        arousal = 0.4 * loud + 0.3 * rate + 0.1 * tempo + 0.2 * bright
        valence = 0.75 * math.tanh(6.0 * self._mode) + 0.25 * bright
        a = 1.0 / (VA_SMOOTH_S * self.fps)
        self._va = [(1.0 - a) * self._va[0] + a * arousal, (1.0 - a) * self._va[1] + a * valence]
        self._va_weight = self._va_weight * (1.0 - a) + a

    def _va_now(self) -> tuple[float, float]:
        """(valence, arousal), -1..1, bias-corrected (the first seconds are not dragged towards 0)."""
        ar, va = (v / self._va_weight for v in self._va) if self._va_weight > 0 else (0.0, 0.0)
        return float(max(-1.0, min(1.0, va))), float(max(-1.0, min(1.0, ar)))
