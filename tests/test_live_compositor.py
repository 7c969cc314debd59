"""Compositor and slots: the pieces export reuses, checked without a window."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import threading

import numpy as np

from engine.types import BeatGrid, Features, Frame
from live.screen.compositor import Compositor, Reactivity
from live.session.slots import LatestSlot


def _frame(rgb, size=64) -> Frame:
    img = np.empty((size, size, 3), np.uint8)
    img[...] = rgb
    return Frame(image=img)


def _run(comp: Compositor) -> list[np.ndarray]:
    out = []
    for i in range(30):
        now = i / 30
        if i % 10 == 0:
            comp.push(_frame(((i * 7) % 255, 100, 200 - i)), now)
        f = Features(t=now, beat=i % 15 == 0, beat_phase=(i % 15) / 15, low=1.5, mid=0.8, high=1.6, onset=0.5)
        out.append(comp.to_array(comp.compose(f, now)))
    return out


def test_deterministic_given_frames_features_and_time():
    a, b = _run(Compositor(160, 90)), _run(Compositor(160, 90))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_crossfade_goes_from_old_to_new_frame():
    comp = Compositor(32, 32, Reactivity(0, 0, 0, 0), crossfade_ms=400)
    comp.push(_frame((0, 0, 0)), 0.0)
    comp.push(_frame((200, 200, 200)), 1.0)
    quiet = Features(low=1.0, mid=1.0, high=1.0, beat_phase=0.5)
    start = comp.to_array(comp.compose(quiet, 1.0)).mean()
    mid = comp.to_array(comp.compose(quiet, 1.2)).mean()
    end = comp.to_array(comp.compose(quiet, 1.5)).mean()
    assert start < 5 and 80 < mid < 120 and end > 195


def test_each_knob_changes_the_picture_and_zero_turns_it_off():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (90, 160, 3), dtype=np.uint8)
    on_beat = BeatGrid(anchor=0.0, period=0.5, confidence=1.0)
    loud = Features(beat=True, beat_phase=0.0, low=2.0, mid=0.5, high=2.0, onset=1.0, grid=on_beat)
    base = None
    for knob in ("beat_zoom", "band_brightness", "band_hue", "warp"):
        for level in (0.0, 1.0):
            r = Reactivity(**{k: (level if k == knob else 0.0) for k in ("beat_zoom", "band_brightness", "band_hue", "warp")})
            comp = Compositor(160, 90, r, crossfade_ms=0)
            comp.push(Frame(image=img), 0.0)
            comp.compose(loud, 0.0)  # gives the warp a previous output
            comp.push(Frame(image=img[::-1].copy()), 0.1)
            pic = comp.to_array(comp.compose(loud, 0.1))
            if level == 0.0:
                base = pic
                assert np.array_equal(pic, img[::-1]), f"{knob}=0 must leave the frame alone"
            else:
                assert np.abs(pic.astype(int) - base).mean() > 2, f"{knob}=1 did nothing"


def test_non_matching_frame_size_covers_the_output():
    comp = Compositor(160, 90, Reactivity(0, 0, 0, 0), crossfade_ms=0)
    comp.push(_frame((10, 20, 30), size=64), 0.0)
    pic = comp.to_array(comp.compose(None, 0.0))
    assert pic.shape == (90, 160, 3) and (pic == (10, 20, 30)).all()


def test_latest_slot_latest_wins_and_wait_newer():
    slot: LatestSlot[int] = LatestSlot()
    assert slot.get() == (0, None) and slot.get_newer(0) is None
    for i in range(5):
        slot.put(i)
    assert slot.get_newer(0) == (5, 4)  # the newest, not a queue
    assert slot.get_newer(5) is None
    got = []
    t = threading.Thread(target=lambda: got.append(slot.wait_newer(5, timeout=2.0)))
    t.start()
    slot.put(42)
    t.join(1.0)
    assert got == [(6, 42)]
    assert slot.wait_newer(6, timeout=0.01) is None
    slot.close()
    assert slot.wait_newer(6, timeout=5.0) is None  # closed: returns at once
