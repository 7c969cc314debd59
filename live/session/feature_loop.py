"""Audio → features: the ring buffer in, the `features` slot out.

Every few milliseconds it feeds whatever the source wrote since last time to the tracker, so each
block is seen once and a beat is never missed; after an overflow (it fell a whole ring behind) it
skips to the newest audio. A source that reports an error (a device unplugged) is reopened every
`reopen_every_s` while the picture goes on. Each block's features also step the preset transitions
(`on_features`), which must see every beat for a beat-gated hard cut.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from engine.directing.drops import JUDGE_S, DropWatch, bar_seconds, drop_came
from engine.directing.live_sections import LiveSections
from engine.errors import BeatcanvasError
from engine.types import Features
from live.session.state import Board, SessionConfig
from live.session.stages import Source, Tracker

log = logging.getLogger(__name__)

NONFINITE_NOTICE_S = 5.0  # how often the HUD is told about new NaN/Inf audio


class FeatureLoop:
    def __init__(self, source: Source, tracker: Tracker, tracker_lock: threading.Lock, board: Board,
                 config: SessionConfig, on_features: Callable[[Features], None] | None = None) -> None:
        self.source, self.tracker, self.lock = source, tracker, tracker_lock
        self.board, self.config = board, config
        self.on_features = on_features
        self.lost = False  # the input is gone and being reopened
        self.track_finished = False  # the track ended and the show goes on (said once, not an error)
        self._last_t: float | None = None
        self._heard_until: float | None = None
        self._skips = 0  # times it fell a whole ring behind
        self._nonfinite_seen = 0
        self._nonfinite_told = 0.0
        self.sections = LiveSections(tracker.sample_rate)  # letters of the sections as they end (the HUD's line)
        self.drops = DropWatch()  # a build's drop, prepared until it comes or its window ends (the HUD's line)

    @property
    def heard_until(self) -> float | None:
        """The audio time the features have heard up to, once everything done with that audio is done
        (features out, transitions stepped, the drop judged); None before the first block."""
        return self._heard_until

    def run(self) -> None:
        cfg, b = self.config, self.board
        next_reopen = 0.0
        while not b.stop.is_set():
            try:
                self._check_source()
                self._pull()
            except Exception as e:  # noqa: BLE001 - a lost device must not end the show
                now = time.monotonic()
                if not self.lost:
                    self.lost = True
                    log.warning("audio input lost: %s", e)
                    b.state.set_error(f"audio input lost: {e}")
                    b.state.message = "audio input lost; reopening…"
                if now >= next_reopen:
                    next_reopen = now + cfg.reopen_every_s
                    self._reopen()
            b.stop.wait(cfg.feature_period_s)

    def _check_source(self) -> None:
        if self.source.error:
            raise BeatcanvasError(str(self.source.error))
        if not self.config.stop_when_finished and self.source.finished:
            if self.source.live_input:  # a live input whose stream stopped by itself: the device went away
                raise BeatcanvasError("the audio input stopped (device unplugged?)")
            if not self.track_finished:  # a track that ended while the show goes on: say so, once
                self.track_finished = True
                log.info("track finished")
                self.board.state.message = "track finished"
            return
        if self.lost:  # it came back
            self.lost = False
            self.board.state.message = ""
            log.info("audio input is back")

    def _reopen(self) -> None:
        try:
            try:
                self.source.stop()
            except Exception:  # noqa: BLE001 - it is already broken
                pass
            self.source.start()
            self.board.report.reopens += 1
            self._last_t = None
            log.info("audio input reopened")
        except Exception as e:  # noqa: BLE001
            log.info("reopen failed: %s", e)

    def _pull(self) -> None:
        """Feed every sample written since the last call to the tracker; if we fell more than a
        ring's length behind (overflow), skip to the newest audio."""
        ring = self.source.ring
        clock = float(self.source.clock())
        last = self._last_t
        want = 0.1 if last is None else min(10.0, max(0.02, clock - last + 0.05))
        window = ring.latest(want)
        if last is not None:
            gap = window.t_end - last
            if gap > window.duration + 1e-6:
                if want < 10.0:
                    window = ring.latest(min(10.0, gap + 0.05))
                    gap = window.t_end - last
                if gap > window.duration + 1e-6:
                    self._skips += 1
                    log.warning("features fell %.1f s behind the audio; skipping ahead", gap)
            n = int(round(min(gap, window.duration) * self.tracker.sample_rate))
        else:
            n = len(window.samples)
        self._notice_nonfinite(ring.nonfinite)
        if n <= 0:
            return
        block = np.asarray(window.samples[-n:], dtype=np.float32)
        # The whole block at once: the tracker batches its hops (a feature loop that fell behind catches
        # up), and its beat, downbeat, onset and event flags cover every hop of the block.
        with self.lock:
            feats = self.tracker.process(block, window.t_end)
        self._last_t = window.t_end
        rig = self.board.rig
        if rig is not None:  # Ableton Link's tempo and phase, when it leads
            with self.board.faults.guard("Link"):
                feats = rig.features(feats)
        direction = self.board.direction
        if direction is not None:  # live input: the beats heard grow the schedule's bar grid
            with self.board.faults.guard("schedule"):
                direction.observe(feats)
        with self.board.faults.guard("sections"):
            self._sections(block, window.t_end, feats)
        said = self.drops.step(feats.t, feats.event, feats.grid)
        self._judge_drop(said, window.t_end, feats)
        if said:
            self.board.report.drops.append((feats.t, said))
            del self.board.report.drops[:-100]
        self.board.state.drop = self.drops.text(feats.t, feats.grid)
        self.board.features.put(feats)
        self.board.report.overflows = self._skips + self.source.stats.overflows
        if self.on_features is not None:
            with self.board.faults.guard("transitions"):
                self.on_features(feats)
        self._heard_until = window.t_end

    def _sections(self, block: np.ndarray, t_end: float, feats: Features) -> None:
        """Live section letters: a section that ended is lettered; the HUD says which one plays now; a
        return maps its moments to its first occurrence's (what `recall` brings back)."""
        s = self.sections
        ended = s.feed(block, t_end)
        self.board.recall.heard(feats)
        self.board.recall.returning(s.recalled)
        if ended:
            self.board.report.sections.append((t_end, ended))
            del self.board.report.sections[:-100]
        if s.form or s.letter:
            now = f"{s.letter} again" if s.returning else "new"
            self.board.state.section = f"{now} · form {' '.join(s.form[-12:])}" if s.form else now

    def _judge_drop(self, said: str, t_end: float, feats: Features) -> None:
        """A build's drop: prepared for its predicted downbeat; there, judged from the audio heard since
        it (a jump over the same stretch a beat before) as soon as any of it is heard."""
        a = self.board.anticipation
        if said == "prepared":
            a.prepare_drop(self.drops.predicted, bar_seconds(feats.grid))
            return
        d = a.drop
        if d is None or d.state != "pending":
            return
        if said == "discarded" or t_end >= d.at + JUDGE_S:
            a.judge_drop(False, t_end)
            return
        after_s = t_end - d.at
        if after_s < 0.0005:
            return
        beat = feats.grid.period if feats.grid.anchor is not None else 0.5
        window = self.source.ring.latest(min(9.0, after_s + beat))
        sr = window.sample_rate
        n = min(len(window.samples), int(round(after_s * sr)))
        start = len(window.samples) - int(round((after_s + beat) * sr))
        before = window.samples[max(0, start) : max(0, start) + n]
        if drop_came(window.samples[len(window.samples) - n :], before):
            a.judge_drop(True, t_end)

    def _notice_nonfinite(self, count: int) -> None:
        """NaN/Inf audio was replaced by silence at the ring: say so, once per burst."""
        if count > self._nonfinite_seen and time.monotonic() - self._nonfinite_told > NONFINITE_NOTICE_S:
            self._nonfinite_told = time.monotonic()
            log.warning("%d NaN/Inf audio samples replaced by silence", count - self._nonfinite_seen)
            self.board.state.set_error(f"NaN/Inf in the audio input: {count} samples replaced by silence so far")
        self._nonfinite_seen = count
