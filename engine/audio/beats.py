"""The live beat and downbeat tracker: a phase-locked grid that predicts the next beat.

It takes magnitude spectra (shared with the feature tracker through `update_spectra`, a block of
hops at a time, or its own FFT of one hop through `update`) and, for each 10 ms hop:

- adds the hop's onset activation (`engine.audio.onsets`) to an 8 s history;
- every 0.25 s re-estimates the tempo from the history since the music started
  (`engine.audio.tempo.estimate_tempo`: octave prior, continuity with the held tempo);
- every 50 ms measures where the newest beat sits (a comb over the last four beats) and pulls the
  grid towards it: a second-order phase-locked loop, so a tempo ramp is followed without lag;
- emits a beat in the hop that crosses a grid beat — a prediction, not a detection, so it is on
  time rather than one detection delay late — and, three quarters of a beat later, scores that
  beat's accent for the bar counter (`engine.audio.accents`);
- stops emitting beats (and publishes an unlocked grid) once a whole beat passed in digital
  silence, so the picture does not pulse on after the music ends, and forgets the grid after 2 s,
  so the next song locks afresh.

`grid` is the newest `BeatGrid` (a frozen value, safe to hand to other threads): `grid.next_beat(t)`
is when to schedule the next pulse, `grid.position_at(t)` the bar position. Taps (`tap(t)`) take
over tempo and phase until `clear_taps()`.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Sequence

import numpy as np

from engine.audio.accents import MIN_BAR_CONFIDENCE, BarCounter, MeterCounter, SectionDetector, accent_parts
from engine.audio.onsets import ONSET_DELAY_S, Onsets, OnsetDetector, SampleTail, hop_spectra
from engine.audio.tempo import PRIOR_OCTAVES, comb_phase, estimate_tempo
from engine.types import SAMPLE_RATE, BeatGrid

HISTORY_S = 8.0
TEMPO_EVERY_S, PHASE_EVERY_S = 0.25, 0.05
MIN_MUSIC_S = 1.5  # music heard before the first tempo estimate
HALF_WEIGHED_BEATS = 8  # beats of half the tempo a window needs before the tempo may refuse its half
PHASE_WINDOW_S = 4.0  # the phase comb looks this far back
SILENCE_RMS = 1e-4  # -80 dBFS
QUIET_S = 0.05  # after a beat period and this much digital silence, no beat: `grid` reads unlocked
UNLOCK_SILENCE_S = 2.0  # ...and after this much the grid is forgotten
TEMPO_JUMP = 0.08  # a new tempo this far (relative) from the held one replaces it at once
TEMPO_BLEND = 0.25  # otherwise the held tempo moves this fraction towards each estimate
PLL_PHASE_GAIN, PLL_PERIOD_GAIN = 0.2, 0.03
MIN_CONFIDENCE = 0.15  # grid confidence needed to emit beats
TAP_GAP_S = 2.0
RECENT = 64  # beats and downbeats kept in `beats` / `downbeats`


class _History:
    """The last `n` hops of activation (strength, low part, band levels), oldest first on read."""

    def __init__(self, n: int, n_bands: int) -> None:
        self.n = n
        self.strength = np.zeros(n, dtype=np.float32)
        self.low = np.zeros(n, dtype=np.float32)
        self.bands = np.zeros((n, n_bands), dtype=np.float32)
        self.pos = 0

    def push(self, strength: float, low: float, bands: np.ndarray) -> None:
        p = self.pos % self.n
        self.strength[p], self.low[p], self.bands[p] = strength, low, bands
        self.pos += 1

    def recent(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx = self._index(k)
        return self.strength[idx], self.low[idx], self.bands[idx]

    def recent_strength(self, k: int) -> np.ndarray:
        return self.strength[self._index(k)]

    def _index(self, k: int) -> np.ndarray:
        k = min(k, self.n, self.pos)
        return np.arange(self.pos - k, self.pos) % self.n


class BeatTracker:
    """Causal beat + downbeat tracking for one stream (`update` per hop, or `update_spectra` per block of hops)."""

    tempo_prior_octaves = PRIOR_OCTAVES  # the tempo prior's width (engine.audio.tempo)

    def __init__(self, sample_rate: int = SAMPLE_RATE, hop: int = 480, n_fft: int = 1024,
                 beats_per_bar: int = 4, meters: tuple[int, ...] = ()) -> None:
        """`meters`: bar lengths to choose from as the accents show (`MeterCounter`); none: always `beats_per_bar`."""
        self.sample_rate, self.hop, self.n_fft = sample_rate, hop, n_fft
        self.fps = sample_rate / hop
        self._window = np.hanning(n_fft).astype(np.float32)
        self._past = SampleTail(n_fft - hop)  # the samples before the next hop's frame
        self._onsets = OnsetDetector(sample_rate, n_fft, self.fps)
        self._hist = _History(int(HISTORY_S * self.fps), self._onsets.n_bands)
        self._bar: BarCounter | MeterCounter = MeterCounter(meters, beats_per_bar) if meters else BarCounter(beats_per_bar)
        self._sections = SectionDetector(self.fps)
        self._tempo_every = max(1, round(TEMPO_EVERY_S * self.fps))
        self._phase_every = max(1, round(PHASE_EVERY_S * self.fps))
        self.delay = ONSET_DELAY_S  # a beat at τ peaks in the activation of the hop ending τ + delay
        self.reset()

    def reset(self) -> None:
        """Forget the stream (a new track)."""
        self._past.reset()
        self._onsets.reset()
        self._reset_activation()
        self._bar.reset()
        self._sections.reset()
        self._hops = 0
        self._held = 0  # hops whose activation the batching activation holds back
        self._silent_hops = 0
        self.period: float = 0.5  # seconds per beat
        self.tempo_confidence = 0.0
        self._taps: list[float] = []
        self.tapped = False
        self.beats: deque[float] = deque(maxlen=RECENT)
        self.downbeats: deque[float] = deque(maxlen=RECENT)
        self._unlock()

    def _unlock(self) -> None:
        self._anchor: float | None = None
        self._music_hops = 0
        self._half_weighed = False  # the held tempo won over its half in a long enough window
        self._contrast = 0.0
        self._count = 0
        self._pending: deque[tuple[float, int]] = deque()  # emitted beats awaiting their accent
        self.last_beat_time: float | None = None
        self.downbeat = self.beat = False
        self.event = ""
        self._bar.reset()
        self.grid = BeatGrid(period=self.period, beats_per_bar=self.beats_per_bar)
        self._grid_key: tuple = ()

    @property
    def beats_per_bar(self) -> int:
        """Beats to a bar: fixed for the DSP accents; learned with the meter by `MeterCounter`."""
        return self._bar.beats_per_bar

    # ------------------------------------------------------------------ taps
    def tap(self, t: float) -> None:
        """The performer tapped at `t`: two or more taps under 2 s apart set the tempo (median
        gap); every tap puts a beat at `t`. Taps keep control until `clear_taps()`."""
        if self._taps and t - self._taps[-1] > TAP_GAP_S:
            self._taps = []
        self._taps = (self._taps + [float(t)])[-8:]
        if len(self._taps) >= 2:
            period = statistics.median(b - a for a, b in zip(self._taps, self._taps[1:]))
            if period > 0:
                self.period, self.tapped = period, True
        self._anchor, self.last_beat_time = float(t), float(t)
        self.grid = self._make_grid()

    def clear_taps(self) -> None:
        self._taps, self.tapped = [], False

    # ------------------------------------------------------------------ per hop
    def update(self, block: np.ndarray, t: float) -> bool:
        """One hop of samples ending at time `t`; True when a beat landed in it."""
        block = np.asarray(block, dtype=np.float32)[: self.hop]
        mags = hop_spectra(self._past.last(self.n_fft - self.hop), block, self.hop, self._window)
        self._past.append(block)
        rms = math.sqrt(float(np.dot(block, block)) / max(1, len(block)))
        return self.update_spectra(mags, t, [rms])

    def update_spectra(self, mags: np.ndarray, t: float, rms: Sequence[float]) -> bool:
        """Consecutive hops: their |rfft| rows (n_fft frames, the last ending at `t`) and RMS.
        True when a beat landed in any of them; `downbeat` and `event` likewise cover them all.

        Beats are emitted from the grid hop by hop. The activation may come in later, in batches
        (`_activation`): tempo, phase and accents are estimated only on hops whose activation is in,
        and every hop where they are due brings its batch in, so the beats are the same as hop by hop."""
        n, dt = len(mags), 1.0 / self.fps
        due = any(any(self._due(self._hops + i)) for i in range(1, n + 1))
        on = self._activation(mags, due)
        held, rows = self._held, len(on.strength)
        if rows not in (0, held + n):
            raise RuntimeError(f"activation gave {rows} rows for {held + n} hops")
        self._held = held + n if rows == 0 else 0
        strength, low = on.strength.tolist(), on.low.tolist()
        pushed = 0
        beat = downbeat = False
        event = ""
        for i, level in enumerate(rms):
            while rows and pushed <= held + i:  # the rows up to this hop (and any held from earlier calls)
                self._hist.push(strength[pushed], low[pushed], on.bands[pushed])
                pushed += 1
            self._step(t - (n - 1 - i) * dt, float(level), current=rows > 0)
            beat, downbeat, event = beat or self.beat, downbeat or self.downbeat, event or self.event
        self.beat, self.downbeat, self.event = beat, downbeat, event
        # A new grid only when what it is made of changed (most hops change nothing).
        key = (self._anchor, self.period, self.last_beat_time, self._count, self._bar.downbeat, self.beats_per_bar,
               self.tempo_confidence, self._contrast, self._bar.confidence, self._quiet, self.tapped)
        if key != self._grid_key:
            self._grid_key, self.grid = key, self._make_grid()
        return beat

    def _activation(self, mags: np.ndarray, due: bool) -> Onsets:
        """The activation the grid follows, one row per hop: here the DSP onsets (`strength` for
        tempo and phase, `low` and `bands` for the accents that find the downbeat). An activation
        that batches its work may give no rows and hold these hops back, then give their rows with
        a later call's (always up to its newest hop); `due`: an estimate is due on one of these hops,
        so every held row must come now."""
        return self._onsets.process(mags)

    def _reset_activation(self) -> None:
        """Forget the activation's own state (a subclass with another activation resets it here)."""

    def _due(self, hop: int) -> tuple[bool, bool]:
        """Whether the tempo, and the phase, are estimated on hop number `hop` (counted from 1)."""
        return hop % self._tempo_every == 0, hop % self._phase_every == 0

    def _step(self, t: float, rms: float, current: bool = True) -> None:
        """One hop ending at `t`; `current`: its activation is in the history (else it is held
        back, and this hop estimates nothing)."""
        self._hops += 1
        silent = rms < SILENCE_RMS
        self._silent_hops = self._silent_hops + 1 if silent else 0
        if self._silent_hops > UNLOCK_SILENCE_S * self.fps and (self._anchor is not None or self._music_hops):
            self._unlock()
        if not silent or self._music_hops:
            self._music_hops += 1
        self._sections.update(rms, t)
        if current:
            if not self.tapped:
                tempo_due, phase_due = self._due(self._hops)
                if tempo_due:
                    self._update_tempo()
                if phase_due:
                    self._update_phase(t)
            self._score_accents(t)
        self.beat = self._emit(t)
        self.event = self._sections.take(t, self.beat, self.downbeat, self._bar_confidence > 0)

    # ------------------------------------------------------------------ estimation
    @property
    def confidence(self) -> float:
        """0..1: periodicity strength × how clearly the beats stand out where the grid puts them."""
        if self.tapped:
            return 1.0
        if self._anchor is None:
            return 0.0
        return float(min(1.0, math.sqrt(max(self.tempo_confidence, 0.0)) * min(1.0, 2.0 * self._contrast)))

    @property
    def tempo_bpm(self) -> float:
        return 60.0 / self.period

    def _update_tempo(self) -> None:
        n = min(self._music_hops, self._hist.n)
        if n < MIN_MUSIC_S * self.fps:
            return
        held = self.period * self.fps if self._anchor is not None else None
        # the held tempo keeps its half out only once a window of HALF_WEIGHED_BEATS of the half's beats chose it
        est = estimate_tempo(self._hist.recent_strength(n), self.fps, held, self._half_weighed, self.tempo_prior_octaves)
        if est is None:
            self.tempo_confidence *= 0.8
            return
        self.tempo_confidence = est.confidence
        new = est.seconds
        if self._anchor is None or abs(new - self.period) / self.period > TEMPO_JUMP:
            self.period = new
            self._anchor = None  # re-acquire the phase for the new tempo
            self._half_weighed = False
        else:
            self.period += TEMPO_BLEND * (new - self.period)
        self._half_weighed = self._half_weighed or n >= HALF_WEIGHED_BEATS * 2 * self.period * self.fps

    def _update_phase(self, t: float) -> None:
        n = min(self._music_hops, int(PHASE_WINDOW_S * self.fps))
        period_frames = self.period * self.fps
        if self.tempo_confidence <= 0 or n < 1.5 * period_frames:
            return
        offset, contrast = comb_phase(self._hist.recent_strength(n), period_frames, n_beats=4, decay=0.7)
        self._contrast += 0.2 * (contrast - self._contrast)
        beat = t - offset / self.fps - self.delay
        if self._anchor is None:
            self._anchor = beat
            return
        k = round((beat - self._anchor) / self.period)
        predicted = self._anchor + k * self.period
        err = beat - predicted  # within ±period/2
        self._anchor = predicted + PLL_PHASE_GAIN * err
        self.period += PLL_PERIOD_GAIN * err

    # ------------------------------------------------------------------ beats out
    def _emit(self, t: float) -> bool:
        self.downbeat = False
        if self._anchor is None or self.confidence < MIN_CONFIDENCE or self._quiet:
            return False
        dt = 1.0 / self.fps
        k = math.floor((t - dt - self._anchor) / self.period + 1e-9) + 1
        beat = self._anchor + k * self.period  # the first grid beat after the previous hop
        if beat > t or (self.last_beat_time is not None and beat - self.last_beat_time < 0.5 * self.period):
            return False
        self.last_beat_time = beat
        self._count += 1
        self._pending.append((beat, self._count))
        self.beats.append(beat)
        if self._bar_confidence > 0 and (self._count - self._bar.downbeat) % self.beats_per_bar == 0:
            self.downbeat = True
            self.downbeats.append(beat)
        return True

    def _score_accents(self, t: float) -> None:
        """Score each emitted beat once three quarters of a beat of audio after it is in."""
        wait = 0.75 * self.period + self.delay
        while self._pending and t - self._pending[0][0] >= wait:
            beat, count = self._pending.popleft()
            frames = int(round((t - beat + self.period) * self.fps)) + 8
            strength, low, bands = self._hist.recent(frames)
            i = len(strength) - 1 - int(round((t - beat - self.delay) * self.fps))
            self._bar.add(count, *accent_parts(strength, low, bands, i, self.period * self.fps))

    @property
    def _quiet(self) -> bool:
        """No sound for a whole beat: the music stopped (a track's end, a pause). The grid is kept,
        but no beat is put in the silence (so at most one after the last sound, as offline)."""
        return self._silent_hops > (self.period + QUIET_S) * self.fps

    def _make_grid(self) -> BeatGrid:
        bpb = self.beats_per_bar
        if self._anchor is None or self._quiet:
            return BeatGrid(period=self.period, beats_per_bar=bpb)
        anchor, position = self._anchor, 0
        if self.last_beat_time is not None:  # re-express from the last emitted beat: its bar slot is known
            anchor += round((self.last_beat_time - anchor) / self.period) * self.period
            position = (self._count - self._bar.downbeat) % bpb
        return BeatGrid(anchor, self.period, bpb, position, self.confidence, self._bar_confidence)

    @property
    def _bar_confidence(self) -> float:
        c = self._bar.confidence
        return c if c >= MIN_BAR_CONFIDENCE else 0.0

    def predict_next(self, t: float) -> float | None:
        """When the next beat after `t` will land (None before lock)."""
        return self.grid.next_beat(t)
