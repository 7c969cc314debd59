"""Fast per-block musical features: level, onsets, bands with AGC, beats, valence/arousal.

One `FeatureTracker` follows one stream. `process(block, t)` is called for every audio block
(about 10 ms) and returns an `engine.types.Features`. The work per hop is one 1024-point FFT and a
handful of vector ops; the heavier analyses (tempo autocorrelation, chroma for the mode) run every
few hundred milliseconds, so the tracker runs hundreds of times faster than real time on one core.

Conventions (what the compositor can rely on):
- `rms`: linear RMS of the hop (full scale sine ≈ 0.707).
- `onset`: spectral-flux onset strength, 0..1 relative to recent peaks.
- `low`/`mid`/`high`: band amplitudes with automatic gain control — 1.0 means "typical for this
  track so far" (MilkDrop's convention); a kick drum pushes `low` to 2–4, silence gives 0.
- `beat`: True in the block where a beat lands; `beat_phase` runs 0→1 between beats;
  `tempo_bpm` from onset autocorrelation, or from taps (`tap(t)`) when the performer taps.
- `valence`/`arousal`: -1..1, smoothed over about 2 s. Arousal from loudness, onset rate, tempo
  and spectral centroid; valence from major/minor mode (key-profile correlation of a chroma
  vector) and brightness.
"""

from __future__ import annotations

import math

import numpy as np

from engine.types import SAMPLE_RATE, Features

