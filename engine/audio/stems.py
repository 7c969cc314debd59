"""Stems, live: percussive, bass, harmonic and voice envelopes from the spectra the features compute.

No model and no download: harmonic/percussive separation by median filtering of the magnitude
spectrogram (Fitzgerald 2010, librosa's `hpss`), made streaming. For each 1024-point frame (the
feature tracker's, so no second FFT) up to 12 kHz:

- the **harmonic** estimate is the median of each bin over time: `PAST_S` of past frames, the frame
  itself and `LOOK_AHEAD_S` (20 ms) of look-ahead; the **percussive** one is the median over
  frequency (`FREQ_KERNEL` bins) of the frame alone; soft (Wiener) masks split each bin between them;
- **bass** is the harmonic part in `BASS_BAND_HZ`; **voice** (the lead) is the harmonic energy a
  single pitch's harmonic comb (250–1000 Hz fundamentals) captures in the voice band (450 Hz–4 kHz,
  above most accompaniment), counted only as far as that one pitch holds the band (pitch salience:
  a lead over a pad scores higher than a chord of equal notes; at this frame size, 47 Hz a bin,
  the distinction is coarse); **harmonic** is the rest of the harmonic part above
  the bass band.

Out per hop: an amplitude envelope per stem (1.0 = the whole mix's typical level so far, the same
automatic gain for all four, so a drums-only track has a percussive level and a harmonic one near
0), onset strength and onset hits per stem, and descriptors (bass and lead pitch, lead salience, the
harmony's pitch class as a hue). The values describe the audio `look_ahead_s` before the newest hop.

`StemSeparator.process(mags)` is the streaming form (hop by hop, any number of hops per call: the
same hops give the same envelopes whatever the blocks); `separate(mags)` and `analyze_stems(path)`
are the offline form for export and `analyze --stems`: a centred, longer median window (±150 ms)
and one gain for the whole track.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from engine.audio.onsets import hop_spectra
from engine.types import SAMPLE_RATE, STEM_NAMES, Stems

LOOK_AHEAD_S = 0.02  # streaming: the median sees this much after the frame (issue: ≤ 30 ms)
PAST_S = 0.10  # streaming: and this much before it
OFFLINE_HALF_S = 0.15  # offline: a centred window of ±this
PERCUSSIVE_MARGIN = 2.0  # a bin is percussive only where the frequency median beats the time median by this
FREQ_KERNEL = 17  # bins (≈ 800 Hz at 1024 points / 48 kHz): a hit is broadband, a partial is not
MAX_HZ = 12000.0
BASS_BAND_HZ = (20.0, 180.0)  # where the bass stem is read (the harmonic part)
VOICE_BAND_HZ = (450.0, 4000.0)
F0_RANGE_HZ = (250.0, 1000.0)  # the lead's fundamental
F0_STEPS_PER_OCTAVE = 36
COMB_HARMONICS = 8
SALIENCE_FLOOR, SALIENCE_SPAN = 0.25, 0.35  # the share of the voice band one pitch's comb holds → 0..1
AGC_TAU_S = 15.0  # the shared gain: a running mean of the mix's level for the first 15 s, then a 15 s EMA
RELEASE_S = (0.2, 0.12, 0.15, 0.12)  # envelope release per stem (attack is instant)
MAX_LEVEL = 4.0
SILENT_POWER = 2e-3  # sum of |X|² over the bins of a frame whose RMS is ≈ 1e-4 (-80 dBFS)
DESCRIBED_SHARE = 0.01  # bass_hz / voice_hz only when the stem holds this much of the frame's power
KICK_TAIL_S, KICK_TAIL_GAIN = 0.12, 1.0  # a kick's low tail: energy decay time, and its size against the attack
ONSET_DELTA = 0.2  # percussive: a hit is a flux this far (of its recent peak) above its recent mean
PEAK_HALF_S = 14.0  # the flux peak it is measured against halves in this long
ONSET_GAP_S = 0.06  # no two hits of one stem closer than this
RISE_FOR_HIT = 0.35  # bass/harmonic/voice: rise of log1p(10·level) over 20 ms that counts as an onset


def _median(x: np.ndarray) -> np.ndarray:
    """Median along the last axis (odd length): one partial sort, cheaper than np.median."""
    k = x.shape[-1] // 2
    return np.partition(x, k, axis=-1)[..., k]


def _bools4(a: Any) -> tuple[bool, bool, bool, bool]:
    b = [bool(v) for v in np.asarray(a).tolist()]
    return b[0], b[1], b[2], b[3]


@dataclass(frozen=True)
class StemRows:
    """Per-hop results (one row per hop): `level`/`onset` n×4 (STEM_NAMES order), `hit` n×4 bool,
    `bass_hz`, `voice_hz`, `voice_salience`, `harmonic_hue` (n,). `flux`: the percussive stem's
    onset activation (n,), for offline peak picking."""

    level: np.ndarray
    onset: np.ndarray
    hit: np.ndarray
    bass_hz: np.ndarray
    voice_hz: np.ndarray
    voice_salience: np.ndarray
    harmonic_hue: np.ndarray
    flux: np.ndarray

    def __len__(self) -> int:
        return len(self.level)


class StemSeparator:
    """Stem envelopes from the magnitude spectra of `n_fft`-point frames `hop` samples apart."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, hop: int = 480, n_fft: int = 1024, offline: bool = False) -> None:
        self.sample_rate, self.hop, self.n_fft = sample_rate, hop, n_fft
        self.fps = fps = sample_rate / hop
        self.offline = offline  # a centred window (the rows come OFFLINE_HALF_S late; see `separate`)
        self.look_ahead = max(0, int((OFFLINE_HALF_S if offline else LOOK_AHEAD_S) * fps + 1e-9))
        self.past = max(1, int(round((OFFLINE_HALF_S if offline else PAST_S) * fps)))
        if (self.past + self.look_ahead) % 2:  # an odd window: the median is one value
            self.past += 1
        self.look_ahead_s = self.look_ahead / fps
        freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
        self._bins = slice(1, int(np.searchsorted(freqs, MAX_HZ, side="right")))
        f = freqs[self._bins]
        self._n_bins = len(f)
        self._kernel = min(FREQ_KERNEL, self._n_bins - (1 - self._n_bins % 2))
        df = sample_rate / n_fft
        # harmonic power → (bass band, above it, the voice band): one matmul
        bass = (f >= BASS_BAND_HZ[0]) & (f < BASS_BAND_HZ[1])
        self._to_sums = np.stack(
            [bass, f >= BASS_BAND_HZ[1], (f >= VOICE_BAND_HZ[0]) & (f < VOICE_BAND_HZ[1])], axis=1
        ).astype(np.float32)
        self._bass_f = np.where(bass, f, 0.0).astype(np.float32)
        # The lead: for each candidate f0, the power at its first harmonics (linear interpolation
        # between the two nearest bins), restricted to the voice band.
        f0s = F0_RANGE_HZ[0] * 2.0 ** (np.arange(int(F0_STEPS_PER_OCTAVE * math.log2(F0_RANGE_HZ[1] / F0_RANGE_HZ[0])) + 1)
                                       / F0_STEPS_PER_OCTAVE)
        comb = np.zeros((self._n_bins, len(f0s)), dtype=np.float32)
        for j, f0 in enumerate(f0s):
            for h in range(1, COMB_HARMONICS + 1):
                fh = f0 * h
                if not VOICE_BAND_HZ[0] <= fh < VOICE_BAND_HZ[1]:
                    continue
                pos = fh / df - 1.0  # index into the sliced bins (bin 0 dropped)
                lo = int(math.floor(pos))
                for b, w in ((lo, 1.0 - (pos - lo)), (lo + 1, pos - lo)):
                    if 0 <= b < self._n_bins:
                        comb[b, j] += w
        self._comb, self._f0s = comb, f0s.astype(np.float32)
        # The harmony's pitch classes (200 Hz–2 kHz, where a bin is at most ~a semitone wide)
        pc = np.zeros((self._n_bins, 2), dtype=np.float32)
        sel = (f >= 200.0) & (f <= 2000.0)
        angle = 2 * np.pi * (12 * np.log2(np.where(sel, f, 440.0) / 440.0 + 1e-12) + 9) / 12.0  # C = 0
        pc[sel, 0], pc[sel, 1] = np.cos(angle[sel]), np.sin(angle[sel])
        self._project = np.ascontiguousarray(np.concatenate([self._to_sums, self._bass_f[:, None], pc, self._comb], axis=1))
        # each bin's frequency-median window (reflected at the edges), as indices: one gather
        k = self._kernel
        idx = np.arange(self._n_bins)[:, None] + np.arange(k)[None] - k // 2
        idx = np.abs(idx)
        idx = np.where(idx >= self._n_bins, 2 * (self._n_bins - 1) - idx, idx)
        self._freq_window = idx
        self._decay = [math.exp(-1.0 / (r * fps)) for r in RELEASE_S]
        self._agc_rate = 1.0 / (AGC_TAU_S * fps)
        self._gap = max(1, int(round(ONSET_GAP_S * fps)))
        self._peak_decay = 0.5 ** (1.0 / (PEAK_HALF_S * fps))
        self._tail_decay = math.exp(-1.0 / (KICK_TAIL_S * fps)) if KICK_TAIL_S > 0 else 0.0
        self._bass_bins = np.nonzero(bass)[0]
        self.reset()

    def reset(self) -> None:
        """Forget the stream (a new track)."""
        self._hist = np.zeros((self._n_bins, self.past + self.look_ahead), dtype=np.float32)
        self._prev_logp = np.zeros((2, self._n_bins), dtype=np.float32)
        self._ref = 0.0
        self._fixed_ref: float | None = None  # offline: one gain for the track (fix_gain)
        self._count = 0
        self._env = [0.0, 0.0, 0.0, 0.0]
        self._tail = 0.0
        self._prev_lev = [[0.0] * 4, [0.0] * 4]
        self._flux_peak = 1e-6
        self._flux_mean = 0.0
        self._armed = [True] * 4
        self._since = [10**6] * 4
        self._last = Stems(look_ahead_s=self.look_ahead_s)

    # ----------------------------------------------------------------- streaming
    def process(self, mags: np.ndarray) -> Stems:
        """Feed the magnitude spectra of n new hops (n × n_fft/2+1); the newest separated hop's
        stems, with `onset` and `hit` covering the whole call. n = 0 returns the last ones again."""
        rows = self.rows(mags)
        if len(rows) == 0:
            return self._last
        self._last = Stems(
            level=tuple(rows.level[-1].tolist()), onset=tuple(rows.onset.max(axis=0).tolist()),
            hit=_bools4(rows.hit.any(axis=0)), bass_hz=float(rows.bass_hz[-1]),
            voice_hz=float(rows.voice_hz[-1]), voice_salience=float(rows.voice_salience[-1]),
            harmonic_hue=float(rows.harmonic_hue[-1]), look_ahead_s=self.look_ahead_s,
        )
        return self._last

    def rows(self, mags: np.ndarray) -> StemRows:
        """Streaming, every hop's row (the hop `look_ahead` hops before each new one)."""
        x = self._spectra(mags)
        n = len(x)
        if n == 0:
            return self._post(x, x, running=False)
        full = np.concatenate([self._hist, x.T], axis=1)  # bins × time: the median runs along rows
        self._hist = full[:, n:]
        w = self.past + self.look_ahead + 1
        if n == 1:  # the live case: one partial sort of the window
            harmonic = np.partition(full, w // 2, axis=1)[:, w // 2][None]
        else:
            harmonic = _median(sliding_window_view(full, w, axis=1)).T
        return self._post(np.ascontiguousarray(full[:, self.past : self.past + n].T), harmonic,
                          running=self._fixed_ref is None)

    # ----------------------------------------------------------------- offline
    def fix_gain(self, power_sums: np.ndarray) -> None:
        """Offline: one gain for the whole track, from every hop's `total_power` (not silence)."""
        loud = power_sums[power_sums >= SILENT_POWER]
        self._fixed_ref = float(np.sqrt(loud).mean()) if len(loud) else 0.0
        self._ref = self._fixed_ref

    def total_power(self, mags: np.ndarray) -> np.ndarray:
        """Per hop, the power the gain is measured on (for `fix_gain`)."""
        x = self._spectra(mags)
        return (x * x).sum(axis=1)

    def flush(self) -> StemRows:
        """The rows still held back by the look-ahead (feeds that many silent frames)."""
        return self.rows(np.zeros((self.look_ahead, self.n_fft // 2 + 1), dtype=np.float32))

    # ----------------------------------------------------------------- shared
    def _spectra(self, mags: np.ndarray) -> np.ndarray:
        m = np.asarray(mags, dtype=np.float32)
        if m.ndim == 1:
            m = m[None]
        x = m[:, self._bins]
        if x.size and not np.isfinite(x).all():
            x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        return x

    def _post(self, x: np.ndarray, harmonic: np.ndarray, running: bool) -> StemRows:
        """Masks, stem energies, descriptors, then the per-hop envelopes and onsets."""
        n = len(x)
        if n == 0:
            z = np.zeros(0)
            return StemRows(np.zeros((0, 4)), np.zeros((0, 4)), np.zeros((0, 4), dtype=bool), z, z, z, z, z)
        percussive = _median(x[:, self._freq_window])
        h2, p2 = harmonic * harmonic, (percussive * percussive) * (1.0 / (PERCUSSIVE_MARGIN * PERCUSSIVE_MARGIN))
        mask = h2 / (h2 + p2 + 1e-12)
        hmag = mask * x
        pmag = x - hmag
        hpow = hmag * hmag
        sums = hpow @ self._project  # n × (bass, above bass, voice band, Σf·bass, pitch-class x, y, f0 combs…)
        comb = sums[:, 6:]
        best = comb.argmax(axis=1)
        capture = comb[np.arange(n), best]
        share = capture / (sums[:, 2] + 1e-9)  # how much of the voice band that one pitch holds
        salience = np.clip((share - SALIENCE_FLOOR) / SALIENCE_SPAN, 0.0, 1.0)
        voice = np.minimum(capture * salience, sums[:, 2])
        ppow = pmag * pmag
        energies = np.stack([ppow.sum(axis=1), sums[:, 0], np.maximum(sums[:, 1] - voice, 0.0), voice], axis=1)
        low_hits = ppow[:, self._bass_bins].sum(axis=1)  # a kick's attack, for its tail (see _envelopes)
        total = (x * x).sum(axis=1)
        bass_hz = sums[:, 3] / (sums[:, 0] + 1e-9)
        bass_hz = np.where(sums[:, 0] > DESCRIBED_SHARE * total, bass_hz, 0.0)  # a pitch only for a stem that sounds
        voice_hz = np.where(voice > DESCRIBED_SHARE * total, self._f0s[best], 0.0)
        hue = (np.arctan2(sums[:, 5], sums[:, 4]) / (2 * np.pi)) % 1.0
        logp = np.log1p(pmag)
        lagged = np.concatenate([self._prev_logp, logp])
        flux = np.maximum(logp - lagged[:-2], 0.0).sum(axis=1) / self._n_bins
        self._prev_logp = lagged[-2:].copy()
        level, onset, hit = self._envelopes(energies, low_hits, total, flux, running)
        silent = total < SILENT_POWER
        salience = np.where(silent, 0.0, salience)
        return StemRows(level, onset, hit, np.where(silent, 0.0, bass_hz), np.where(silent, 0.0, voice_hz),
                        salience, np.where(silent, 0.0, hue), np.where(silent, 0.0, flux))

    def _envelopes(self, energies: np.ndarray, low_hits: np.ndarray, total: np.ndarray, flux: np.ndarray,
                   running: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hop by hop (so any blocking gives the same result): the shared gain, instant-attack /
        `RELEASE_S` envelopes, and onsets (percussive: spectral flux of its part against an adaptive
        threshold; the others: a quick rise of their level). Plain floats: four stems are too few for
        numpy to pay off."""
        level: list[list[float]] = []
        onset: list[list[float]] = []
        hit: list[list[bool]] = []
        env, decay, prev0, prev1 = self._env, self._decay, self._prev_lev[0], self._prev_lev[1]
        armed, since, gap = self._armed, self._since, self._gap
        zero = [0.0, 0.0, 0.0, 0.0]
        tail, tail_decay = self._tail, self._tail_decay
        for (ep, eb, eh, ev), hit_low, tot, fl in zip(energies.tolist(), low_hits.tolist(), total.tolist(), flux.tolist()):
            # A kick's low tail rings on after its attack and the time median calls it harmonic: expect
            # it to decay from the attack's low-band energy, and give what it explains back to the drums.
            tail = max(KICK_TAIL_GAIN * hit_low, tail * tail_decay)
            moved = min(eb, tail)
            a = [math.sqrt(ep + moved), math.sqrt(eb - moved), math.sqrt(eh), math.sqrt(ev)]
            silent = tot < SILENT_POWER
            if running and not silent:
                self._count += 1
                self._ref += max(1.0 / self._count, self._agc_rate) * (math.sqrt(tot) - self._ref)
            ref = self._ref
            raw = zero if silent or ref <= 1e-9 else [min(v / ref, MAX_LEVEL) for v in a]
            env = [r if r > e * d else e * d for r, e, d in zip(raw, env, decay)]
            level.append(env)
            logl = [math.log1p(10.0 * r) for r in raw]
            rise = [v - p for v, p in zip(logl, prev0)]
            prev0, prev1 = prev1, logl
            fl = 0.0 if silent else fl
            self._flux_peak = max(fl, self._flux_peak * self._peak_decay)
            strength = fl / self._flux_peak if self._flux_peak > 1e-6 else 0.0
            onset.append([strength] + [min(max(v, 0.0), 1.0) for v in rise[1:]])
            over = [strength > ONSET_DELTA + self._flux_mean] + [v > RISE_FOR_HIT for v in rise[1:]]
            self._flux_mean += 0.02 * (strength - self._flux_mean)
            since = [c + 1 for c in since]
            fire = [o and ok and c >= gap and r > 0.02 for o, ok, c, r in zip(over, armed, since, raw)]
            since = [0 if f else c for f, c in zip(fire, since)]
            armed = [not o for o in over]
            hit.append(fire)
        self._env, self._prev_lev, self._armed, self._since, self._tail = env, [prev0, prev1], armed, since, tail
        return np.array(level).reshape(-1, 4), np.array(onset).reshape(-1, 4), np.array(hit, dtype=bool).reshape(-1, 4)


def concat_rows(parts: list[StemRows]) -> StemRows:
    """Rows of consecutive calls as one."""
    return StemRows(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(StemRows)))


def separate(mags: np.ndarray, sample_rate: int = SAMPLE_RATE, hop: int = 480, n_fft: int = 1024) -> StemRows:
    """Offline (non-causal): the stems of a whole track's spectra (hops × bins), row i for hop i: a
    centred ±OFFLINE_HALF_S median window and one gain for the track."""
    sep = StemSeparator(sample_rate, hop, n_fft, offline=True)
    sep.fix_gain(sep.total_power(mags))
    rows = concat_rows([sep.rows(mags), sep.flush()])
    return StemRows(*(getattr(rows, f.name)[sep.look_ahead :] for f in fields(StemRows)))


@dataclass(frozen=True)
class StemTrack:
    """A whole track's stems (offline), for export and `analyze --stems`: row i describes the frame
    that ends at (i + 1) / fps."""

    rows: StemRows
    fps: float

    def at(self, t: float, since: float | None = None) -> Stems:
        """The stems at time `t`; `onset`/`hit` over (since, t] (default: the one hop)."""
        n = len(self.rows)
        if n == 0:
            return Stems()
        i = min(max(int(math.floor(t * self.fps + 1e-9)) - 1, 0), n - 1)
        j = i if since is None else min(max(int(math.floor(since * self.fps + 1e-9)), 0), i)
        r = self.rows
        return Stems(level=tuple(r.level[i].tolist()), onset=tuple(r.onset[j : i + 1].max(axis=0).tolist()),
                     hit=_bools4(r.hit[j : i + 1].any(axis=0)), bass_hz=float(r.bass_hz[i]),
                     voice_hz=float(r.voice_hz[i]), voice_salience=float(r.voice_salience[i]),
                     harmonic_hue=float(r.harmonic_hue[i]))


def analyze_stems(path: str | Path, hop: int = 480, n_fft: int = 1024, block: int = 48000) -> StemTrack:
    """The offline stems of an audio file, decoded block by block twice (the gain, then the stems),
    so a long set never sits in memory as spectra."""
    from engine.audio.io import iter_audio_blocks

    sep = StemSeparator(SAMPLE_RATE, hop, n_fft, offline=True)
    sep.fix_gain(np.concatenate([sep.total_power(m) for m in _file_spectra(iter_audio_blocks(path, block), hop, n_fft)]
                                or [np.zeros(0)]))
    parts = [sep.rows(m) for m in _file_spectra(iter_audio_blocks(path, block), hop, n_fft)] + [sep.flush()]
    rows = concat_rows(parts)
    return StemTrack(StemRows(*(getattr(rows, f.name)[sep.look_ahead :] for f in fields(StemRows))), sep.fps)


def _file_spectra(blocks: Iterable[np.ndarray], hop: int, n_fft: int) -> Iterator[np.ndarray]:
    """The feature tracker's frames (n_fft points ending at each whole hop) of a stream of blocks."""
    window = np.hanning(n_fft).astype(np.float32)
    before = np.zeros(n_fft - hop, dtype=np.float32)
    pending = np.zeros(0, dtype=np.float32)
    for b in blocks:
        data = np.concatenate([pending, np.nan_to_num(np.asarray(b, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)])
        n = len(data) // hop
        if n:
            yield hop_spectra(before, data[: n * hop], hop, window)
            before = np.concatenate([before, data[: n * hop]])[-(n_fft - hop) :]
        pending = data[n * hop :]


def onset_times(rows: StemRows, fps: float, stem: int = 0, delta: float = 0.3) -> np.ndarray:
    """Offline onset times (s, frame centres) of one stem from `separate`'s rows: peaks of the
    percussive flux (stem 0) or of the level's rise (others) above a local median, ≥ ONSET_GAP_S apart."""
    from scipy.ndimage import median_filter
    from scipy.signal import find_peaks

    if stem == 0:
        act = rows.flux
    else:
        logl = np.log1p(10.0 * rows.level[:, stem])
        act = np.maximum(np.diff(logl, prepend=0.0), 0.0)
    if len(act) == 0:
        return np.zeros(0)
    scale = float(np.percentile(act, 99)) or 1.0
    a = act / scale
    floor = median_filter(a, size=max(3, int(round(0.5 * fps))) | 1, mode="nearest")
    peaks, _ = find_peaks(a, height=floor + delta, distance=max(1, int(round(ONSET_GAP_S * fps))))
    return peaks.astype(float) / fps


STEM_INDEX = {name: i for i, name in enumerate(STEM_NAMES)}
TARGETS = ("zoom", "flash", "warp", "colour", "mood", "subject")
MAX_DRIVE = 2.0
DRIVE_FLOOR = 0.1  # a stem this quiet (relative to the mix's typical level) moves nothing


@dataclass(frozen=True)
class StemRouting:
    """Which stem moves which part of the picture, and how much (a preset's `[stems]`, as plain data).

    Targets: `zoom` and `flash` (the compositor's zoom pulse and brightness), `warp` (its feedback
    warp and the shader's flow), `colour` (the tint's hue follows the harmony, its strength the
    stem), `mood` (the shader palette's vividness), `subject` (how strongly the prompt holds its
    subject: the conditioning's audio weight). A target's stem is one of STEM_NAMES or "off".
    """

    zoom: str = "percussive"
    zoom_amount: float = 1.0
    flash: str = "percussive"
    flash_amount: float = 0.5
    warp: str = "bass"
    warp_amount: float = 1.0
    colour: str = "harmonic"
    colour_amount: float = 1.0
    mood: str = "harmonic"
    mood_amount: float = 0.5
    subject: str = "voice"
    subject_amount: float = 0.5

    def routes(self) -> dict[str, tuple[str, float]]:
        """target → (stem, amount)."""
        return {"zoom": (self.zoom, self.zoom_amount), "flash": (self.flash, self.flash_amount),
                "warp": (self.warp, self.warp_amount), "colour": (self.colour, self.colour_amount),
                "mood": (self.mood, self.mood_amount), "subject": (self.subject, self.subject_amount)}

    def drive(self, stems: Stems, target: str) -> float:
        """0..MAX_DRIVE·amount: the routed stem's level above DRIVE_FLOOR (capped at MAX_DRIVE) times
        the amount; 0 when the target is off or the level is not a number."""
        stem, amount = self.routes()[target]
        if stem not in STEM_INDEX or amount <= 0:
            return 0.0
        level = float(stems.level[STEM_INDEX[stem]])
        return amount * (min(level, MAX_DRIVE) - DRIVE_FLOOR) if math.isfinite(level) and level > DRIVE_FLOOR else 0.0


NO_STEMS = StemRouting(zoom="off", flash="off", warp="off", colour="off", mood="off", subject="off")
