"""`export --workers N`: an export's chunks rendered by Ray workers, byte-identical to one process.

    driver (this process)                        workers (Ray actors, one per GPU or CPU slot)
    ExportRun: checks, manifest, frames.jsonl    ChunkWorker: builds the stages once from the Recipe,
    chunks ──── one task per chunk ───────────▶  render_chunk → PNGs into the shared --out folder
    records ◀── (frame, log record) per frame ── (atomic writes: a killed worker leaves no half file)

The driver owns the manifest and the per-frame log and writes the log in frame order as chunks
finish, so a resume (with any number of workers) finds a whole prefix. A worker that dies is
restarted by Ray and its chunk retried; a chunk's frames depend only on the settings, so the retry
writes the same bytes. The MP4 is muxed once, by the driver, after the last chunk.

The output folder must be one filesystem that every worker sees (the same machine, or NFS / a
mounted bucket on a cluster): workers write the PNGs there themselves (docs/cluster.md).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from typing import Any

from engine.audio.beatmap import BeatMap
from engine.errors import BeatcanvasError
from live.export import ExportResult, ExportRun, Progress
from live.export_chunks import Chunk
from live.export_files import frame_path, write_png
from live.export_frames import render_chunk
from live.export_plan import ExportPlan
from live.export_recipe import Recipe, build

RAY_HINT = "--workers above 1 needs Ray: pip install -e '.[cluster]' (or export with --workers 1)"


class ChunkWorker:
    """A Ray actor: the stages built once, then one chunk per call, its PNGs written in place."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.built = build(recipe)
        self.stages = self.built.stages

    def describe(self) -> tuple[str, dict[str, str]]:
        """The renderer's name and model ids, for the export's fingerprint."""
        return self.built.renderer, self.built.model_ids

    def render(self, plan: ExportPlan, beats: BeatMap, chunk: Chunk, wanted: frozenset[int]) -> list[tuple[int, dict[str, Any]]]:
        s = self.recipe.settings
        out: list[tuple[int, dict[str, Any]]] = []

        def emit(i: int, picture: Any, rec: dict[str, Any]) -> None:
            written = write_png(picture, frame_path(s.out_dir, i))
            out.append((i, {**rec, "bytes": written.bytes, "crc": written.crc}))

        render_chunk(s, plan, beats, chunk, self.stages, emit, wanted=wanted.__contains__)
        return out

    def pid(self) -> int:
        return os.getpid()


def run_cluster(recipe: Recipe, workers: int, address: str | None = None, *, force: bool = False,
                plan: ExportPlan | None = None, on_progress: Callable[[Progress], None] | None = None) -> ExportResult:
    """The export of `recipe` on `workers` Ray actors: a local Ray instance (no `address`) or the
    cluster at `address` ("auto" or HOST:PORT). Resumes like `run_export`; the settings' renderer
    name and model ids come from the first worker (the driver loads no model)."""
    if workers < 1:
        raise BeatcanvasError(f"--workers must be 1 or more, not {workers}")
    ray = _ray()
    started = _connect(ray, workers, address)
    pool: list[Any] = []
    try:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        actor = ray.remote(num_gpus=gpus, num_cpus=0 if gpus else 1, max_restarts=3, max_task_retries=3)(ChunkWorker)
        pool += [actor.remote(recipe) for _ in range(workers)]
        name, ids = ray.get(pool[0].describe.remote())
        settings = dataclasses.replace(recipe.settings, renderer=name, model_ids=ids)
        run = ExportRun(settings, plan, force, on_progress=on_progress)
        if not run.finished:
            with run:
                _drive(ray, run, pool)
        return run.finish()
    finally:
        for a in pool:
            ray.kill(a)
        if started:
            ray.shutdown()


def _drive(ray: Any, run: ExportRun, pool: list[Any]) -> None:
    todo = run.todo()
    beats = ray.put(run.track_beats)
    pending = {}
    queue = list(todo)
    for a in pool[: len(queue)]:  # one chunk in flight per worker; the next to whichever finishes first
        c = queue.pop(0)
        pending[a.render.remote(run.plan, beats, c, _wanted(run, c))] = (a, c)
    done: dict[int, list[tuple[int, dict[str, Any]]]] = {}
    logged = 0  # chunks logged, in order
    finished = run.disk.done
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        a, c = pending.pop(ready[0])
        try:
            done[c.index] = ray.get(ready[0])
        except Exception as e:  # noqa: BLE001 - Ray's own error types; retries are spent
            raise BeatcanvasError(f"chunk {c.index + 1} (frames {c.first + 1}-{c.stop}) failed on a worker: "
                                  f"{str(e).splitlines()[0]}; rerun the same command to resume") from None
        if queue:
            nxt = queue.pop(0)
            pending[a.render.remote(run.plan, beats, nxt, _wanted(run, nxt))] = (a, nxt)
        while logged < len(todo) and todo[logged].index in done:  # the log, in frame order
            for i, rec in done.pop(todo[logged].index):
                run.record(i, rec)
            logged += 1
        finished += len(c)
        if run.on_progress is not None:
            run.on_progress(Progress(min(finished, run.plan.n_frames), run.plan.n_frames, False, run.disk.done))


def _wanted(run: ExportRun, chunk: Chunk) -> frozenset[int]:
    return frozenset(i for i in range(chunk.first, chunk.stop) if run.wanted(i))


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BeatcanvasError(RAY_HINT) from None
    return ray


def _connect(ray: Any, workers: int, address: str | None) -> bool:
    """Join the cluster at `address`, or start a local one with `workers` CPU slots; True when this
    call started Ray (and should stop it)."""
    if ray.is_initialized():
        return False
    try:
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise BeatcanvasError(f"cannot start {where}: {str(e).splitlines()[0]} — check the address "
                              "(`ray status` on the head node), or leave --ray-address out for this machine") from None
    return True
