"""A stage-proof show: each fault a performer, a file or the machine can cause is injected, and the
picture keeps coming (or the export finishes with correct frames) with one clear line and no
traceback. Numbers refer to the items of the stage-proof issue."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import errno
import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pygame
import pytest
import soundfile as sf
import torch

from engine.errors import BeatcanvasError
from engine.types import Conditioning, Features, Frame, Window
from live.presets.library import to_toml
from live.presets.playlist import ShowList
from live.presets.schema import Preset, PresetError, parse_preset
from live.audio.ringbuffer import RingBuffer
from live.session.faults import Backoff
from live.session.show import ShowOptions
from live_fakes import FakeBuilder, FakeRenderer, FakeSource, FakeUnderstanding, stop_when, synth_track, then_shown_more, wait_for, watching
from test_live_session import assert_kept_showing, key, make_session

DEEP = "[motion]\nfeedback = " + "[" * 10_000 + "]" * 10_000 + "\n"


# 1. A preset typo must not end the show --------------------------------------------------------


@pytest.mark.parametrize("text, words", [
    ('[model]\nmodel = ["sdxl-turbo"]\n', "model.model"),
    ('model = ["x"]\n', "model = ['x']"),
    (DEEP, "nested too deeply"),
])
def test_broken_preset_text_is_one_preset_error(text, words):
    with pytest.raises(PresetError, match=words.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        parse_preset(text, "show.toml")


def test_play_survives_list_then_deep_nesting_then_applies_a_valid_edit(tmp_path, caplog, monkeypatch):
    from live.cli import main
    from live.session.session import Session

    track = tmp_path / "t.wav"
    sf.write(str(track), synth_track(60.0), 48_000)  # longer than any wait: the test stops the show
    path = tmp_path / "show.toml"
    path.write_text(to_toml(Preset(name="show", model={"renderer": "procedural"})))
    caplog.set_level(logging.INFO, logger="live")
    sessions: list[Session] = []
    start = Session.start
    monkeypatch.setattr(Session, "start", lambda self: (sessions.append(self), start(self))[1])

    def logged(words: str) -> bool:
        return any(words in r.getMessage() for r in list(caplog.records))

    def edit() -> None:  # each edit once the one before was handled; then stop the show
        try:
            if not wait_for(lambda: bool(sessions) and watching(sessions[0])):
                return
            path.write_text('[model]\nmodel = ["x"]\n')
            if not wait_for(lambda: logged("model.model")):
                return
            path.write_text(DEEP)
            if not wait_for(lambda: logged("nested too deeply")):
                return
            path.write_text(to_toml(Preset(name="show", model={"renderer": "procedural"}, reactivity={"beat_zoom": 1.7})))
            wait_for(lambda: logged("preset show applied"))
        finally:
            if sessions:
                sessions[0].request_stop()

    editor = threading.Thread(target=edit, daemon=True)
    editor.start()
    code = main(["play", str(track), "--preset", str(path), "--no-audio-out", "--duration", "120", "--size", "320x180",
                 "--screenshots", str(tmp_path)])
    editor.join(5.0)
    assert code == 0
    rejected = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert any("model.model" in m for m in rejected) and any("nested too deeply" in m for m in rejected)
    assert any("preset show applied (edited; changed: compositor)" in r.getMessage() for r in caplog.records)


def test_a_stage_exception_on_the_display_thread_costs_one_frame_not_the_show(tmp_path):
    session, display = make_session(tmp_path, FakeRenderer(delay=0.02), FakeSource(synth_track(10.0)))
    compose, calls = session.compositor.compose, []

    def flaky(features, now):
        calls.append(now)
        if len(calls) in (5, 6, 7):
            raise TypeError("a stage bug")
        return compose(features, now)

    session.compositor.compose = flaky
    stop_when(session, lambda: len(calls) > 30)  # the show went on well past the three failures
    session.run()
    assert len(calls) > 30 and "a stage bug" in session.state.error
    assert session.board.faults.counts["display"] == 3


def test_a_key_whose_action_fails_is_reported_and_the_show_goes_on(tmp_path):
    session, display = make_session(tmp_path, FakeRenderer(delay=0.02), FakeSource(synth_track(10.0)),
                                    script=[(0.3, key(pygame.K_5, "5"))])  # slot 5 of a one-preset show
    refused = then_shown_more(lambda: "slot 5 is empty" in session.state.error, lambda: len(display.shown), 5)
    stop_when(session, refused)  # the refusal is on screen and 5 more pictures followed it
    session.run()
    assert refused(), f"error {session.state.error!r}, {len(display.shown)} pictures"
    assert_kept_showing(display, session)


# 2. NaN/Inf audio is made safe at the ring; conditioning recovers -------------------------------


def test_ring_replaces_non_finite_samples_with_silence_and_counts_them():
    ring = RingBuffer(1.0)
    block = np.ones(480, np.float32)
    block[10:20] = np.nan
    block[30] = np.inf
    stored = ring.write(block, 0.01)
    assert ring.nonfinite == 11 and np.isfinite(ring.latest(0.01).samples).all() and stored[10] == 0.0
    clean = np.ones(480, np.float32)
    assert ring.write(clean) is clean  # clean audio is not copied


def test_nan_burst_in_the_input_never_reaches_the_conditioning(tmp_path, tiny_components):
    from engine.understanding.pipeline import build_understanding

    clap, text, _ = tiny_components
    und = build_understanding("tiny", head="zeroshot", cache_dir=tmp_path, clap=clap, text=text)
    source = FakeSource(synth_track(10.0))
    source.nan_at = (0.5, 0.05)
    renderer = FakeRenderer(delay=0.02)
    conds: list = []
    render = renderer.render
    renderer.render = lambda c, f, t: (conds.append(c), render(c, f, t))[1]
    session, display = make_session(tmp_path, renderer, source, understanding=und,
                                    options=ShowOptions(profile="tiny", renderer="sdxl", canvas=(320, 180)))

    def after_burst() -> list:
        return [c for c in list(conds) if c is not None and c.t > 0.6]

    stop_when(session, lambda: len({float(c.prompt_embeds.sum()) for c in after_burst()}) > 1)
    session.run()
    after = after_burst()
    assert after and all(torch.isfinite(c.prompt_embeds).all() for c in after)
    assert len({float(c.prompt_embeds.sum()) for c in after}) > 1  # still moving with the music
    assert "NaN/Inf in the audio input" in session.state.error or session.report.conditioning_errors == 0
    assert all(np.isfinite(list(lab.values())).all() for lab in [c.labels for c in after])


def test_non_finite_embedding_is_refused_and_the_smoother_keeps_its_last_good_state(tmp_path, tiny_components):
    from engine.understanding.pipeline import build_understanding

    clap, text, _ = tiny_components
    und = build_understanding("tiny", head="zeroshot", cache_dir=tmp_path, clap=clap, text=text)
    w = Window(0.1 * np.sin(np.arange(480_000, dtype=np.float32) / 9), 10.0)
    good = und.step(w)
    with pytest.raises(BeatcanvasError, match="not finite"):
        und.step_embedding(torch.full_like(good.audio_embedding, float("nan")), 10.5)
    assert und.smoother.state is good and torch.isfinite(und.scene.reference).all()
    assert torch.isfinite(und.step(Window(w.samples, 11.0)).prompt_embeds).all()


def test_exported_float_wav_with_a_nan_burst_has_no_black_frames_after_it(tmp_path, tiny_components, monkeypatch):
    import engine.models.profiles
    from live.cli import main

    clap, text, sdxl = tiny_components
    monkeypatch.setattr(engine.models.profiles, "build_sdxl", lambda *a, **k: sdxl)
    monkeypatch.setattr(engine.models.profiles, "build_clap", lambda *a, **k: clap)
    monkeypatch.setattr(engine.models.profiles, "build_text_encoders", lambda *a, **k: text)
    audio = synth_track(2.0)
    audio[int(0.5 * 48_000): int(0.55 * 48_000)] = np.nan  # 50 ms
    track = tmp_path / "float.wav"
    sf.write(str(track), audio, 48_000, subtype="FLOAT")
    out = tmp_path / "frames"
    assert main(["export", str(track), "--out", str(out), "--fps", "10", "--size", "64x64", "--profile", "tiny",
                 "--renderer", "sdxl"]) == 0
    frames = sorted(out.glob("frame_*.png"))
    after = [pygame.surfarray.array3d(pygame.image.load(str(p))) for p in frames[6:]]  # t >= 0.6 s
    assert len(after) >= 10 and all(f.max() > 0 and f.std() > 1 for f in after)


# 4. Switching between SDXL and procedural presets at run time ------------------------------------


WEIGHTS_FREE = ("shader", "procedural")  # a "procedural" preset: the shader look where GL runs, numpy elsewhere


def test_switching_to_a_procedural_preset_and_back_works_both_ways(tmp_path):
    sdxl = Preset(name="paint", model={"renderer": "sdxl"})
    proc = Preset(name="geo", model={"renderer": "procedural"})
    show = ShowList((sdxl, proc), (None, None), (0.0, 0.0))
    understanding, builder = FakeUnderstanding(), FakeBuilder()
    session, display = make_session(
        tmp_path, FakeRenderer(delay=0.02), FakeSource(synth_track(30.0)), show=show,
        understanding=understanding, builder=builder, options=ShowOptions(profile="tiny", canvas=(320, 180)))

    def switch() -> None:  # each key once the previous switch has landed and pictures followed it
        kind = lambda: session.render_loop.stage.spec.kind  # noqa: E731
        try:
            if not wait_for(lambda: len(display.shown) > 5):
                return
            display.script.append((0.0, key(pygame.K_RIGHT)))
            if not wait_for(then_shown_more(lambda: kind() in WEIGHTS_FREE, lambda: len(display.shown))):
                return
            display.script.append((0.0, key(pygame.K_LEFT)))
            wait_for(then_shown_more(lambda: kind() == "sdxl" and len(builder.asked) == 2 and understanding.steps > 3,
                                     lambda: len(display.shown)))
        finally:
            session.request_stop()

    threading.Thread(target=switch, daemon=True).start()
    session.run()
    asked = [spec.render.kind for spec, _ in builder.asked]
    assert len(asked) == 2 and asked[0] in WEIGHTS_FREE and asked[1] == "sdxl", asked
    assert session.report.conditioning_errors == 0 and session.state.error == ""
    assert session.render_loop.stage.spec.kind == "sdxl" and understanding.steps > 3
    assert_kept_showing(display, session)


# 5. Watchdog, fallback to procedural, and stepping back up ----------------------------------------


def test_hung_render_falls_back_to_procedural_then_steps_back_up(tmp_path):
    stuck = threading.Event()
    renderer = FakeRenderer(delay=0.01)
    slow = renderer.render
    renderer.render = lambda c, f, t: (stuck.wait(60.0) if renderer.calls == 4 else None, slow(c, f, t))[1]
    builder = FakeBuilder()
    session, display = make_session(tmp_path, renderer, FakeSource(synth_track(10.0)), duration=120.0, builder=builder,
                                    hang_s=3.0, retry_s=0.8, stop_when_finished=False)  # 3 s: no busy-machine false alarm
    messages: list[str] = []

    def watch():  # every HUD message until the configured renderer is back, then stop the show
        try:
            wait_for(lambda: (messages[-1:] != [session.state.message] and messages.append(session.state.message),
                              session.report.recoveries >= 1)[1], poll=0.005)
        finally:
            session.request_stop()

    threading.Thread(target=watch, daemon=True).start()
    try:
        session.run()
    finally:
        stuck.set()
    assert (session.report.fallbacks, session.report.recoveries) == (1, 1), messages
    assert any(m.startswith("a render hung for") and "procedural" in m for m in messages), messages
    assert builder.asked and session.render_loop.stage.name.startswith("fake-")  # the retried configured renderer
    assert session.state.message == f"{session.render_loop.stage.name} is back"
    assert_kept_showing(display, session)


def test_persistent_render_failure_falls_back_and_keeps_retrying(tmp_path):
    renderer = FakeRenderer(delay=0.01, fail={n: RuntimeError("driver fell over") for n in range(3, 10_000)})
    builder = FakeBuilder(fail=RuntimeError("still broken"))
    session, display = make_session(tmp_path, renderer, FakeSource(synth_track(10.0)), duration=120.0, builder=builder,
                                    retry_s=0.3, stop_when_finished=False)
    stop_when(session, lambda: len(builder.asked) >= 2 and session.report.frames_rendered > 20
              and "still failing" in session.state.message)
    session.run()
    assert session.report.fallbacks == 1 and session.render_loop.degraded == "fallback"
    assert session.render_loop.stage.name == "procedural" and session.report.frames_rendered > 20
    assert len(builder.asked) >= 2 and "still failing" in session.state.message
    assert_kept_showing(display, session)


def test_out_of_memory_at_the_smallest_size_falls_back(tmp_path):
    renderer = FakeRenderer(width=256, height=256, fail={2: torch.cuda.OutOfMemoryError("CUDA out of memory")})
    session, display = make_session(tmp_path, renderer, FakeSource(synth_track(10.0)), retry_s=30.0)
    stop_when(session, lambda: session.report.fallbacks == 1 and "smallest size" in session.state.message)
    session.run()
    assert session.report.fallbacks == 1 and "smallest size" in session.state.message


def test_backoff_waits_only_after_repeated_failures():
    b = Backoff(0.25, 2.0)
    assert [b.failed() for _ in range(6)] == [0.0, 0.25, 0.5, 1.0, 2.0, 2.0]
    b.succeeded()
    assert b.failed() == 0.0


# 6. Empty, half-written and huge preset files ------------------------------------------------------


def test_empty_half_written_and_huge_preset_files_are_not_applied(tmp_path):
    path = tmp_path / "show.toml"
    preset = Preset(name="show", reactivity={"beat_zoom": 1.0})
    path.write_text(to_toml(preset))
    session, display = make_session(tmp_path, FakeRenderer(delay=0.02), FakeSource(synth_track(30.0)), duration=300.0,
                                    preset=preset, preset_path=path, stop_when_finished=False)
    errors: list[str] = []
    good = to_toml(Preset(name="show", reactivity={"beat_zoom": 1.5}))

    def half_then_whole():  # an editor writing in two pieces: only the whole file counts
        with open(path, "w") as f:
            f.write(good[: len(good) // 3] + "\n[reactivity]\nbeat_zoom = 0.1\n")
            f.flush()
            time.sleep(0.05)
            f.seek(0)
            f.truncate()
            f.write(good)

    def until(words: str) -> None:  # the watcher saw it (however loaded the machine)
        wait_for(lambda: words in (session.state.error or ""))
        errors.append(session.state.error)

    def edits():
        try:
            wait_for(lambda: len(display.shown) > 0 and watching(session))  # the show and its preset watcher run
            path.write_text("")
            until("empty")
            path.write_text("# x\n" * 8_000_000)  # 32 MB
            until("MB")
            half_then_whole()
            wait_for(lambda: session.report.presets_applied >= 1)
            time.sleep(0.3)  # a late second apply (of a half-written file) would show in the count
        finally:
            session.request_stop()

    threading.Thread(target=edits, daemon=True).start()
    session.run()
    assert "empty" in errors[0] and "MB" in errors[1]
    assert session.compositor.reactivity.beat_zoom == 1.5 and session.report.presets_applied == 1
    assert_kept_showing(display, session)


# 7. One line instead of a traceback ----------------------------------------------------------------


def test_disk_full_while_exporting_is_one_line(tmp_path, monkeypatch, capsys):
    import live.export.run
    from live.cli import main

    track = tmp_path / "t.wav"
    sf.write(str(track), synth_track(1.0), 48_000)

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(live.export.run, "write_png", full)
    code = main(["export", str(track), "--out", str(tmp_path / "o"), "--renderer", "procedural", "--size", "64x48"])
    err = capsys.readouterr().err
    assert code == 1 and "disk is full" in err and "Traceback" not in err
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["status"] == "interrupted"


@pytest.mark.parametrize("change, words", [
    ({"heads": 0}, "heads=0 is outside"),
    ({"widths": "ab"}, "widths='ab' must be two integers"),
    ({"tokens": 2e8}, "tokens=200000000.0 is outside"),
    ({"layers": 2.5}, "layers=2.5 is not an integer"),
])
def test_head_file_metadata_is_checked_before_anything_is_allocated(tmp_path, change, words):
    from safetensors.torch import save_file

    from engine.understanding.heads.transformer import FORMAT, TransformerHead

    config = {"audio_dim": 8, "widths": [8, 8], "pooled_dim": 8, "tokens": 4, "heads": 2, "layers": 1,
              "ff_mult": 1, "dropout": 0.0, **change}
    path = tmp_path / "head.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata={"format": FORMAT, "config": json.dumps(config)})
    with pytest.raises(BeatcanvasError, match=words):
        TransformerHead.load(path)


def test_head_for_another_clap_is_a_clear_error(tmp_path, tiny_components):
    from engine.understanding.heads.transformer import HeadConfig, TransformerHead
    from engine.understanding.pipeline import build_understanding

    path = TransformerHead(HeadConfig(audio_dim=7, widths=(32, 32), pooled_dim=32, heads=4, layers=1)).save(
        tmp_path / "other.safetensors")
    with pytest.raises(BeatcanvasError, match="expects 7-d audio embeddings"):
        build_understanding("tiny", head="transformer", head_path=str(path), clap=tiny_components[0])


# 8. Export edge cases --------------------------------------------------------------------------------


def _export(track, out, **kw):
    from engine.render.procedural import ProceduralRenderer
    from live.export.run import ExportSettings, run_export

    s = ExportSettings(track=track, out_dir=out, fps=30.0, width=64, height=48, seed=3, **kw)
    return run_export(s, ProceduralRenderer(64, 48, 3))


def test_shorter_end_trims_and_a_damaged_frame_mid_run_is_redone(tmp_path):
    track = tmp_path / "t.wav"
    sf.write(str(track), synth_track(2.0), 48_000)
    ref, out = tmp_path / "ref", tmp_path / "out"
    _export(track, ref, end=1.0)
    _export(track, out, end=2.0)
    r = _export(track, out, end=1.0)
    assert r.trimmed == 30 and len(list(out.glob("frame_*.png"))) == 30
    assert len((out / "frames.jsonl").read_text().splitlines()) == 30
    middle = out / "frame_000012.png"
    middle.write_bytes(middle.read_bytes()[:100])  # truncated in the middle of the run
    r = _export(track, out, end=1.0)
    assert r.written == 1 and r.resumed_from == 29
    assert [p.read_bytes() for p in sorted(out.glob("frame_*.png"))] == [p.read_bytes() for p in sorted(ref.glob("frame_*.png"))]


def test_temp_files_of_a_killed_mux_are_removed_on_the_next_run(tmp_path):
    from live.export.files import encode_png, frame_path
    from live.export.video import encode_video

    for i in range(4):
        frame_path(tmp_path, i).write_bytes(encode_png(np.full((16, 16, 3), 40 * i, np.uint8)))
    stale = tmp_path / ".show.mp4.999999.tmp"  # pid 999999: a process that is gone
    stale.write_bytes(b"half a video")
    encode_video(lambda i: frame_path(tmp_path, i), 4, 10.0, tmp_path / "show.mp4")
    assert (tmp_path / "show.mp4").stat().st_size > 0 and not stale.exists()


# 9. Smaller ones ---------------------------------------------------------------------------------------


def test_compositor_takes_nan_band_values(tmp_path):
    from live.screen.compositor import Compositor

    c = Compositor(64, 48)
    nan = float("nan")
    picture = np.full((48, 64, 3), 180, np.uint8)
    picture[:, :32] = (40, 90, 200)
    c.push(Frame(image=picture, t=0.0, renderer="test"), 0.0)
    shown = c.to_array(c.compose(Features(low=nan, mid=float("inf"), high=nan, onset=nan, beat_phase=nan), 1.0))
    assert shown.shape == (48, 64, 3)
    # The picture still shows (not black, not one flat colour, no NaN turned into garbage): the bands
    # are read as "no energy" and the frame passes through close to what was pushed.
    assert shown.mean() > 60 and shown.std() > 20
    assert np.abs(shown.astype(int) - picture).mean() < 40


def test_unknown_key_message_names_the_section_on_the_command_line(tmp_path, capsys):
    from live.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nstepz = 2\n[motion]\nfeedback = 'x'\n")
    assert main(["presets", "validate", str(bad)]) == 1
    out = capsys.readouterr()
    assert "in [model]" in out.out + out.err and "and 1 more" in out.out + out.err


# 3. Hot-reloaded [conditioning] and [motion] reach the real SDXL stages ----------------------------


def test_real_sdxl_and_understanding_apply_conditioning_and_motion_edits_in_place(tmp_path, tiny_components, monkeypatch):
    import engine.models.profiles
    from live.session.factory import build_stages
    from live.session.show import resolve

    clap, text, sdxl = tiny_components
    monkeypatch.setattr(engine.models.profiles, "build_sdxl", lambda *a, **k: sdxl)
    monkeypatch.setattr(engine.models.profiles, "build_clap", lambda *a, **k: clap)
    monkeypatch.setattr(engine.models.profiles, "build_text_encoders", lambda *a, **k: text)
    opts = ShowOptions(profile="tiny", renderer="sdxl", size=(64, 64), device="cpu")
    before = Preset(name="p", conditioning={"style": "oil", "audio_weight": 0.5}, motion={"feedback": 0.2})
    after = Preset(name="p", conditioning={"style": "ink wash", "audio_weight": 0.5, "smoothing_s": 7.0},
                   motion={"feedback": 0.6, "seed_policy": "drift", "seed": 5})
    stages = build_stages(resolve(before, opts))
    renderer, und = stages.render.renderer, stages.understanding
    old_style = und.style_conditioning
    spec = resolve(after, opts)
    assert set(und.configure(spec.understanding).applied) == {"style", "smoothing_s"}
    assert und.smoother.tau == 7.0 and not torch.equal(und.style_conditioning.prompt_embeds, old_style.prompt_embeds)
    result = stages.render.configure(spec.render)
    assert not result.rebuild and {"feedback", "seed", "seed_policy"} <= set(result.applied)
    assert (renderer.feedback, renderer.seed_policy, renderer.seed) == (0.6, "drift", 5)
    assert stages.render.configure(resolve(after.model_copy(update={"model": before.model.model_copy(
        update={"steps": 4})}), opts).render).rebuild == ("steps",)


_ARENAS = r"""
import ctypes, sys, tempfile, threading
from live.session.faults import cap_malloc_arenas
if sys.argv[1] == "cap":
    assert cap_malloc_arenas(2)
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.fopen.restype, libc.fopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes, libc.fclose.argtypes = [ctypes.c_int, ctypes.c_void_p], [ctypes.c_void_p]
together = threading.Barrier(12)

def worker():  # a hung render worker and its replacement both hold memory at once
    p = libc.malloc(64 * 1024)
    together.wait()
    libc.free(p)

threads = [threading.Thread(target=worker) for _ in range(12)]
for t in threads: t.start()
for t in threads: t.join()
path = tempfile.mktemp()
fp = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, fp)
libc.fclose(fp)
print(open(path).read().count("<heap nr="))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="not Linux: the malloc arenas tested are glibc's")
def test_the_show_caps_malloc_arenas_so_replaced_workers_do_not_grow_memory():
    counts = {}
    for mode in ("cap", "free"):
        run = subprocess.run([sys.executable, "-c", _ARENAS, mode], capture_output=True, text=True, timeout=60,
                             cwd=Path(__file__).resolve().parents[1])
        if run.returncode != 0 and "libc.so.6" in run.stderr:
            pytest.skip("this C library is not glibc (the malloc arenas tested are glibc's)")
        assert run.returncode == 0, run.stderr
        counts[mode] = int(run.stdout.strip())
    assert counts["cap"] <= 2 < counts["free"]  # 12 threads at once: an arena each, unless capped