N_FFT = 1024
LONG_FFT = 16384  # chroma needs ~3 Hz resolution to separate semitones around 100–200 Hz
BAND_EDGES_HZ = (20.0, 250.0, 4000.0, 16000.0)  # low | mid | high
MIN_BPM, MAX_BPM = 60.0, 200.0
PRIOR_BPM = 120.0  # log-Gaussian tempo prior: resolves the octave ambiguity (60 vs 120 vs 240)
TEMPO_EVERY_S = 0.5
CHROMA_EVERY_S = 0.25
ENVELOPE_S = 8.0
VA_SMOOTH_S = 2.0
AGC_TAU_S = 15.0  # "typical so far": a running mean for the first 15 s, then a 15 s EMA
SILENCE_RMS = 1e-4  # -80 dBFS
TAP_GAP_S = 2.0  # taps further apart than this start a new tap sequence
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

    def __init__(self, sample_rate: int = SAMPLE_RATE, block_size: int = 480) -> None:
        if block_size <= 0 or block_size > N_FFT:
            raise ValueError(f"block_size must be in 1..{N_FFT}")
        self.sample_rate = sample_rate
        self.block_size = block_size
        self.fps = sample_rate / block_size  # hops per second
        sr, hop = sample_rate, block_size

        self._frame = np.zeros(N_FFT, dtype=np.float32)
        self._window = np.hanning(N_FFT).astype(np.float32)
        freqs = np.fft.rfftfreq(N_FFT, 1.0 / sr)
        # One matmul gives the three band energies, the total and the centroid numerator.
        rows = [((freqs >= a) & (freqs < b)).astype(np.float32) for a, b in zip(BAND_EDGES_HZ, BAND_EDGES_HZ[1:])]
        rows.append(np.ones_like(freqs, dtype=np.float32))
        rows.append(freqs.astype(np.float32))
        self._band_matrix = np.stack(rows)
        edges = np.geomspace(40.0, 16000.0, SPECTRUM_BANDS + 1)
        self._spectrum_matrix = np.stack(
            [((freqs >= a) & (freqs < max(b, a + sr / N_FFT))).astype(np.float32) for a, b in zip(edges, edges[1:])]
        )
        self._prev_logmag = np.zeros(len(freqs), dtype=np.float32)

        # Long history for chroma: a circular buffer whose length is a multiple of the hop.
        n_long = int(math.ceil(LONG_FFT / hop)) * hop
        self._long = np.zeros(n_long, dtype=np.float32)
        self._long_pos = 0
        self._long_window = np.hanning(LONG_FFT).astype(np.float32)
        lf = np.fft.rfftfreq(LONG_FFT, 1.0 / sr)
        sel = (lf >= 80.0) & (lf <= 2000.0)
        self._chroma_bins = np.nonzero(sel)[0]
        self._chroma_pc = (np.round(12 * np.log2(lf[sel] / 440.0) + 69).astype(int)) % 12
        self._chroma = np.zeros(12)
        self._chroma_every = max(1, int(round(CHROMA_EVERY_S * self.fps)))

        # Onset envelope for tempo (circular, in hops).
        self._env_len = int(ENVELOPE_S * self.fps)
        self._env = np.zeros(self._env_len, dtype=np.float32)
        self._env_pos = 0
        self._tempo_every = max(1, int(round(TEMPO_EVERY_S * self.fps)))
        self.reset_state()

    # ----------------------------------------------------------------- state
    def reset_state(self) -> None:
        """Forget the stream (new track) but keep the configuration."""
        self._frame[:] = 0
        self._prev_logmag[:] = 0
        self._long[:] = 0
        self._env[:] = 0
        self._env_pos = 0
        self._pending = np.zeros(0, dtype=np.float32)
        self._hops = 0
        self._band_mean = np.zeros(3)
        self._spectrum_mean = np.zeros(SPECTRUM_BANDS)
        self._flux_peak = 1e-6
        self._flux_mean = 0.0
        self._onset_rate = 0.0
        self._last_onset_hop = -(10**9)
        self._chroma[:] = 0
        self._mode = 0.0
        self._centroid = 1000.0
        self._loud_db = -80.0
        # Beat tracking
        self.tempo_bpm = PRIOR_BPM
        self.tempo_confidence = 0.0
        self._period_s = 60.0 / PRIOR_BPM
        self._next_beat: float | None = None
        self.last_beat_time: float | None = None
        self._taps: list[float] = []
        self.tapped = False
        # VA smoothing with bias correction (so the first seconds are not dragged towards 0)
        self._va = np.zeros(2)
        self._va_weight = 0.0
        self._last = Features(low=0.0, mid=0.0, high=0.0, tempo_bpm=PRIOR_BPM)

    # ----------------------------------------------------------------- taps
    def tap(self, t: float) -> None:
        """The performer tapped at time `t` (s, same clock as `process`): override tempo and phase.

        Two or more taps less than 2 s apart set the tempo (median interval); every tap puts a beat
        at `t`. Taps keep control until `clear_taps()`.
        """
        if self._taps and t - self._taps[-1] > TAP_GAP_S:
            self._taps = []
        self._taps = (self._taps + [float(t)])[-8:]
        if len(self._taps) >= 2:
            period = float(np.median(np.diff(self._taps)))
            if period > 0:
                self._period_s = period
                self.tempo_bpm = 60.0 / period
                self.tapped = True
        self.last_beat_time = float(t)
        self._next_beat = float(t) + self._period_s

    def clear_taps(self) -> None:
        """Hand tempo back to the automatic tracker."""
        self._taps = []
        self.tapped = False

    # ----------------------------------------------------------------- main entry
    def process(self, block: np.ndarray, t: float | None = None) -> Features:
        """Feed one block (float32 mono); returns the Features at the block's end time `t`."""
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        if block.size and not np.isfinite(block).all():
            block = np.nan_to_num(block, nan=0.0, posinf=0.0, neginf=0.0)
        hop = self.block_size
        if t is None:
            t = (self._hops * hop + len(self._pending) + len(block)) / self.sample_rate
        if len(self._pending) == 0 and len(block) == hop:
            feats = self._hop(block, t)
        else:
            data = np.concatenate([self._pending, block]) if len(self._pending) else block
            n = len(data) // hop
            feats = None
            for i in range(n):
                t_i = t - (len(data) - (i + 1) * hop) / self.sample_rate
                feats = self._hop(data[i * hop : (i + 1) * hop], t_i)
            self._pending = data[n * hop :].copy()
            if feats is None:  # not a full hop yet: the previous features, re-timed
                feats = self._with_time(t)
        return feats

    def _with_time(self, t: float) -> Features:
        last = self._last
        phase = self._phase(t)
        return Features(
            t=t, rms=last.rms, onset=last.onset, low=last.low, mid=last.mid, high=last.high,
            beat=False, beat_phase=phase, tempo_bpm=last.tempo_bpm,
            valence=last.valence, arousal=last.arousal, spectrum=last.spectrum, wave=last.wave,
        )

    def _hop(self, block: np.ndarray, t: float) -> Features:
        hop = self.block_size
        self._hops += 1
        # Analysis frame: the newest N_FFT samples.
        self._frame[:-hop] = self._frame[hop:]
        self._frame[-hop:] = block
        p = self._long_pos
        self._long[p : p + hop] = block
        self._long_pos = (p + hop) % len(self._long)

        rms = math.sqrt(float(np.dot(block, block)) / hop)
        mag = np.abs(np.fft.rfft(self._frame * self._window))
        logmag = np.log1p(mag * 100.0)
        flux = float(np.maximum(logmag - self._prev_logmag, 0.0).sum())
        self._prev_logmag = logmag
        energies = self._band_matrix @ (mag * mag)

        # Onset strength 0..1 against a slowly decaying peak; onset events for the rate.
        self._flux_peak = max(flux, self._flux_peak * 0.999)
        onset = flux / self._flux_peak if self._flux_peak > 1e-6 else 0.0
        self._flux_mean += 0.01 * (flux - self._flux_mean)
        e = self._env_pos
        self._env[e] = flux
        self._env_pos = (e + 1) % self._env_len
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
        amps = np.sqrt(energies[:3])
        silent = rms < SILENCE_RMS
        if not silent:
            a = max(1.0 / self._hops, 1.0 / (AGC_TAU_S * self.fps))
            self._band_mean += a * (amps - self._band_mean)
        bands = [
            0.0 if silent or m < 1e-9 else min(float(x / m), 10.0)
            for x, m in zip(amps, self._band_mean)
        ]
        spectrum = self._spectrum(mag, silent)
        if energies[3] > 1e-12 and not silent:
            self._centroid += 0.05 * (float(energies[4] / energies[3]) - self._centroid)
        db = 20.0 * math.log10(max(rms, 1e-5))
        self._loud_db += a_rate * 5 * (db - self._loud_db)  # ~0.4 s loudness follower

        if self._hops % self._tempo_every == 0 and not self.tapped:
            self._update_tempo(t)
        if self._hops % self._chroma_every == 0:
            self._update_chroma()

        beat = False
        if self._next_beat is not None:
            while t >= self._next_beat:
                self.last_beat_time = self._next_beat
                self._next_beat += self._period_s
                beat = self.tapped or self.tempo_confidence > 0.2
        valence, arousal = self._update_va()
        feats = Features(
            t=t, rms=rms, onset=min(onset, 1.0), low=bands[0], mid=bands[1], high=bands[2],
            beat=beat, beat_phase=self._phase(t), tempo_bpm=self.tempo_bpm,
            valence=valence, arousal=arousal, spectrum=spectrum,
            wave=tuple(self._frame[-WAVE_POINTS * 8 :: 8].tolist()),
        )
        self._last = feats
        return feats

    def _spectrum(self, mag: np.ndarray, silent: bool) -> tuple[float, ...]:
        """Log-spaced band amplitudes with the same automatic gain as low/mid/high."""
        amps = np.sqrt(self._spectrum_matrix @ (mag * mag))
        if silent:
            return (0.0,) * SPECTRUM_BANDS
        self._spectrum_mean += max(1.0 / self._hops, 1.0 / (AGC_TAU_S * self.fps)) * (amps - self._spectrum_mean)
        return tuple(np.minimum(amps / np.maximum(self._spectrum_mean, 1e-9), 10.0).round(3).tolist())

    # ----------------------------------------------------------------- beats
    def _phase(self, t: float) -> float:
        if self.last_beat_time is None:
            return 0.0
        return min(max((t - self.last_beat_time) / self._period_s, 0.0), 0.999)

    def _ordered_env(self) -> np.ndarray:
        e = self._env_pos
        return np.concatenate([self._env[e:], self._env[:e]])

    def _update_tempo(self, t: float) -> None:
        n_valid = min(self._hops, self._env_len)
        if n_valid < 2.5 * self.fps:
            return
        env = self._ordered_env()[-n_valid:].astype(np.float64)
        x = env - env.mean()
        nfft = 1 << int(math.ceil(math.log2(2 * len(x))))
        spec = np.fft.rfft(x, nfft)
        ac = np.fft.irfft(spec * np.conj(spec), nfft)[: len(x)]
        if ac[0] <= 1e-9:
            self.tempo_confidence = 0.0
            return
        ac /= ac[0]
        lo = int(60.0 * self.fps / MAX_BPM)
        hi = min(int(60.0 * self.fps / MIN_BPM) + 1, len(ac) - 2)
        lags = np.arange(lo, hi)
        bpm = 60.0 * self.fps / lags
        prior = np.exp(-0.5 * (np.log2(bpm / PRIOR_BPM) / 1.0) ** 2)
        score = np.maximum(ac[lo:hi], 0.0) * prior
        k = int(np.argmax(score))
        lag = int(lags[k])
        conf = float(ac[lag])
        # Refine with the peaks at multiples of the lag: the period is their slope.
        estimates = []
        for m in range(1, 5):
            c = m * lag
            if c + 2 >= len(ac) or c > 0.6 * len(ac):
                break
            w = max(1, m)
            seg = ac[c - w : c + w + 1]
            j = c - w + int(np.argmax(seg))
            if 1 <= j < len(ac) - 1:
                y0, y1, y2 = ac[j - 1], ac[j], ac[j + 1]
                den = y0 - 2 * y1 + y2
                off = 0.5 * (y0 - y2) / den if abs(den) > 1e-12 else 0.0
                estimates.append((j + max(-0.5, min(0.5, off))) / m)
        period_hops = float(np.mean(estimates[-2:])) if estimates else float(lag)
        self.tempo_confidence = conf
        if conf < 0.1:
            return
        new_period = period_hops / self.fps
        # Follow tempo changes smoothly; jump if it moved a lot (new song, octave switch).
        if abs(new_period - self._period_s) / self._period_s > 0.08:
            self._period_s = new_period
        else:
            self._period_s += 0.5 * (new_period - self._period_s)
        self.tempo_bpm = 60.0 / self._period_s
        self._update_phase(env, t)

    def _update_phase(self, env: np.ndarray, t: float) -> None:
        """Align the beat grid with the onset envelope (comb filter over the last beats)."""
        period = self._period_s * self.fps
        n_beats = int(min(6, (len(env) - 1) // period))
        if n_beats < 2:
            return
        offsets = np.arange(int(period))
        ks = np.arange(n_beats)
        idx = (len(env) - 1 - offsets[:, None] - np.round(ks[None, :] * period)).astype(int)
        weights = 0.8 ** ks
        score = (env[idx] * weights).sum(axis=1)
        best = int(np.argmax(score))
        # The envelope value at hop h describes a frame ending at its hop time; an onset is seen
        # about one hop after it happens.
        latency = (N_FFT / 2) / self.sample_rate - 0.5 / self.fps
        beat_t = t - best / self.fps - latency
        if self._next_beat is None:
            self._next_beat = beat_t + self._period_s * math.ceil((t - beat_t) / self._period_s + 1e-9)
            self.last_beat_time = self._next_beat - self._period_s
            return
        # Phase error between the running grid and the estimate, wrapped to ±half a period.
        err = (beat_t - self._next_beat) / self._period_s
        err -= round(err)
        self._next_beat += 0.5 * err * self._period_s
        while self._next_beat <= t:  # never schedule a beat in the past
            self._next_beat += self._period_s

    # ----------------------------------------------------------------- valence / arousal
    def _update_chroma(self) -> None:
        p = self._long_pos
        buf = np.concatenate([self._long[p:], self._long[:p]])[-LONG_FFT:]
        spec = np.abs(np.fft.rfft(buf * self._long_window))
        power = spec[self._chroma_bins]
        total = float(power.sum())
        if total < 1e-6:
            return
        chroma = np.bincount(self._chroma_pc, weights=power, minlength=12) / total
        self._chroma += 0.15 * (chroma - self._chroma)  # ~1.7 s memory at 4 updates/s
        c = self._chroma - self._chroma.mean()
        norm = np.linalg.norm(c)
        if norm < 1e-9:
            return
        c /= norm
        self._mode = float((_MAJOR_ROT @ c).max() - (_MINOR_ROT @ c).max())

    def _update_va(self) -> tuple[float, float]:
        loud = _squash(self._loud_db, -50.0, -8.0)
        rate = _squash(self._onset_rate, 0.0, 8.0)
        tempo = _squash(self.tempo_bpm, 70.0, 170.0) if self.tempo_confidence > 0.3 else -0.3
        bright = _squash(math.log2(max(self._centroid, 50.0)), math.log2(300.0), math.log2(5000.0))
        arousal = 0.4 * loud + 0.3 * rate + 0.1 * tempo + 0.2 * bright
        valence = 0.75 * math.tanh(6.0 * self._mode) + 0.25 * bright
        a = 1.0 / (VA_SMOOTH_S * self.fps)
        self._va *= 1.0 - a
        self._va += a * np.array([arousal, valence])
        self._va_weight = self._va_weight * (1.0 - a) + a
        ar, va = self._va / self._va_weight
        return float(max(-1.0, min(1.0, va))), float(max(-1.0, min(1.0, ar)))
