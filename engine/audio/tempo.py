"""Tempo and beat phase from an onset activation (shared by the live and the offline tracker).

`estimate_tempo` autocorrelates a few seconds of activation and picks the beat period with three
rules, in order:

1. a log-Gaussian prior around 120 BPM times a comb (the lag plus half its double), so a real
   periodicity whose multiples also repeat beats a stray peak;
2. octave up: if the autocorrelation at half the chosen period is nearly as strong
   (`HALF_EVIDENCE`), the beats between "our" beats are as loud as ours, so the tempo is double
   (a 180 BPM click is not 90 BPM; a four-on-the-floor kick is not half time);
3. continuity: given the tempo the tracker holds now, an octave jump down from it (a half-time
   breakdown, kick on 1 and snare on 3 alone) is refused — every onset of the slower pulse still
   lands on the held grid — and an octave jump up is refused while the held period still has
   `KEEP_EVIDENCE` of the winner's support. The caller says whether the held tempo has been weighed
   against its half (`half_heard`): a first estimate from 1.5 s of music cannot see 70 BPM at all,
   so its 140 must not shut 70 out once there is enough music to hear it.

The period is then refined below one frame from the peaks at 1…K times the lag (their slope), which
is what makes "within 1 %" hold at 180 BPM with 10 ms frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_BPM, MAX_BPM = 60.0, 200.0
PRIOR_BPM, PRIOR_OCTAVES = 120.0, 0.8  # centre and width (σ, in octaves) of the tempo prior
HALF_EVIDENCE = 0.55  # ac(period/2) ≥ this × ac(period) → the tempo is double
KEEP_EVIDENCE = 0.2  # keep the held tempo over an octave jump while it has this much support
OCTAVE_TOLERANCE = 0.05


@dataclass(frozen=True)
class Tempo:
    """A tempo estimate: `period` in frames (fractional), `confidence` = normalised
    autocorrelation at that period (0 = no periodicity, 1 = a perfect pulse train)."""

    period: float
    fps: float
    confidence: float

    @property
    def bpm(self) -> float:
        return 60.0 * self.fps / self.period

    @property
    def seconds(self) -> float:
        return self.period / self.fps


def autocorrelation(env: np.ndarray) -> np.ndarray:
    """Biased autocorrelation of the mean-removed signal, normalised to ac[0] = 1 (zeros if flat)."""
    x = np.asarray(env, dtype=np.float64)
    x = x - x.mean()
    n = len(x)
    nfft = 1 << int(math.ceil(math.log2(max(2, 2 * n))))
    spec = np.fft.rfft(x, nfft)
    ac = np.fft.irfft(spec * np.conj(spec), nfft)[:n]
    return ac / ac[0] if ac[0] > 1e-12 else np.zeros(n)


def _peak(ac: np.ndarray, centre: float, width: int) -> tuple[float, float]:
    """(sub-frame position, height) of the highest point of ac within ±width of centre."""
    a = max(1, int(round(centre)) - width)
    b = min(len(ac) - 2, int(round(centre)) + width)
    if b < a:
        return centre, 0.0
    j = a + int(np.argmax(ac[a : b + 1]))
    y0, y1, y2 = ac[j - 1], ac[j], ac[j + 1]
    den = y0 - 2 * y1 + y2
    off = 0.5 * (y0 - y2) / den if abs(den) > 1e-12 else 0.0
    return j + max(-0.5, min(0.5, off)), float(y1)


def _refine(ac: np.ndarray, lag: int) -> float:
    """The period (frames) as the least-squares slope of the peaks at k · lag, k = 1…6."""
    period, h1 = _peak(ac, lag, 1)
    num, den = period, 1.0
    for k in range(2, 7):
        centre = k * num / den
        if centre > 0.75 * len(ac):
            break
        pos, h = _peak(ac, centre, max(1, k // 2))
        if h < 0.3 * h1:
            continue
        num += k * pos
        den += k * k
    return num / den


def estimate_tempo(env: np.ndarray, fps: float, held: float | None = None, half_heard: bool = True,
                   prior_octaves: float = PRIOR_OCTAVES) -> Tempo | None:
    """The beat period of `env` (onset activation at `fps`), or None without a periodicity.

    `held`: the period (frames) the caller follows now, for the continuity rule; `half_heard`: it
    was chosen over half its tempo (else a jump down to half of it is allowed); `prior_octaves`: the
    prior's width (a beat network's activation already says which level is the beat: it needs less).
    """
    ac = autocorrelation(env)
    lo = int(60.0 * fps / MAX_BPM)
    hi = min(int(math.ceil(60.0 * fps / MIN_BPM)) + 1, len(ac) // 2)
    if hi <= lo + 2:
        return None
    lags = np.arange(lo, hi)
    bpm = 60.0 * fps / lags
    prior = np.exp(-0.5 * (np.log2(bpm / PRIOR_BPM) / prior_octaves) ** 2)
    double = ac[np.minimum(2 * lags, len(ac) - 1)]
    score = (np.maximum(ac[lo:hi], 0.0) + 0.5 * np.maximum(double, 0.0)) * prior
    lag = int(lags[int(np.argmax(score))])
    strength = float(ac[lag])
    if strength <= 0.05:
        return None
    while lag / 2 >= lo:  # octave up while the half period is (nearly) as strong
        pos, h = _peak(ac, lag / 2, 1)
        if h < HALF_EVIDENCE * strength:
            break
        lag, strength = int(round(pos)), h
    period = _refine(ac, lag)
    if held is not None and lo <= held < hi:
        ratio = lag / held
        if half_heard and abs(ratio - 2.0) < OCTAVE_TOLERANCE * 2.0:  # half as fast: every onset still falls on the held grid
            period /= 2.0
        elif abs(ratio - 0.5) < OCTAVE_TOLERANCE * 0.5:
            _, h_held = _peak(ac, held, 1)
            if h_held >= KEEP_EVIDENCE * strength:
                period, strength = _refine(ac, int(round(held))), h_held
    return Tempo(period, fps, max(0.0, min(1.0, strength)))


def comb_phase(env: np.ndarray, period: float, n_beats: int = 6, decay: float = 0.8) -> tuple[float, float]:
    """Where the newest beat of a pulse train with `period` (frames) sits in `env`.

    Returns (offset, contrast): the newest beat is `offset` frames (fractional) before the last
    frame of `env`; contrast = (best − mean) / best of the comb score over all offsets, 0 when flat.
    """
    n = len(env)
    n_beats = int(min(n_beats, (n - 1) // period))
    if n_beats < 1 or period < 2:
        return 0.0, 0.0
    ks = np.arange(n_beats + 1)
    pos = (n - 1) - np.arange(int(math.ceil(period)))[:, None] - ks * period  # fractional frame of each comb tooth
    score = np.interp(pos, np.arange(n), env) @ decay**ks
    j = int(np.argmax(score))
    best = float(score[j])
    if best <= 1e-9:
        return 0.0, 0.0
    if 0 < j < len(score) - 1:
        y0, y1, y2 = score[j - 1], score[j], score[j + 1]
        den = y0 - 2 * y1 + y2
        shift = 0.5 * (y0 - y2) / den if abs(den) > 1e-12 else 0.0
    else:
        shift = 0.0
    return j + max(-0.5, min(0.5, shift)), (best - float(score.mean())) / best
