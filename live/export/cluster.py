"""`export --workers N`: an export's chunks rendered by Ray workers, byte-identical to one process.

    driver (this process)                        workers (Ray actors, one per GPU or CPU slot)
    ExportRun: checks, manifest, frames.jsonl    ChunkWorker: builds the stages once from the Recipe,
    chunks ──── one task per chunk ───────────▶  render_chunk → PNGs into the shared --out folder
    records ◀── (frame, log record) per frame ── (atomic writes: a killed worker leaves no half file)

The driver owns the manifest and the per-frame log and writes the log in frame order as chunks
finish, so a resume (with any number of workers) finds a whole prefix. A worker that dies is
restarted by Ray and its chunk retried; a chunk's frames depend only on the settings, so the retry
writes the same bytes. The MP4 is muxed once, by the driver, after the last chunk.

By default the output folder must be one filesystem that every worker sees (the same machine, or
NFS / a mounted bucket on a cluster): workers write the PNGs there themselves. With
`shared_storage=False` (`--no-shared-storage`) nothing is assumed of the workers' disks: the driver
sends them the track (and schedule and lyrics) through Ray's object store, and they send each chunk's
PNGs back for the driver to write (docs/cluster.md).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.audio.beatmap import BeatMap
from engine.audio.stems import StemTrack, analyze_stems
from engine.errors import BeatcanvasError
from live.export.run import ExportResult, ExportRun, Progress
from live.export.chunks import Chunk
from live.export.files import frame_path, png_of, write_png
from live.export.frames import render_chunk
from live.export.plan import ExportPlan
from live.export.recipe import Built, Recipe, build

RAY_HINT = "--workers above 1 needs Ray: pip install -e '.[cluster]' (or export with --workers 1)"


# A chunk's frames as a worker returns them: (frame, log record, PNG bytes when the driver writes them).
Rendered = list[tuple[int, dict[str, Any], bytes | None]]
# Without shared storage, what a worker needs of the driver's files, by role: (file name, bytes) ...
Inputs = dict[str, tuple[str, bytes]]
# ... handed to the worker's calls as [ObjectRef] (a list, so Ray passes the reference and the worker
# fetches the bytes once), or as the dict itself outside Ray.
Shipped = list[Any] | Inputs | None


class ChunkWorker:
    """A Ray actor: the stages built on the first call, then one chunk per call, its PNGs written in
    place, or returned when the worker shares no disk with the driver (`shipped`: the inputs arrive
    as bytes). Ray restarts a dead actor with the same constructor arguments, so they stay small."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.ship = False
        self._built: Built | None = None
        self._dir: str | None = None
        self._stems: StemTrack | None = None

    def _stages(self, shipped: Shipped) -> Built:
        if self._built is None:
            if shipped is not None:
                self.recipe, self.ship = self._unpack(self.recipe, _fetch(shipped)), True
            self._built = build(self.recipe)
        return self._built

    def _unpack(self, recipe: Recipe, files: Inputs) -> Recipe:
        """`recipe` with its track, schedule and lyrics written to a folder of this worker's own."""
        self._dir = tempfile.mkdtemp(prefix="beatcanvas-worker-")
        local: dict[str, Path] = {}
        for role, (name, data) in files.items():
            path = Path(self._dir) / role / name  # a folder per role: two inputs may share a name
            path.parent.mkdir()
            path.write_bytes(data)
            local[role] = path
        settings = dataclasses.replace(recipe.settings, track=local["track"])
        return dataclasses.replace(recipe, settings=settings, schedule=local.get("schedule"), lyrics=local.get("lyrics"))

    def close(self) -> None:
        """Remove this worker's copy of the inputs."""
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def describe(self, shipped: Shipped = None) -> tuple[str, dict[str, str]]:
        """The renderer's name and model ids, for the export's fingerprint (the models load here)."""
        built = self._stages(shipped)
        return built.renderer, built.model_ids

    def render(self, plan: ExportPlan, beats: BeatMap, chunk: Chunk, wanted: frozenset[int],
               shipped: Shipped = None, stems: StemTrack | None = None) -> Rendered:
        stages = self._stages(shipped).stages
        s = self.recipe.settings
        if stems is None:  # a caller that did not send the track's stems: separate this worker's copy once
            if self._stems is None:
                self._stems = analyze_stems(s.track)
            stems = self._stems
        out: Rendered = []

        def emit(i: int, picture: Any, rec: dict[str, Any]) -> None:
            data = png_of(picture)
            if not self.ship:
                write_png(data, frame_path(s.out_dir, i))
            out.append((i, {**rec, "bytes": len(data), "crc": zlib.crc32(data)}, data if self.ship else None))

        render_chunk(s, plan, beats, chunk, stages, emit, wanted=wanted.__contains__, stems=stems)
        return out


