"""Offline export: deterministic frames, exact resume after a kill, the MP4, argument errors.

Tiny sizes (64x48), a few seconds of synthesized audio and the procedural renderer (weights-free)
keep each test well under a few seconds. A small stateful fake stands in for the understanding so
the conditioning path (every hop, replayed on resume) is exercised without CLAP.
"""

from __future__ import annotations

import errno
import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from engine.errors import BeatcanvasError
from engine.render.procedural import ProceduralRenderer
from engine.types import Conditioning, Window
from live.export.run import ExportSettings, frame_path, plan_export, run_export
from audio_synth import click_track, progression

W, H = 64, 48


class FakeUnderstanding:
    """Stateful like the real one (an EMA over windows); labels depend on the window's loudness and
    on the history, so a resume that skipped or repeated a hop would show in the frames."""

    def __init__(self) -> None:
        self.ema = 0.0
        self.steps = 0

    def reset(self) -> None:  # each chunk of an export starts its stages fresh
        self.ema = 0.0

    def step(self, window: Window, features=None) -> Conditioning:
        assert len(window.samples) == 480_000  # always the full 10 s, zero-padded at the start
        level = float(np.sqrt(np.mean(window.samples[-24_000:] ** 2)))
        self.ema = 0.7 * self.ema + 0.3 * level
        self.steps += 1
        labels = {"techno": min(1.0, 20 * self.ema), "ambient": 1.0 - min(1.0, 20 * self.ema)}
        return Conditioning(torch.zeros(1, 77, 2048), torch.zeros(1, 1280), t=window.t_end, labels=labels)


@pytest.fixture(scope="module")
def track(tmp_path_factory) -> Path:
    """4 s: a quiet chord pad, then clicks on the beat (the labels change as the music does)."""
    pad = progression(minor=False, bars=1, chord_s=0.5)[: 2 * 48_000] * 0.3
    clicks, _ = click_track(128.0, 2.0)
    x = np.concatenate([pad, pad[: 2 * 48_000] * 0.2 + clicks])
    p = tmp_path_factory.mktemp("audio") / "track.wav"
    sf.write(p, np.stack([x, 0.5 * x], 1), 48_000)
    return p


def settings(track: Path, out: Path, **kw) -> ExportSettings:
    base = dict(track=track, out_dir=out, fps=30.0, width=W, height=H, seed=7, render_every=2)
    base.update(kw)
    return ExportSettings(**base)


def export(s: ExportSettings, **kw):
    return run_export(s, ProceduralRenderer(s.width, s.height, s.seed), FakeUnderstanding(), **kw)


def frames_bytes(out: Path) -> list[bytes]:
    names = sorted(p.name for p in out.glob("frame_*.png"))
    return [(out / n).read_bytes() for n in names]


def log_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]


