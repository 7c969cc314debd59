"""Conditioning: the ring buffer and the newest features in, the `conditioning` slot out.

It follows the hop clock (live/audio/hopclock.py) on the audio clock: at each hop it encodes the newest 10 s
with the measured tempo, and when the encoder is slower than the hop it runs only the newest due hop.
It owns the understanding: a new preset's `[conditioning]` part is applied here between hops (in
place when it can, else rebuilt in the background while the old one keeps going), and the negative
prompt's conditioning goes to the render loop when guidance uses it. A procedural preset needs no
conditioning: the loop idles (keeping the understanding for a switch back).
"""

from __future__ import annotations

import logging

from engine.streams import BackgroundStream
from engine.types import WINDOW_SECONDS
from live.audio.hopclock import HopClock
from live.session.faults import Backoff
from live.session.rebuilder import Rebuilder
from live.session.state import Board, SessionConfig
from live.session.show import ShowSpec
from live.session.stages import Source, UnderstandingStage

log = logging.getLogger(__name__)

IDLE_S = 0.1


class ConditioningLoop:
    def __init__(self, source: Source, understanding: UnderstandingStage | None, spec: ShowSpec, board: Board,
                 config: SessionConfig, rebuilder: Rebuilder) -> None:
        self.source, self.understanding, self.spec = source, understanding, spec
        self.board, self.config, self.rebuilder = board, config, rebuilder
        self.hops = HopClock(config.hop_s)
        self.backoff = Backoff(config.backoff_s, config.backoff_max_s)
        self._seen_spec = board.specs.version
        self._seen_built = rebuilder.understandings.version
        self._building = False
        self.background = BackgroundStream(spec.device)  # a low-priority CUDA stream: frames go first

    @property
    def active(self) -> bool:
        return self.spec.render.kind == "sdxl" and self.understanding is not None

    def run(self) -> None:
        b = self.board
        while not b.stop.is_set():
            with b.faults.guard("conditioning setup"):
                self._take_updates()
            if not self.active:
                b.stop.wait(IDLE_S)
                continue
            t = float(self.source.clock())
            if t < self.hops.next_time - 2 * self.hops.hop_s:  # the clock went back (a new input)
                self.hops = HopClock.starting_at(t, self.hops.hop_s)
            if self.hops.newest_due(t) is None:
                b.stop.wait(min(self.hops.hop_s, max(0.005, self.hops.next_time - t)))
                continue
            self._step()

    def _step(self) -> None:
        b, und = self.board, self.understanding
        assert und is not None
        try:
            window = self.source.ring.latest(WINDOW_SECONDS)
            with self.background():
                cond = und.step(window, b.features.get()[1])
        except Exception as e:  # noqa: BLE001 - the last good conditioning stays
            b.report.conditioning_errors += 1
            b.faults.report("conditioning", e)
            b.stop.wait(self.backoff.failed())
            return
        self.backoff.succeeded()
        b.conditioning.put(cond)
        b.report.conditioning_steps += 1
        b.state.labels = sorted(cond.labels.items(), key=lambda kv: -kv[1])[:3]
        if b.rig is not None:  # the labels and the prompt for OSC out
            with b.faults.guard("OSC out"):
                b.rig.hop(cond)

    def _take_updates(self) -> None:
        b = self.board
        built = self.rebuilder.understandings.get_newer(self._seen_built)
        if built is not None:
            self._seen_built = built[0]
            self._building = False
            if isinstance(built[1], str):
                b.state.set_error(f"could not load the understanding: {built[1]}")
            else:
                self.understanding = built[1]
                if b.direction is not None:  # the schedule encodes with the new text encoders
                    b.direction.attach(self.understanding)
                self._apply(self.spec, fresh=True)
        got = b.specs.get_newer(self._seen_spec)
        if got is not None:
            self._seen_spec, spec = got
            old, self.spec = self.spec, spec
            self._apply(spec, fresh=False, old=old)

    def _apply(self, spec: ShowSpec, fresh: bool, old: ShowSpec | None = None) -> None:
        if spec.render.kind != "sdxl":
            return
        und = self.understanding
        if und is None:
            if not self._building:
                self._building = True
                self.rebuilder.request_understanding(spec)
            return
        result = und.configure(spec.understanding)
        if result.rebuild and not self._building:
            log.info("preset %s: %s changed; loading a new understanding", spec.name, ", ".join(result.rebuild))
            self._building = True
            self.rebuilder.request_understanding(spec)
        elif result.applied:
            log.info("understanding applied %s", ", ".join(result.applied))
        guidance_changed = old is not None and old.render.uses_negative != spec.render.uses_negative
        if fresh or guidance_changed or "negative" in result.applied:
            self.board.negatives.put(und.negative_conditioning() if spec.render.uses_negative else None)
