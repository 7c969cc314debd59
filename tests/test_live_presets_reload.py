"""Hot-reloaded presets mid-show: a good edit applies within a second; a broken or deleted file
keeps the last good preset, says so in the HUD, and the picture keeps moving."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import threading
import time

from live.presets.library import to_toml
from live.presets.schema import Preset
from live.session.show import ShowOptions, resolve
from live_fakes import FakeRenderer, FakeSource, synth_track, wait_for, watching
from test_live_session import assert_kept_showing, make_session


def _write(path, preset: Preset) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(to_toml(preset), encoding="utf-8")
    os.replace(tmp, path)  # how editors save


def _edit_later(delay: float, fn) -> threading.Thread:
    t = threading.Thread(target=lambda: (time.sleep(delay), fn()), daemon=True)
    t.start()
    return t


def test_good_edit_applies_then_broken_edit_is_refused(tmp_path):
    path = tmp_path / "show.toml"
    preset = Preset(name="show", reactivity={"beat_zoom": 1.0})
    _write(path, preset)
    source = FakeSource(synth_track(10.0))
    session, display = make_session(tmp_path, FakeRenderer(delay=0.02), source, duration=120.0,
                                    preset=preset, preset_path=path, stop_when_finished=False)
    applied: list[bool] = []

    def edits():  # each step waits for the one before to take effect (how fast is scripts/bench_live.py's)
        try:
            assert wait_for(lambda: len(display.shown) > 0 and watching(session))
            _write(path, Preset(name="show", reactivity={"beat_zoom": 2.0}))
            applied.append(wait_for(lambda: session.compositor.reactivity.beat_zoom == 2.0))
            path.write_text("[reactivity]\nbeat_zoom = 'loud'\n", encoding="utf-8")
            wait_for(lambda: "beat_zoom" in session.state.error)
        finally:
            session.request_stop()

    _edit_later(0.0, edits)
    session.run()
    assert applied == [True], "the edit was never applied"
    assert session.spec.compositor.reactivity.beat_zoom == 2.0  # the broken edit did not replace it
    assert "beat_zoom" in session.state.error and "keeping the last good preset" in session.state.error
    assert_kept_showing(display, session)


def test_deleted_preset_file_keeps_last_good_preset(tmp_path):
    path = tmp_path / "show.toml"
    preset = Preset(name="show")
    _write(path, preset)
    source = FakeSource(synth_track(10.0))
    renderer = FakeRenderer(delay=0.02)
    session, display = make_session(tmp_path, renderer, source, duration=120.0, preset=preset,
                                    preset_path=path, stop_when_finished=False)

    def delete():  # delete once the show runs; stop once the deletion was noticed and renders went on
        try:
            assert wait_for(lambda: len(display.shown) > 0 and watching(session))
            path.unlink()
            assert wait_for(lambda: "deleted" in session.state.error)
            seen = renderer.rendered
            wait_for(lambda: renderer.rendered > seen + 10)
        finally:
            session.request_stop()

    _edit_later(0.0, delete)
    session.run()
    assert session.spec.preset_hash == resolve(preset, ShowOptions(renderer="procedural", canvas=(320, 180))).preset_hash
    assert "deleted" in session.state.error
    assert renderer.rendered > 10
    assert_kept_showing(display, session)
