"""Export in chunks (live/export/chunks.py): where the cuts fall, resuming only what is unfinished,
a changed chunk length refused, and seams no larger than the picture's own frame-to-frame change."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pygame
import pytest
import soundfile as sf

from audio_synth import SR, click_track, progression
from engine.audio.beatmap import BeatMap, analyze_beats
from engine.errors import BeatcanvasError
from engine.render.procedural import ProceduralRenderer
from live.export.run import ExportSettings, frame_path, run_export
from live.export.chunks import plan_chunks

W, H = 48, 32


def beat_map(first: float, period: float, n: int) -> BeatMap:
    beats = first + period * np.arange(n)
    return BeatMap(beats, np.ones(n), np.arange(n) % 4, 60.0 / period)


def test_cuts_fall_half_a_beat_before_the_nearest_downbeat():
    # 30 s at 10 fps, 10 s chunks; beats every 0.5 s from 0.4 s, a downbeat every 2 s (0.4, 2.4, ... 10.4)
    chunks = plan_chunks(300, 0.0, 10.0, 10.0, beat_map(0.4, 0.5, 60))
    assert [(c.first, c.stop) for c in chunks] == [(0, 102), (102, 202), (202, 300)]  # cuts at 10.15 s, 20.15 s
    assert [(c.first, c.stop) for c in plan_chunks(300, 0.0, 10.0, 10.0, None)] == [(0, 100), (100, 200), (200, 300)]
    assert [(c.first, c.stop) for c in plan_chunks(300, 0.0, 10.0, 0.0, None)] == [(0, 300)]  # 0: one chunk


@pytest.fixture
def clicks(clicks_wav) -> Path:
    return clicks_wav


def settings(track: Path, out: Path, **kw) -> ExportSettings:
    return ExportSettings(track=track, out_dir=out, fps=10, width=W, height=H, chunk_s=kw.pop("chunk_s", 2.0), **kw)


def export(s: ExportSettings, **kw):
    return run_export(s, ProceduralRenderer(W, H, s.seed), **kw)


def files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("frame_*.png"))} | {"log": (out / "frames.jsonl").read_bytes()}


def test_a_resume_restarts_only_the_unfinished_chunk(clicks, tmp_path):
    export(settings(clicks, tmp_path / "ref"))
    out = tmp_path / "out"

    def die(p):
        if p.index == 45:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export(settings(clicks, out), on_progress=die)
    seen = []
    r = export(settings(clicks, out), on_progress=seen.append)
    chunks = plan_chunks(60, 0.0, 10.0, 2.0, analyze_beats(clicks))
    open_chunk = next(c for c in chunks if c.first <= 45 < c.stop)
    assert r.resumed_from == 45 and r.written == 15
    # only the chunk that was cut short runs again (its finished frames are replayed, not rewritten)
    assert sum(p.replaying for p in seen) == 45 - open_chunk.first < 45
    assert files(out) == files(tmp_path / "ref")


def test_a_changed_chunk_length_on_resume_is_refused(clicks, tmp_path):
    def die(p):
        if p.index == 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export(settings(clicks, tmp_path / "o"), on_progress=die)
    with pytest.raises(BeatcanvasError, match="chunks"):
        export(settings(clicks, tmp_path / "o", chunk_s=3.0))


def seam_metric(out: Path, n: int, fps: float, chunk_s: float, beats: BeatMap) -> tuple[list[float], float]:
    """(mean absolute change across each seam, 99th percentile of the changes inside chunks)."""
    frames = [pygame.surfarray.array3d(pygame.image.load(str(frame_path(out, i)))).astype(np.float32) for i in range(n)]
    steps = np.array([np.abs(frames[i + 1] - frames[i]).mean() for i in range(n - 1)])
    seams = [c.first - 1 for c in plan_chunks(n, 0.0, fps, chunk_s, beats)[1:]]
    return [float(steps[k]) for k in seams], float(np.percentile(np.delete(steps, seams), 99))


def test_seams_change_the_picture_no_more_than_the_99th_percentile_inside_chunks(tmp_path):
    # 16 s: a quiet pad, then a loud click track (the look changes with the music across the cuts)
    pad = progression(minor=True, bars=2, chord_s=2.0)[: 8 * SR] * 0.3
    clicks_, _ = click_track(bpm=124.0, seconds=8.0)
    track = tmp_path / "pad-then-beat.wav"
    sf.write(track, np.concatenate([pad, clicks_]).astype(np.float32), SR)
    s = ExportSettings(track=track, out_dir=tmp_path / "o", fps=15, width=96, height=54, chunk_s=3.0)
    r = run_export(s, ProceduralRenderer(96, 54, 0))
    seams, p99 = seam_metric(tmp_path / "o", r.n_frames, 15, 3.0, analyze_beats(track))
    assert len(seams) == 5 and max(seams) <= p99, (seams, p99)


@pytest.mark.slow
def test_seams_on_the_demo_track_procedural(tmp_path):
    from engine.audio.demo import ensure_demo_track

    track = ensure_demo_track(60.0)
    s = ExportSettings(track=track, out_dir=tmp_path / "o", fps=30, width=160, height=90)
    r = run_export(s, ProceduralRenderer(160, 90, 0))
    seams, p99 = seam_metric(tmp_path / "o", r.n_frames, 30, s.chunk_s, analyze_beats(track))
    (tmp_path / "seams.json").write_text(json.dumps({"seams": seams, "p99": p99}))
    assert max(seams) <= p99, (seams, p99)
