"""Building stages in the background, so the show goes on while models load.

The render and conditioning loops ask for a stage (`request_render`, `request_understanding`) and go
on with the one they have; a worker thread builds it with the `Builder` (the only thread that uses
it) and hands it over through a slot. Newer requests replace older ones that have not started.

A `trial` build also renders one frame with it before handing it over, on a thread of its own with a
deadline: that is how a show that fell back to the procedural renderer finds out the configured one
works again (a GPU that came back, an out-of-memory spell that passed) without risking the show.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from engine.render.stage import Negative, RenderStage
from engine.types import Features
from live.session.factory import Builder
from engine.errors import one_line
from live.session.show import ShowSpec
from live.session.slots import LatestSlot
from live.session.stages import UnderstandingStage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderJob:
    spec: ShowSpec
    why: str  # "rebuild" | "step_down" | "retry"
    size: tuple[int, int] | None = None  # None: the spec's
    negative: Negative | None = None
    trial_s: float | None = None  # render one frame within this many seconds before handing over


@dataclass(frozen=True)
class Built:
    """A finished job: the stage, or the one-line reason it could not be built."""

    job: RenderJob
    stage: RenderStage | None
    error: str = ""


class Rebuilder:
    def __init__(self, builder: Builder, stop: threading.Event) -> None:
        self.builder = builder
        self.renders: LatestSlot[Built] = LatestSlot()
        self.understandings: LatestSlot[UnderstandingStage | str] = LatestSlot()  # a stage, or why not
        self._stop = stop
        self._cond = threading.Condition()
        self._render_job: RenderJob | None = None
        self._understanding_job: ShowSpec | None = None
        self._thread: threading.Thread | None = None
        self.busy = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="beatcanvas-rebuild", daemon=True)
        self._thread.start()

    def request_render(self, job: RenderJob) -> None:
        with self._cond:
            self._render_job = job
            self._cond.notify()

    def request_understanding(self, spec: ShowSpec) -> None:
        with self._cond:
            self._understanding_job = spec
            self._cond.notify()

    def pending(self) -> bool:
        return self.busy or self._render_job is not None or self._understanding_job is not None

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                self._cond.wait_for(lambda: self._stop.is_set() or self._render_job is not None
                                    or self._understanding_job is not None, timeout=0.5)
                render, self._render_job = self._render_job, None
                understanding, self._understanding_job = self._understanding_job, None
                self.busy = render is not None or understanding is not None
            try:
                if understanding is not None:
                    self._build_understanding(understanding)
                if render is not None:
                    self.renders.put(self._build_render(render))
            finally:
                self.busy = False

    def _build_understanding(self, spec: ShowSpec) -> None:
        try:
            self.understandings.put(self.builder.understanding(spec))
            log.info("understanding for preset %s is ready", spec.name)
        except Exception as e:  # noqa: BLE001 - a model that will not load must not end the show
            self.understandings.put(one_line(e))

    def _build_render(self, job: RenderJob) -> Built:
        try:
            stage = self.builder.render_stage(job.spec, job.size, job.negative)
        except Exception as e:  # noqa: BLE001
            return Built(job, None, one_line(e))
        if job.trial_s is not None:
            error = _trial(stage, job.trial_s)
            if error:
                return Built(job, None, error)
        log.info("%s renderer ready (%s, %dx%d)", job.why, stage.name, stage.width, stage.height)
        return Built(job, stage)


def _trial(stage: RenderStage, seconds: float) -> str:
    """Render one frame on a thread of its own; '' when it worked within `seconds`, else why not."""
    outcome: list[str] = []

    def attempt() -> None:
        try:
            stage.render(None, Features(), 0.0)
            outcome.append("")
        except Exception as e:  # noqa: BLE001
            outcome.append(one_line(e))

    t = threading.Thread(target=attempt, name="beatcanvas-trial-render", daemon=True)
    t.start()
    t.join(seconds)
    if not outcome:
        return f"a trial render took more than {seconds:g} s"
    if not outcome[0]:
        stage.reset(stage.spec.seed)
    return outcome[0]