def test_same_command_twice_gives_byte_identical_frames(track, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    ra = export(settings(track, a))
    rb = export(settings(track, b))
    assert ra.n_frames == rb.n_frames == 120
    fa, fb = frames_bytes(a), frames_bytes(b)
    assert len(fa) == 120 and fa == fb
    assert log_lines(a) == log_lines(b)
    # and the picture actually moves (not 120 copies of one frame)
    assert len(set(fa)) > 100


def test_manifest_and_log_record_settings_and_every_frame(track, tmp_path):
    out = tmp_path / "o"
    export(settings(track, out, preset_hash="abc123", model_ids={"clap": "laion/x"}))
    m = json.loads((out / "manifest.json").read_text())
    assert m["status"] == "complete" and m["n_frames"] == 120 and m["frames_done"] == 120
    assert m["preset_hash"] == "abc123" and m["model_ids"] == {"clap": "laion/x"}
    assert m["settings"]["fps"] == 30.0 and m["settings"]["render_every"] == 2
    lines = log_lines(out)
    assert [r["i"] for r in lines] == list(range(120))
    assert lines[45]["t"] == pytest.approx(1.5)
    assert lines[45]["file"] == "frame_000046.png" and (out / "frame_000046.png").exists()
    assert [r["rendered"] for r in lines[:4]] == [True, False, True, False]
    assert lines[-1]["labels"]["techno"] > lines[30]["labels"]["techno"]  # the clicks were heard
    assert {"rms", "onset", "low", "beat", "beat_phase", "valence"} <= set(lines[60]["features"])
    assert all(r["seed"] == 7 for r in lines)


class Killed(Exception):
    pass


def export_killed_at(s: ExportSettings, index: int, exc: type[BaseException] = Killed) -> None:
    """Export until `index` frames are done, then die with `exc` (a crash, or Ctrl-C)."""

    def die(p):
        if p.index == index:
            raise exc

    with pytest.raises(exc):
        export(s, on_progress=die)


@pytest.mark.parametrize("kill", ["exception", "keyboard"])
def test_killed_and_resumed_equals_uninterrupted(track, tmp_path, kill):
    ref = tmp_path / "ref"
    export(settings(track, ref))
    out = tmp_path / "out"
    stop_at = random.Random(kill).randrange(5, 110)

    export_killed_at(settings(track, out), stop_at, KeyboardInterrupt if kill == "keyboard" else Killed)
    assert len(list(out.glob("frame_*.png"))) == stop_at  # every finished frame kept
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"

    seen = []
    r = export(settings(track, out), on_progress=seen.append)
    assert r.resumed_from == stop_at and r.written == 120 - stop_at
    assert sum(p.replaying for p in seen) == stop_at  # fast-forwarded, not rewritten
    assert frames_bytes(out) == frames_bytes(ref)
    assert [rec["i"] for rec in log_lines(out)] == list(range(120))  # none missing, none twice
    assert log_lines(out) == log_lines(ref)


def test_truncated_last_frame_and_torn_log_line_are_redone(track, tmp_path):
    ref = tmp_path / "ref"
    export(settings(track, ref))
    out = tmp_path / "out"

    export_killed_at(settings(track, out), 40)
    # A disk that lost the tail: the newest PNG is cut short, and a half line follows the log.
    last = frame_path(out, 39)
    last.write_bytes(last.read_bytes()[:50])
    with open(out / "frames.jsonl", "a") as f:
        f.write('{"i": 40, "t": 1.3')
    r = export(settings(track, out))
    assert r.resumed_from == 39
    assert frames_bytes(out) == frames_bytes(ref)
    assert log_lines(out) == log_lines(ref)


def test_rerun_of_a_finished_export_writes_nothing(track, tmp_path):
    out = tmp_path / "o"
    export(settings(track, out, end=1.0))
    mtime = frame_path(out, 0).stat().st_mtime_ns
    r = export(settings(track, out, end=1.0))
    assert r.written == 0 and r.resumed_from == 30
    assert frame_path(out, 0).stat().st_mtime_ns == mtime
    # a longer --end keeps the 30 frames and adds the rest, equal to a one-go export
    r = export(settings(track, out, end=2.0))
    assert r.resumed_from == 30 and r.written == 30
    ref = tmp_path / "ref"
    export(settings(track, ref, end=2.0))
    assert frames_bytes(out) == frames_bytes(ref)


def test_changed_setting_is_refused_and_force_starts_over(track, tmp_path):
    out = tmp_path / "o"
    export(settings(track, out, end=1.0))
    with pytest.raises(BeatcanvasError, match=r"seed 7 → 8.*--force"):
        export(settings(track, out, end=1.0, seed=8))
    with pytest.raises(BeatcanvasError, match="fps"):
        export(settings(track, out, end=1.0, fps=24.0))
    r = export(settings(track, out, end=0.5, seed=8), force=True)
    assert r.resumed_from == 0 and r.written == 15
    assert len(list(out.glob("frame_*.png"))) == 15  # the old 30 are gone
    assert all(rec["seed"] == 8 for rec in log_lines(out))


def test_start_offset_frames_are_at_the_right_times(track, tmp_path):
    out = tmp_path / "o"
    r = export(settings(track, out, start=2.5, end=3.5, fps=10.0))
    assert r.n_frames == 10
    assert [rec["t"] for rec in log_lines(out)][:3] == pytest.approx([2.5, 2.6, 2.7])


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(fps=0.0), "--fps must be a positive"),
        (dict(fps=-5.0), "--fps must be a positive"),
        (dict(start=2.0, end=1.0), "--end 1 s is not after --start 2 s"),
        (dict(end=60.0), "past the end"),
        (dict(render_every=0), "--render-every"),
        (dict(width=4), "--size"),
    ],
)
def test_bad_arguments_raise_clear_errors(track, tmp_path, kw, message):
    with pytest.raises(BeatcanvasError, match=message):
        plan_export(settings(track, tmp_path / "o", **kw))


