"""`export --workers N` on a local Ray instance (2 CPU slots): the same bytes as one process, with
the procedural and the tiny SDXL renderers, even when a worker is killed mid-run."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from engine.errors import BeatcanvasError
from live.export.run import ExportSettings, export_stages, frame_path
from live.export.recipe import Recipe, build
from live.presets.schema import Preset
from live.session.show import ShowOptions, resolve

import machine
from live.export.cluster import ChunkWorker, _inputs, run_cluster

on_ray = pytest.mark.usefixtures("local_ray")  # every test but the no-Ray one


@pytest.fixture(scope="module")
def local_ray():
    ray = machine.dev_extra("ray")  # a dev dependency: missing is a failure with the install hint
    # Workers import this checkout (not another install of beatcanvas) and run on one thread each.
    root = str(Path(__file__).resolve().parents[1])
    env = {"PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1",
           "SDL_VIDEODRIVER": "dummy"}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    yield
    ray.shutdown()


@pytest.fixture
def track(clicks_wav) -> Path:
    return clicks_wav


def recipe(track: Path, out: Path, renderer: str = "procedural", size=(48, 32), fps: float = 10, **kw) -> Recipe:
    preset = Preset(name="cluster")
    opts = ShowOptions(renderer=renderer, profile="tiny", size=size, live=False, allow_cpu_diffusion=True, device="cpu")
    spec = resolve(preset, opts)
    s = ExportSettings(track=track, out_dir=out, fps=fps, width=size[0], height=size[1], seed=spec.render.seed,
                       preset_name=spec.name, preset_hash=spec.preset_hash, profile=spec.profile,
                       reactivity=spec.compositor.reactivity, crossfade_ms=spec.compositor.crossfade_ms, chunk_s=1.0, **kw)
    return Recipe(s, spec)


def one_process(r: Recipe):
    built = build(r)
    return export_stages(dataclasses.replace(r.settings, renderer=built.renderer, model_ids=built.model_ids),
                         built.stages)


def files(out: Path) -> dict[str, bytes]:
    found = {p.name: p.read_bytes() for p in sorted(out.glob("frame_*.png"))}
    return found | {"frames.jsonl": (out / "frames.jsonl").read_bytes()}


@on_ray
def test_two_workers_write_the_bytes_one_process_writes(track, tmp_path):
    one_process(recipe(track, tmp_path / "one"))
    r = run_cluster(recipe(track, tmp_path / "two"), workers=2)
    assert r.written == 60 and files(tmp_path / "two") == files(tmp_path / "one")


@on_ray
def test_two_workers_with_tiny_sdxl_write_the_bytes_one_process_writes(track, tmp_path):
    kw = {"renderer": "sdxl", "size": (64, 64), "fps": 4, "end": 3.0}
    one_process(recipe(track, tmp_path / "one", **kw))
    r = run_cluster(recipe(track, tmp_path / "two", **kw), workers=2)
    assert r.written == 12 and files(tmp_path / "two") == files(tmp_path / "one")


@on_ray
def test_without_shared_storage_the_inputs_and_frames_travel_through_ray(track, tmp_path):
    one_process(recipe(track, tmp_path / "one"))
    r = run_cluster(recipe(track, tmp_path / "two"), workers=2, shared_storage=False)
    assert r.written == 60 and files(tmp_path / "two") == files(tmp_path / "one")


@on_ray
def test_a_worker_without_shared_storage_touches_none_of_the_drivers_paths(track, tmp_path):
    """The worker renders from its own copy of the track and hands the PNGs back; the driver's
    track may be gone and its output folder may not exist on the worker's machine."""
    from engine.audio.beatnet.choice import analyze_track_beats
    from live.export.run import plan_export
    from live.export.chunks import plan_chunks

    copy = tmp_path / "set.wav"
    copy.write_bytes(track.read_bytes())
    r = recipe(copy, tmp_path / "nowhere")
    files_, plan = _inputs(r), plan_export(r.settings)  # what the driver sends
    copy.unlink()  # only the bytes remain
    worker = ChunkWorker(r)
    beats, _ = analyze_track_beats(track, r.settings.beats)  # the beats the driver's export uses
    chunk = plan_chunks(plan.n_frames, plan.start, r.settings.fps, r.settings.chunk_s, beats)[1]
    rendered = worker.render(plan, beats, chunk, frozenset(range(chunk.first, chunk.stop)), files_)
    worker.close()
    assert not (tmp_path / "nowhere").exists() and worker._dir is None
    one_process(recipe(track, tmp_path / "one"))
    expected = files(tmp_path / "one")
    assert [i for i, _, _ in rendered] == list(range(chunk.first, chunk.stop))
    assert all(data == expected[frame_path(Path(), i).name] for i, _, data in rendered)


def _chunk_workers() -> list[int]:
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"ray::ChunkWorker" in cmdline:
            pids.append(int(pid))
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker processes in /proc")
@on_ray
def test_a_worker_killed_mid_run_is_replaced_and_the_output_is_the_same(track, tmp_path):
    one_process(recipe(track, tmp_path / "one"))
    out = tmp_path / "two"
    result: list = []
    runner = threading.Thread(target=lambda: result.append(run_cluster(recipe(track, out), workers=2)))
    runner.start()
    deadline, killed = time.monotonic() + 60, None
    while killed is None and runner.is_alive() and time.monotonic() < deadline:
        if any(out.glob("frame_*.png")) and _chunk_workers():
            killed = _chunk_workers()[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.01)
    runner.join(120)
    assert killed is not None, "no worker was caught mid-run"
    assert result and result[0].complete and files(out) == files(tmp_path / "one")


def test_workers_need_ray_or_say_what_to_install(track, tmp_path, monkeypatch, capsys):
    from live.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    code = main(["export", str(track), "--out", str(tmp_path / "o"), "--renderer", "procedural", "--workers", "2"])
    err = capsys.readouterr().err
    assert code == 1 and "pip install -e '.[cluster]'" in err and "Traceback" not in err
    with pytest.raises(BeatcanvasError, match="--workers must be 1 or more"):
        run_cluster(recipe(track, tmp_path / "o"), workers=0)
