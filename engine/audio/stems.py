"""Stems, live: percussive, bass, harmonic and voice envelopes from the spectra the features compute.

No model and no download: harmonic/percussive separation by median filtering of the magnitude
spectrogram (Fitzgerald 2010, librosa's `hpss`), made streaming. For each 1024-point frame (the
feature tracker's, so no second FFT) up to 12 kHz, summed into `N_BANDS` bands (single bins at the
bottom, log-spaced above: the medians cost a quarter of what they cost on every bin):

- the **harmonic** estimate is the median of each band's power over time: `PAST_S` of past frames
  (`BASS_PAST_S` in the bass band, so a bass note turns harmonic sooner), the frame itself and
  `LOOK_AHEAD_S` (20 ms) of look-ahead; the **percussive** one is the median
  over frequency (`BAND_KERNEL` bands reaching ±`FREQ_SPAN_HZ`, ±`LOW_SPAN_HZ` in the bass band) of
  the frame alone; soft (Wiener) masks per band split each of its bins between them;
- **bass** is the harmonic part in `BASS_BAND_HZ`, less the ringing tail a kick leaves there (it
  decays from the low-band hit of a broadband transient: `KICK_TAIL_S`), plus the percussive part
  of a low hit with no broadband one near it (a bass note's attack); **voice** (the lead) is the harmonic energy a
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from engine.audio.onsets import hop_spectra
from engine.types import SAMPLE_RATE, STEM_NAMES, Stems

LOOK_AHEAD_S = 0.02  # streaming: the median sees this much after the frame (issue: ≤ 30 ms)
PAST_S = 0.08  # streaming: and this much before it
BASS_PAST_S = 0.04  # in the bass band
OFFLINE_HALF_S = 0.15  # offline: a centred window of ±this
PERCUSSIVE_MARGIN = 2.0  # a bin is percussive only where the frequency median beats the time median by this
N_BANDS = 64  # the medians run on this many bands: single bins at the bottom, log-spaced above
BAND_KERNEL = 9  # bands in the frequency median: a hit is broadband, a partial is not
FREQ_SPAN_HZ = 300.0  # and they reach at least this far either side,
MAX_HZ = 12000.0
BASS_BAND_HZ = (20.0, 180.0)  # where the bass stem is read (the harmonic part)
LOW_SPAN_HZ, LOW_SPAN_BELOW_HZ = 400.0, BASS_BAND_HZ[1]  # and this far in the bass band (a bass note fills it: no "broadband hit")
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
KICK_TAIL_S, KICK_TAIL_GAIN = 0.12, 2.0  # a kick's low tail: energy decay time, and its size against the attack
BASS_ATTACK_AFTER = 3  # hops after a broadband hit from which a low hit counts as a bass note's attack
ONSET_DELTA = 0.2  # percussive: a hit is a flux this far (of its recent peak) above its recent mean
PEAK_HALF_S = 14.0  # the flux peak it is measured against halves in this long
ONSET_GAP_S = 0.06  # no two hits of one stem closer than this
RISE_FOR_HIT = 0.35  # bass/harmonic/voice: rise of log1p(10·level) over 20 ms that counts as an onset


def _median(x: np.ndarray) -> np.ndarray:
    """Median along the last axis (odd length): one partial sort, cheaper than np.median."""
    k = x.shape[-1] // 2
    return np.partition(x, k, axis=-1)[..., k]


def _band_edges(n_bins: int, n_bands: int) -> np.ndarray:
    """Edges (indices into `n_bins` bins) of about `n_bands` log-spaced bands at least one bin wide."""
    for k in range(n_bands, 4 * n_bands):
        edges = np.unique(np.round(np.geomspace(1, n_bins + 1, k + 1)).astype(int)) - 1
        if len(edges) > n_bands:
            return edges
    return np.arange(n_bins + 1)


def _unit(v: float) -> float:
    return 0.0 if v < 0.0 else 1.0 if v > 1.0 else v


def _bools4(a: Any) -> tuple[bool, bool, bool, bool]:
    b = [bool(v) for v in np.asarray(a).tolist()]
    return b[0], b[1], b[2], b[3]


_BANDS = 4  # the band projection's columns: harmonic above the bass band, percussive above it and in it, flux
_HEAD = 5  # the bin projection's first columns: harmonic bass, voice band, Σf·bass, pitch class x, y (then the combs)
_COLUMNS = 17  # a row: level ×4, onset ×4, hit ×4 (0/1), bass_hz, voice_hz, voice_salience, harmonic_hue, flux


class _Column:
    """Columns of `StemRows.table`, read as an attribute."""

    def __init__(self, columns: slice | int) -> None:
        self.columns = columns

    def __get__(self, rows: StemRows, owner: type | None = None) -> np.ndarray:
        return rows.table[:, self.columns]


@dataclass(frozen=True)
class StemRows:
    """Per-hop results, one row per hop in one float table (n × 17): `level`/`onset` n×4
    (STEM_NAMES order), `hit` n×4 bool, `bass_hz`, `voice_hz`, `voice_salience`, `harmonic_hue` (n,).
    `flux`: the percussive stem's onset activation (n,), for offline peak picking."""

    table: np.ndarray

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: slice) -> StemRows:
        return StemRows(self.table[index])

    level = _Column(slice(0, 4))
    onset = _Column(slice(4, 8))
    bass_hz, voice_hz, voice_salience, harmonic_hue, flux = (_Column(i) for i in range(12, 17))

    @property
    def hit(self) -> np.ndarray:
        return self.table[:, 8:12] > 0.5


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
        # the bass band's time median looks back less far (streaming): a bass note is harmonic sooner
        bass_past = self.past if offline else max(1, int(round(BASS_PAST_S * fps)))
        self._bass_window = bass_past + self.look_ahead + 1 - (bass_past + self.look_ahead) % 2
        freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
        self._bins = slice(1, int(np.searchsorted(freqs, MAX_HZ, side="right")))
        f = freqs[self._bins]
        self._n_bins = n_bins = len(f)
        df = sample_rate / n_fft
        # the bands the medians run on: one bin each at the bottom, log-spaced above
        edges = _band_edges(n_bins, N_BANDS)
        widths = np.diff(edges)
        nb = len(widths)
        self._band_of_bin = band_of_bin = np.repeat(np.arange(nb), widths)
        # bin power → each band's mean power per bin, and (the last column) the frame's power: one matmul
        self._to_bands = np.zeros((n_bins, nb + 1), dtype=np.float32)
        self._to_bands[np.arange(n_bins), band_of_bin] = 1.0 / widths[band_of_bin]
        self._to_bands[:, nb] = 1.0
        # harmonic power per bin → (bass band, above it, the voice band): one matmul
        bass = (f >= BASS_BAND_HZ[0]) & (f < BASS_BAND_HZ[1])
        to_sums = np.stack([bass, f >= BASS_BAND_HZ[1], (f >= VOICE_BAND_HZ[0]) & (f < VOICE_BAND_HZ[1])],
                           axis=1).astype(np.float32)
        bass_f = np.where(bass, f, 0.0).astype(np.float32)
        # The lead: for each candidate f0, the power at its first harmonics (linear interpolation
        # between the two nearest bins), restricted to the voice band.
        f0s = F0_RANGE_HZ[0] * 2.0 ** (np.arange(int(F0_STEPS_PER_OCTAVE * math.log2(F0_RANGE_HZ[1] / F0_RANGE_HZ[0])) + 1)
                                       / F0_STEPS_PER_OCTAVE)
        comb = np.zeros((n_bins, len(f0s)), dtype=np.float32)
        for j, f0 in enumerate(f0s):
            for h in range(1, COMB_HARMONICS + 1):
                fh = f0 * h
                if not VOICE_BAND_HZ[0] <= fh < VOICE_BAND_HZ[1]:
                    continue
                pos = fh / df - 1.0  # index into the sliced bins (bin 0 dropped)
                lo = int(math.floor(pos))
                for b, w in ((lo, 1.0 - (pos - lo)), (lo + 1, pos - lo)):
                    if 0 <= b < n_bins:
                        comb[b, j] += w
        self._f0s = f0s.tolist()
        # The harmony's pitch classes (200 Hz–2 kHz, where a bin is at most ~a semitone wide)
        pc = np.zeros((n_bins, 2), dtype=np.float32)
        sel = (f >= 200.0) & (f <= 2000.0)
        angle = 2 * np.pi * (12 * np.log2(np.where(sel, f, 440.0) / 440.0 + 1e-12) + 9) / 12.0  # C = 0
        pc[sel, 0], pc[sel, 1] = np.cos(angle[sel]), np.sin(angle[sel])
        # two matmuls: the harmonic power of the bins needed one by one (up to 4 kHz) → bass, voice band,
        # Σf·bass, pitch class x, y, the f0 combs; and per band (harmonic power, percussive power, the
        # percussive log-power rise) → harmonic above the bass band, percussive above it and in it, the flux
        project = np.concatenate([to_sums[:, [0, 2]], bass_f[:, None], pc, comb], axis=1)
        self._n_lo = n_lo = int(np.nonzero(project.any(axis=1))[0].max()) + 1
        self._bin_project = np.ascontiguousarray(project[:n_lo])
        in_bass = np.isin(np.arange(nb), band_of_bin[bass])
        self._band_project = np.zeros((3 * nb, _BANDS), dtype=np.float32)
        self._band_project[:nb, 0] = self._band_project[nb : 2 * nb, 1] = np.where(in_bass, 0, widths)
        self._band_project[nb : 2 * nb, 2] = np.where(in_bass, widths, 0)
        self._band_project[2 * nb :, 3] = widths / n_bins  # band flux weighted as the bins it holds
        self._bob_lo = band_of_bin[:n_lo]
        # each band's frequency-median window, as indices (one gather): BAND_KERNEL bands spread over
        # at least ±FREQ_SPAN_HZ (reflected at the edges), so a bass note's few bins are no "broadband hit"
        k = BAND_KERNEL
        centre = (edges[:-1] + edges[1:] - 1) / 2.0  # in bins
        span = np.where((centre + 1) * df < LOW_SPAN_BELOW_HZ, LOW_SPAN_HZ, FREQ_SPAN_HZ)  # (bin 0 is dropped)
        step = np.maximum(widths, span / df / (k // 2))
        at = np.rint(centre[:, None] + (np.arange(k) - k // 2)[None] * step[:, None]).astype(int)
        at = np.abs(at)
        at = np.where(at >= n_bins, 2 * (n_bins - 1) - at, at)
        self._freq_window = band_of_bin[at]
        self._n_bass = int(np.searchsorted(edges, np.count_nonzero(f < BASS_BAND_HZ[1]), side="right")) - 1  # bands wholly in it
        # One hop, both medians in one gather and one partial sort: for each ring position (the ring
        # is w frames × (nb bands, the frame's power), flat, then two pad cells below and above any
        # power), row k < nb is
        # band k's time window (the bass bands' newest `_bass_window` frames), row nb + k its frequency
        # window in the centred frame; each padded to one odd length with as many cells below as above
        # every value, which leaves its median where it was.
        w = self.past + self.look_ahead + 1
        kk = max(w, BAND_KERNEL)
        lo_cell, hi_cell = w * (nb + 1), w * (nb + 1) + 1
        gather = np.empty((w, 2 * nb, kk), dtype=np.intp)
        for p in range(w):  # p: the ring position after the newest frame was written at p - 1
            newest = (p - 1 - np.arange(w)) % w
            centred = (p - 1 - self.look_ahead) % w
            for k in range(nb):
                frames = newest[: self._bass_window] if k < self._n_bass else newest
                for row, cells in ((k, frames * (nb + 1) + k), (nb + k, centred * (nb + 1) + self._freq_window[k])):
                    pad = (kk - len(cells)) // 2
                    gather[p, row] = np.concatenate([cells, [lo_cell] * pad, [hi_cell] * pad])
        self._gather = list(gather)
        feat = np.empty(3 * nb, dtype=np.float32)
        rows3 = feat.reshape(3, nb)
        self._feat = feat, rows3[1], rows3[:2], rows3[2]  # flat; percussive; the first two rows (written at once); the last
        out = np.empty(_BANDS + len(project[0]), dtype=np.float32)  # the two matmuls' results, read in one tolist
        self._out = out[: _BANDS + _HEAD], out[:_BANDS], out[_BANDS:], out[_BANDS + _HEAD :]  # sums, bands, bins, combs
        self._kth = kk // 2
        self._zero = np.zeros(nb, dtype=np.float32)
        self._scale = np.concatenate([np.ones(nb), np.full(nb, 1.0 / (PERCUSSIVE_MARGIN * PERCUSSIVE_MARGIN))]
                                     ).astype(np.float32)
        self._offset = np.concatenate([np.zeros(nb), np.full(nb, 1e-12)]).astype(np.float32)
        self._n_bands = nb
        self._decay = [math.exp(-1.0 / (r * fps)) for r in RELEASE_S]
        self._agc_rate = 1.0 / (AGC_TAU_S * fps)
        self._gap = max(1, int(round(ONSET_GAP_S * fps)))
        self._peak_decay = 0.5 ** (1.0 / (PEAK_HALF_S * fps))
        self._tail_decay = math.exp(-1.0 / (KICK_TAIL_S * fps)) if KICK_TAIL_S > 0 else 0.0
        self._consts = (tuple(self._decay), self._gap, self._tail_decay, self._peak_decay, self._f0s, self._agc_rate)
        self.reset()

    def reset(self) -> None:
        """Forget the stream (a new track)."""
        # the last past + look_ahead + 1 frames' band power and total power, a ring (w × (bands + 1), the
        # oldest at `_pos`): the time median's window; then the two pad cells of `_gather`
        w, nb = self.past + self.look_ahead + 1, self._n_bands
        self._store = np.zeros(w * (nb + 1) + 2, dtype=np.float32)
        self._store[-2:] = -1.0, np.inf
        self._ring = ring = self._store[: w * (nb + 1)].reshape(w, nb + 1)
        self._rows = [(r, r[:nb]) for r in ring]  # each ring row, whole and its bands (views made once)
        self._pos = 0
        self._x2_queue = [np.zeros(self._n_lo, dtype=np.float32)] * self.look_ahead
        self._prev_logp = [np.zeros(self._n_bands, dtype=np.float32)] * 2  # two hops ago, one hop ago
        self._fixed_ref: float | None = None  # offline: one gain for the track (fix_gain)
        # `_envelopes`' state, one list (read and written at once): the envelopes ×4; log levels of
        # bass, harmonic, voice two hops ago and one hop ago; onset detectors armed ×4; hops since
        # each stem's last hit ×4; the kick's low tail; hops since the last broadband hit; the flux
        # peak and mean; loud hops counted, and the shared gain's reference level
        self._state: list[float] = [0.0] * 10 + [True] * 4 + [10**6] * 4 + [0.0, 10**6, 1e-6, 0.0, 0, 0.0]
        self._last = Stems(look_ahead_s=self.look_ahead_s)

    # ----------------------------------------------------------------- streaming
    def process(self, mags: np.ndarray) -> Stems:
        """Feed the magnitude spectra of n new hops (n × n_fft/2+1); the newest separated hop's
        stems, with `onset` and `hit` covering the whole call. n = 0 returns the last ones again."""
        table = self._table(mags)
        if not table:
            return self._last
        last = table[-1]
        if len(table) == 1:
            onset, hit = last[4:8], last[8:12]
        else:
            onset, hit = [max(r[k] for r in table) for k in range(4, 8)], [max(r[k] for r in table) for k in range(8, 12)]
        self._last = Stems(
            level=(last[0], last[1], last[2], last[3]), onset=(onset[0], onset[1], onset[2], onset[3]),
            hit=(hit[0] > 0.5, hit[1] > 0.5, hit[2] > 0.5, hit[3] > 0.5), bass_hz=last[12], voice_hz=last[13],
            voice_salience=last[14], harmonic_hue=last[15], look_ahead_s=self.look_ahead_s,
        )
        return self._last

    def rows(self, mags: np.ndarray) -> StemRows:
        """Streaming, every hop's row (the hop `look_ahead` hops before each new one)."""
        return StemRows(np.array(self._table(mags), dtype=np.float64).reshape(-1, _COLUMNS))

    def _table(self, mags: np.ndarray) -> list[list[float]]:
        """`rows` as plain lists (what `process` reads)."""
        m = np.asarray(mags, dtype=np.float32)
        n = 1 if m.ndim == 1 else len(m)
        if n == 0:
            return []
        one = n == 1  # the live case: one hop, in 1-D arrays (numpy's 2-D gathers and slices cost more)
        x = m.reshape(-1)[self._bins] if one else m[:, self._bins]
        x2 = x * x
        # mean power per bin, per band, then the total: one hop straight into the ring (its next row)
        ring, pos, w = self._ring, self._pos, len(self._ring)
        power = x2.dot(self._to_bands, out=self._rows[pos][0]) if one else x2.dot(self._to_bands)
        if not math.isfinite(power.item(-1) if one else float(power[:, -1].sum())):  # NaN/Inf in, silence out (and no overflow)
            x = np.minimum(np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0), 1e6)
            x2 = x * x
            power = x2.dot(self._to_bands, out=self._rows[pos][0]) if one else x2.dot(self._to_bands)
        lo = x2[..., : self._n_lo]
        queue = self._x2_queue + ([lo] if one else list(lo))  # the low bins of the frames the medians centre on
        self._x2_queue = queue[n:]
        running = self._fixed_ref is None
        if one:
            self._pos = (pos + 1) % w
            return self._one(queue[0], running)
        # the time median (on power: a median commutes with the square root)
        la, nb = self.look_ahead, self._n_bands
        full = np.concatenate([ring[pos:], ring[:pos], power], axis=0)[1:]  # the last w - 1 frames, then the new
        ring[:], self._pos = full[-w:], 0
        harmonic = _median(sliding_window_view(full[:, :nb], w, axis=0))
        if self._bass_window < w:
            harmonic[:, : self._n_bass] = _median(sliding_window_view(full[w - self._bass_window :, : self._n_bass],
                                                                      self._bass_window, axis=0))
        centred = full[w - 1 - la : w - 1 - la + n]
        spread = centred[:, self._freq_window]
        spread.partition(BAND_KERNEL // 2, axis=-1)
        hs = np.stack([harmonic, spread[..., BAND_KERNEL // 2] * self._scale[-1] + self._offset[-1]], axis=1)
        return self._post(hs, centred[:, :nb], centred[:, nb].tolist(), np.array(queue[:n]), running)

    def _one(self, x2: np.ndarray, running: bool) -> list[list[float]]:
        """One hop (the live case; `_table` wrote it to the ring), in 1-D arrays and as few numpy calls
        as it takes: both medians in one gather and one partial sort (see `_gather`), then `_post`'s
        arithmetic, the two matmuls writing one buffer."""
        pos, (feat, percussive, masked, rise), (sums, bands, bins, combs), k = self._pos, self._feat, self._out, self._kth
        sel = self._store.take(self._gather[pos])
        sel.partition(k, axis=1)
        hs = sel[:, k] * self._scale  # harmonic, percussive / margin² (the strided column, then contiguous)
        hs += self._offset
        hs = hs.reshape(2, -1)
        sq = hs / (hs[0] + hs[1])  # the masks: harmonic, percussive
        sq *= sq
        centred, centred_bands = self._rows[(pos - 1 - self.look_ahead) % len(self._rows)]
        # per band (the rows of `feat`): harmonic power, percussive power, rise
        np.multiply(sq, centred_bands, out=masked)
        logp = np.log1p(np.sqrt(percussive))
        np.subtract(logp, self._prev_logp[0], out=rise)
        np.maximum(rise, self._zero, out=rise)
        self._prev_logp = [self._prev_logp[1], logp]
        feat.dot(self._band_project, out=bands)  # (ndarray.dot: less dispatch than @ on tiny arrays)
        (sq[0].take(self._bob_lo) * x2).dot(self._bin_project, out=bins)
        best = int(combs.argmax())
        row = sums.tolist()
        row.append(centred.item(-1))
        return self._envelopes([row], [best], [combs.item(best)], running)

    # ----------------------------------------------------------------- offline
    def fix_gain(self, power_sums: np.ndarray) -> None:
        """Offline: one gain for the whole track, from every hop's `total_power` (not silence)."""
        loud = power_sums[power_sums >= SILENT_POWER]
        self._fixed_ref = float(np.sqrt(loud).mean()) if len(loud) else 0.0
        self._state[-1] = self._fixed_ref

    def total_power(self, mags: np.ndarray) -> np.ndarray:
        """Per hop, the power the gain is measured on (for `fix_gain`)."""
        x = self._spectra(mags)
        x = np.minimum(np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0), 1e6)
        return (x * x).sum(axis=1)

    def flush(self) -> StemRows:
        """The rows still held back by the look-ahead (feeds that many silent frames)."""
        return self.rows(np.zeros((self.look_ahead, self.n_fft // 2 + 1), dtype=np.float32))

    # ----------------------------------------------------------------- shared
    def _spectra(self, mags: np.ndarray) -> np.ndarray:
        m = np.asarray(mags, dtype=np.float32)
        return m[None, self._bins] if m.ndim == 1 else m[:, self._bins]

    def _post(self, hs: np.ndarray, power: np.ndarray, total: list[float], x2: np.ndarray, running: bool) -> list[list[float]]:
        """Several hops (n × …): masks (per band, from the medians `hs`: n × 2 × bands, the harmonic
        one and the percussive one / margin², as `_one` computes them), the stems' powers and
        descriptors, then the per-hop envelopes and onsets."""
        sq = hs / (hs[:, 0] + hs[:, 1])[:, None]
        sq *= sq
        m2, pp = sq[:, 0], sq[:, 1] * power
        bins = (m2[:, self._bob_lo] * x2) @ self._bin_project
        logp = np.log1p(np.sqrt(pp))
        lagged = np.concatenate([self._prev_logp, logp])
        rise = lagged[2:] - lagged[:-2]
        self._prev_logp = [lagged[-2], lagged[-1]]
        bands = np.concatenate([m2 * power, pp, np.maximum(rise, 0.0, out=rise)], axis=-1) @ self._band_project
        comb = bins[..., _HEAD:]
        best = comb.argmax(axis=-1)
        return self._envelopes([b + a + [t] for a, b, t in zip(bins[:, :_HEAD].tolist(), bands.tolist(), total)], best.tolist(),
                               np.take_along_axis(comb, best[:, None], 1)[:, 0].tolist(), running)

    def _envelopes(self, sums: list[list[float]], best: list[int], capture: list[float], running: bool) -> list[list[float]]:
        """Hop by hop (so any blocking gives the same result), in plain floats (four stems are too
        few for numpy to pay off): the voice (one pitch's share of its band), the kick's low tail,
        the shared gain, instant-attack / `RELEASE_S` envelopes, and onsets (percussive: spectral
        flux of its part against an adaptive threshold; the others: a quick rise of their level)."""
        table: list[list[float]] = []
        e0, e1, e2, e3, q1, q2, q3, r1, r2, r3, a0, a1, a2, a3, c0, c1, c2, c3, tail, broad, peak, flux_mean, count, ref = self._state
        (d0, d1, d2, d3), gap, tail_decay, peak_decay, f0s, agc_rate = self._consts
        for (s_above, ep, hit_low, fl, s_bass, s_band, s_fbass, pcx, pcy, tot), j, cap in zip(sums, best, capture):
            silent = tot < SILENT_POWER
            sal = (cap / (s_band + 1e-9) - SALIENCE_FLOOR) / SALIENCE_SPAN  # how much of the voice band one pitch holds
            sal = 0.0 if sal < 0.0 else 1.0 if sal > 1.0 else sal
            ev = cap * sal
            if ev > s_band:
                ev = s_band
            eh = s_above - ev if s_above > ev else 0.0
            if silent:
                fl = 0.0
            peak = fl if fl > peak * peak_decay else peak * peak_decay
            strength = fl / peak if peak > 1e-6 else 0.0
            o0 = strength > ONSET_DELTA + flux_mean
            flux_mean += 0.02 * (strength - flux_mean)
            # A kick's low tail rings on after its attack and the time median calls it harmonic: expect
            # it to decay from the low-band energy of a broadband hit (a bass note's attack is not
            # one), and give what it explains back to the drums.
            tail *= tail_decay
            if o0 and KICK_TAIL_GAIN * hit_low > tail:
                tail = KICK_TAIL_GAIN * hit_low
            moved = s_bass if s_bass < tail else tail
            # and the other way round: a low hit with no broadband one near it is a bass note's attack
            broad = 0 if o0 else broad + 1
            if broad > BASS_ATTACK_AFTER:
                eb = s_bass - moved + hit_low
            else:
                ep, eb = ep + hit_low, s_bass - moved
            if running and not silent:
                count += 1
                ref += (1.0 / count if count * agc_rate < 1.0 else agc_rate) * (math.sqrt(tot) - ref)
            if silent or ref <= 1e-9:
                v0 = v1 = v2 = v3 = 0.0
                bass_hz = voice_hz = hue = sal = 0.0
            else:
                g = 1.0 / ref
                v0, v1 = math.sqrt(ep + moved) * g, math.sqrt(eb) * g
                v2, v3 = math.sqrt(eh) * g, math.sqrt(ev) * g
                v0, v1 = (v0 if v0 < MAX_LEVEL else MAX_LEVEL), (v1 if v1 < MAX_LEVEL else MAX_LEVEL)
                v2, v3 = (v2 if v2 < MAX_LEVEL else MAX_LEVEL), (v3 if v3 < MAX_LEVEL else MAX_LEVEL)
                floor = DESCRIBED_SHARE * tot  # a pitch only for a stem that sounds
                bass_hz = s_fbass / (s_bass + 1e-9) if s_bass > floor else 0.0
                voice_hz = f0s[j] if ev > floor else 0.0
                hue = (math.atan2(pcy, pcx) / (2 * math.pi)) % 1.0
            e0, e1, e2, e3 = e0 * d0, e1 * d1, e2 * d2, e3 * d3
            e0, e1, e2, e3 = (v0 if v0 > e0 else e0), (v1 if v1 > e1 else e1), (v2 if v2 > e2 else e2), (v3 if v3 > e3 else e3)
            l1, l2, l3 = math.log1p(10.0 * v1), math.log1p(10.0 * v2), math.log1p(10.0 * v3)
            u1, u2, u3 = l1 - q1, l2 - q2, l3 - q3  # rises over two hops
            q1, q2, q3, r1, r2, r3 = r1, r2, r3, l1, l2, l3
            o1, o2, o3 = u1 > RISE_FOR_HIT, u2 > RISE_FOR_HIT, u3 > RISE_FOR_HIT
            c0, c1, c2, c3 = c0 + 1, c1 + 1, c2 + 1, c3 + 1
            f0 = o0 and a0 and c0 >= gap and v0 > 0.02
            f1 = o1 and a1 and c1 >= gap and v1 > 0.02
            f2 = o2 and a2 and c2 >= gap and v2 > 0.02
            f3 = o3 and a3 and c3 >= gap and v3 > 0.02
            c0, c1, c2, c3 = (0 if f0 else c0), (0 if f1 else c1), (0 if f2 else c2), (0 if f3 else c3)
            a0, a1, a2, a3 = not o0, not o1, not o2, not o3
            table.append([e0, e1, e2, e3, strength, _unit(u1), _unit(u2), _unit(u3), float(f0), float(f1), float(f2),
                          float(f3), bass_hz, voice_hz, sal, hue, fl])
        self._state = [e0, e1, e2, e3, q1, q2, q3, r1, r2, r3, a0, a1, a2, a3, c0, c1, c2, c3, tail, broad, peak, flux_mean,
                       count, ref]
        return table


def concat_rows(parts: list[StemRows]) -> StemRows:
    """Rows of consecutive calls as one."""
    return StemRows(np.concatenate([p.table for p in parts]))


def separate(mags: np.ndarray, sample_rate: int = SAMPLE_RATE, hop: int = 480, n_fft: int = 1024) -> StemRows:
    """Offline (non-causal): the stems of a whole track's spectra (hops × bins), row i for hop i: a
    centred ±OFFLINE_HALF_S median window and one gain for the track."""
    sep = StemSeparator(sample_rate, hop, n_fft, offline=True)
    sep.fix_gain(sep.total_power(mags))
    return concat_rows([sep.rows(mags), sep.flush()])[sep.look_ahead :]


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
    return StemTrack(concat_rows(parts)[sep.look_ahead :], sep.fps)


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