def test_track_shorter_than_one_frame(tmp_path):
    p = tmp_path / "blip.wav"
    sf.write(p, np.zeros(800, np.float32), 48_000)  # 16.7 ms < one frame at 30 fps
    with pytest.raises(BeatcanvasError, match="shorter than one frame"):
        plan_export(settings(p, tmp_path / "o"))


def test_unwritable_out_dir(track, tmp_path, monkeypatch):
    """A read-only folder: the kernel refuses the mkdir with EACCES. Root may write anywhere (CI runs
    as root), so the refusal is also made at the OS boundary (os.mkdir) for paths inside the folder:
    the export must turn it into the one-line message, never a traceback."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    real_mkdir = os.mkdir

    def refusing_mkdir(path, *args, **kwargs):
        if Path(path).is_relative_to(locked) and Path(path) != locked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", refusing_mkdir)
    try:
        with pytest.raises(BeatcanvasError, match="cannot write to the output folder .*Permission denied.* pick another --out"):
            export(settings(track, locked / "frames"))
    finally:
        locked.chmod(0o700)
    assert not (locked / "frames").exists()


def test_out_path_that_is_a_file(track, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(BeatcanvasError, match="cannot write to the output folder|is a file"):
        export(settings(track, f))


def test_frame_writes_are_atomic_no_temp_files_left(track, tmp_path):
    out = tmp_path / "o"

    export_killed_at(settings(track, out), 10, KeyboardInterrupt)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_out_dir_under_a_file_is_unwritable(track, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(BeatcanvasError, match="cannot write to the output folder .*pick another --out"):
        export(settings(track, f / "frames"))


def test_png_encoder_is_lossless(tmp_path):
    import pygame

    from live.export.files import encode_png

    rgb = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    rgb[10:20] = 255  # wrap-around in the Up filter
    p = tmp_path / "x.png"
    p.write_bytes(encode_png(rgb))
    surf = pygame.image.load(str(p))
    back = np.frombuffer(pygame.image.tobytes(surf, "RGB"), np.uint8).reshape(37, 53, 3)
    assert np.array_equal(back, rgb)


@pytest.mark.slow
def test_memory_stays_flat_on_a_long_track(tmp_path):
    """Two more minutes of audio are 23 MB as float32; the export streams the track, so its heap grows
    by a small part of that (per-hop summaries, activations) from a 1-minute to a 3-minute track.
    The fixed part (the beat network's windows for its three tempo views) is far below the track."""
    import tracemalloc

    sr = 48_000
    chunk = (0.2 * np.sin(2 * np.pi * 110 * np.arange(60 * sr) / sr)).astype(np.float32)
    peaks = {}
    for minutes in (1, 3):
        p = tmp_path / f"long{minutes}.wav"
        with sf.SoundFile(p, "w", sr, 1, "PCM_16") as f:
            for _ in range(minutes):
                f.write(chunk)
        s = settings(p, tmp_path / f"o{minutes}", fps=1.0, width=16, height=16, render_every=1)
        tracemalloc.start()
        try:
            r = export(s)
            peaks[minutes] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert r.n_frames == 60 * minutes
    grew = (peaks[3] - peaks[1]) / 2**20
    assert grew < 4, f"peak heap grew {grew:.1f} MB from 1 to 3 minutes"
    assert peaks[3] < 24 * 2**20, f"peak heap {peaks[3] / 2**20:.1f} MB"