def run_cluster(recipe: Recipe, workers: int, address: str | None = None, *, force: bool = False,
                plan: ExportPlan | None = None, on_progress: Callable[[Progress], None] | None = None,
                shared_storage: bool = True) -> ExportResult:
    """The export of `recipe` on `workers` Ray actors: a local Ray instance (no `address`) or the
    cluster at `address` ("auto" or HOST:PORT). Resumes like `run_export`; the settings' renderer
    name and model ids come from the first worker (the driver loads no model). `shared_storage=False`:
    the inputs travel to the workers and the PNGs back, through Ray (see the module docstring)."""
    if workers < 1:
        raise BeatcanvasError(f"--workers must be 1 or more, not {workers}")
    ray = _ray()
    started = _connect(ray, workers, address)
    pool: list[Any] = []
    try:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        actor = ray.remote(num_gpus=gpus, num_cpus=0 if gpus else 1, max_restarts=3, max_task_retries=3)(ChunkWorker)
        shipped = None if shared_storage else [ray.put(_inputs(recipe))]
        pool += [actor.remote(recipe) for _ in range(workers)]
        name, ids = ray.get(pool[0].describe.remote(shipped))
        settings = dataclasses.replace(recipe.settings, renderer=name, model_ids=ids)
        run = ExportRun(settings, plan, force, on_progress=on_progress)
        if not run.finished:
            with run:
                _drive(ray, run, pool, shipped)
        return run.finish()
    finally:
        _close(ray, pool)
        for a in pool:
            ray.kill(a)
        if started:
            ray.shutdown()


def _drive(ray: Any, run: ExportRun, pool: list[Any], shipped: Shipped) -> None:
    todo = run.todo()
    beats, stems = ray.put(run.track_beats), ray.put(run.track_stems)
    pending = {}
    queue = list(todo)
    for a in pool[: len(queue)]:  # one chunk in flight per worker; the next to whichever finishes first
        c = queue.pop(0)
        pending[a.render.remote(run.plan, beats, c, _wanted(run, c), shipped, stems)] = (a, c)
    done: dict[int, list[tuple[int, dict[str, Any]]]] = {}  # finished chunks' log records, until their turn
    logged = 0  # chunks logged, in order
    finished = run.disk.done
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        a, c = pending.pop(ready[0])
        try:
            rendered = ray.get(ready[0])
        except Exception as e:  # noqa: BLE001 - Ray's own error types; retries are spent
            raise BeatcanvasError(f"chunk {c.index + 1} (frames {c.first + 1}-{c.stop}) failed on a worker: "
                                  f"{str(e).splitlines()[0]}; rerun the same command to resume") from None
        for i, _rec, data in rendered:
            if data is not None:  # no shared storage: this process writes the PNGs, as they arrive
                write_png(data, frame_path(run.out, i))
        done[c.index] = [(i, rec) for i, rec, _data in rendered]
        if queue:
            nxt = queue.pop(0)
            pending[a.render.remote(run.plan, beats, nxt, _wanted(run, nxt), shipped, stems)] = (a, nxt)
        while logged < len(todo) and todo[logged].index in done:  # the log, in frame order
            for i, rec in done.pop(todo[logged].index):
                run.record(i, rec)
            logged += 1
        finished += len(c)
        if run.on_progress is not None:
            run.on_progress(Progress(min(finished, run.plan.n_frames), run.plan.n_frames, False, run.disk.done))


def _inputs(recipe: Recipe) -> Inputs:
    """The files a worker without the driver's disk needs, by role: (file name, bytes)."""
    paths = {"track": recipe.settings.track, "schedule": recipe.schedule, "lyrics": recipe.lyrics}
    out = {}
    for role, path in paths.items():
        if path is None:
            continue
        try:
            out[role] = (Path(path).name, Path(path).read_bytes())
        except OSError as e:
            raise BeatcanvasError(f"cannot read the {role} {path} to send it to the workers: {e.strerror or e}") from None
    return out


def _fetch(shipped: list[Any] | Inputs) -> Inputs:
    """The inputs themselves: fetched once from Ray's object store, or given as they are."""
    if isinstance(shipped, dict):
        return shipped
    import ray  # we are in a Ray worker

    inputs: Inputs = ray.get(shipped[0])
    return inputs


def _close(ray: Any, pool: list[Any]) -> None:
    """Ask the workers to remove their copies of the inputs (best effort: a dead worker has none to keep)."""
    try:
        ray.get([a.close.remote() for a in pool], timeout=10)
    except Exception:  # noqa: BLE001 - a worker already gone, or Ray shutting down
        pass


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
