"""Video and OSC out at their boundaries: frame format, size, stride and colour order for each
sender (NDI for real through cyndilib's bundled runtime; Spout and Syphon with fake modules), a
sender thread that never blocks the display, and the OSC feature bundle on a real UDP socket."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# NDI finds sources by mDNS; naming 127.0.0.1 as an extra discovery address lets a receiver in
# this process find the sender without a network. Must be set before the NDI runtime loads.
_NDI_CONFIG = Path(tempfile.mkdtemp(prefix="beatcanvas-ndi-"))
(_NDI_CONFIG / "ndi-config.v1.json").write_text('{"ndi": {"networks": {"ips": "127.0.0.1", "discovery": ""}}}')
os.environ["NDI_CONFIG_DIR"] = str(_NDI_CONFIG)  # override any config already set: tests stay on loopback
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import threading
import time
import types

import numpy as np
import pygame
import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

from engine.errors import BeatcanvasError
from engine.types import Conditioning, Features
from live.outputs.osc_out import OscBroadcast, parse_target
from live.outputs.sender import SenderThread, VideoFrame, surface_frame
from live.outputs.spout import GL_BGRA_EXT, GL_RGBA, SpoutBackend
from live.outputs.syphon import MTL_BGRA8, MTL_RGBA8, SyphonBackend
import machine
from live_fakes import wait_for

RED_BGRA = (0, 0, 230, 0)  # a red pixel as a pygame surface stores it (fourth byte: padding)


def red_frame(w=96, h=64) -> VideoFrame:
    px = np.zeros((h, w, 4), np.uint8)
    px[...] = RED_BGRA
    px[:, :16] = (200, 0, 0, 0)  # a blue band on the left, so left/right and channels are checkable
    return VideoFrame(px, "BGRA")


# -- the frame contract -------------------------------------------------------------------------


def test_surface_frame_is_a_fast_copy_in_the_surface_byte_order():
    pygame.display.init()
    surface = pygame.Surface((40, 30))
    surface.fill((230, 10, 20))
    surface.fill((0, 0, 255), pygame.Rect(0, 0, 5, 30))
    frame = surface_frame(surface)
    assert frame.size == (40, 30) and frame.pixels.shape == (30, 40, 4)
    rgb = {"BGRA": [2, 1, 0], "RGBA": [0, 1, 2]}[frame.order]
    assert frame.pixels[10, 20, rgb].tolist() == [230, 10, 20]
    assert frame.pixels[10, 2, rgb].tolist() == [0, 0, 255]
    surface.fill((0, 0, 0))  # the compositor draws the next frame: the sent one must not change
    assert frame.pixels[10, 20, rgb].tolist() == [230, 10, 20]
    with pytest.raises(ValueError, match="contiguous uint8"):
        VideoFrame(np.zeros((4, 4, 3), np.uint8))
    assert VideoFrame.from_rgb(np.full((2, 3, 3), 7, np.uint8)).pixels[0, 0].tolist() == [7, 7, 7, 255]


class SlowBackend:
    name = "Slow"
    sender_name = "beatcanvas"

    def __init__(self, delay=0.1, fail_first=0, gate: threading.Event | None = None):
        self.delay, self.fail_first, self.sent = delay, fail_first, []
        self.gate, self.entered = gate, threading.Event()

    def send(self, frame):
        self.entered.set()
        time.sleep(self.delay)
        if self.gate is not None:
            self.gate.wait(30.0)
        if self.fail_first > 0:
            self.fail_first -= 1
            raise RuntimeError("receiver went away")
        self.sent.append(int(frame.pixels[0, 0, 0]))

    def close(self):
        pass


def test_a_slow_sender_never_blocks_and_sends_the_newest_frame():
    stuck = threading.Event()
    backend = SlowBackend(delay=0.0, gate=stuck)  # its first send hangs until the test lets it go
    errors = []
    sender = SenderThread(backend, on_error=errors.append)
    burst_done = threading.Event()

    def burst():  # a second of display frames while the send is stuck
        for i in range(1, 60):
            sender.submit(VideoFrame(np.full((8, 8, 4), i, np.uint8)))
        burst_done.set()

    try:
        sender.submit(VideoFrame(np.full((8, 8, 4), 0, np.uint8)))
        assert backend.entered.wait(30.0), "the sender thread never sent"
        threading.Thread(target=burst, daemon=True).start()
        assert burst_done.wait(30.0), "submit waited for the stuck send"
        assert backend.sent == []  # all 59 were submitted while frame 0 was still being sent
    finally:
        stuck.set()
    assert wait_for(lambda: backend.sent[-1:] == [59], timeout=30.0)
    sender.close()
    assert backend.sent == [0, 59]  # then only the newest: the rest dropped, not queued
    assert sender.dropped == 58 and not errors


def test_sender_errors_are_reported_and_it_keeps_going():
    backend = SlowBackend(delay=0.0, fail_first=3)
    errors = []
    sender = SenderThread(backend, on_error=errors.append, report_every_s=60.0)
    for i in range(5):  # one at a time: each is sent (or fails) before the next comes
        sender.submit(VideoFrame(np.full((4, 4, 4), i, np.uint8)))
        assert wait_for(lambda: sender.sent + sender.errors == i + 1)
    sender.close()
    assert errors == ["Slow out: receiver went away"]  # once, not per frame
    assert sender.errors == 3 and backend.sent == [3, 4]


# -- NDI ----------------------------------------------------------------------------------------


class FakeNdi:
    """cyndilib's Sender / VideoSendFrame / FourCC, recording what the backend sets."""

    def __init__(self):
        self.senders = []
        fake = self

        class VideoSendFrame:
            def set_resolution(self, w, h):
                self.resolution = (w, h)

            def set_fourcc(self, fourcc):
                self.fourcc = fourcc

            def set_frame_rate(self, rate):
                self.rate = rate

        class Sender:
            def __init__(self, name, clock_video=True):
                self.name, self.clock_video, self.writes, self.closed = name, clock_video, [], False
                fake.senders.append(self)

            def set_video_frame(self, vf):
                self.frame = vf

            def open(self):
                pass

            def write_video(self, data):
                self.writes.append(np.array(data))
                return True

            def close(self):
                self.closed = True

        self.lib = (types.SimpleNamespace(Sender=Sender), types.SimpleNamespace(VideoSendFrame=VideoSendFrame),
                    types.SimpleNamespace(FourCC=types.SimpleNamespace(BGRX="BGRX", RGBX="RGBX")))


def test_ndi_sends_the_frame_as_is_and_reopens_on_a_new_size():
    from live.outputs.ndi import NdiBackend

    fake = FakeNdi()
    ndi = NdiBackend(fps=60, lib=fake.lib)
    frame = red_frame(96, 64)
    ndi.send(frame)
    ndi.send(frame)
    s = fake.senders[0]
    assert s.name == "beatcanvas" and s.clock_video is False
    assert (s.frame.resolution, s.frame.fourcc, s.frame.rate) == ((96, 64), "BGRX", 60)
    assert len(s.writes) == 2 and s.writes[0].size == 96 * 64 * 4  # stride = width * 4, no padding
    assert s.writes[0][:4].tolist() == [200, 0, 0, 0]  # BGRX bytes unchanged
    rgba = VideoFrame(np.zeros((32, 48, 4), np.uint8), "RGBA")
    ndi.send(rgba)
    assert s.closed and fake.senders[1].frame.fourcc == "RGBX" and fake.senders[1].frame.resolution == (48, 32)


def test_ndi_for_real_a_receiver_sees_red_and_blue_where_they_were_sent():
    machine.dev_extra("cyndilib")
    from cyndilib.finder import Finder
    from cyndilib.receiver import ReceiveFrameType, Receiver
    from cyndilib.video_frame import VideoRecvFrame
    from cyndilib.wrapper import RecvBandwidth, RecvColorFormat

    from live.outputs.ndi import NdiBackend

    ndi = NdiBackend("beatcanvas-test")
    frame = red_frame(96, 64)
    ndi.send(frame)
    finder = Finder()
    finder.open()
    try:
        source, deadline = None, time.monotonic() + 60.0  # ends when found; generous for a busy machine
        while source is None and time.monotonic() < deadline:
            finder.wait_for_sources(0.2)
            ndi.send(frame)
            name = next((n for n in finder.get_source_names() if "beatcanvas-test" in n), None)
            source = finder.get_source(name) if name else None
        assert source is not None, "the NDI source was not found on 127.0.0.1"
        receiver = Receiver(color_format=RecvColorFormat.RGBX_RGBA, bandwidth=RecvBandwidth.highest)
        received = VideoRecvFrame()
        receiver.set_video_frame(received)
        receiver.connect_to(source)
        got, deadline = None, time.monotonic() + 60.0  # ends when a frame arrives
        while got is None and time.monotonic() < deadline:
            ndi.send(frame)
            if receiver.receive(ReceiveFrameType.recv_video, 100) & ReceiveFrameType.recv_video:
                stride = received.get_line_stride()
                got = np.asarray(received).reshape(received.yres, stride // 4, 4)
        assert got is not None, "no frame arrived"
        assert (received.xres, received.yres) == (96, 64)
        r, g, b = got[32, 60, :3].astype(int)  # NDI compresses: allow a little drift
        assert r > 200 and g < 30 and b < 30
        r, g, b = got[32, 4, :3].astype(int)
        assert b > 170 and r < 30
        assert ndi.connections >= 1
        receiver.disconnect()
    finally:
        finder.close()
        ndi.close()


# -- Spout / Syphon -----------------------------------------------------------------------------


def fake_spout():
    calls = []

    class SpoutSender:
        def setSenderName(self, name):
            calls.append(("name", name))

        def sendImage(self, pixels, w, h, fmt, invert, fbo):
            calls.append(("image", np.array(pixels), w, h, fmt, invert))
            return True

        def setFrameSync(self, name):
            calls.append(("sync", name))

        def releaseSender(self):
            calls.append(("release",))

    return types.SimpleNamespace(SpoutSender=SpoutSender), calls


def test_spout_sends_opaque_pixels_in_the_matching_gl_format():
    module, calls = fake_spout()
    spout = SpoutBackend(platform="win32", module=module)
    spout.send(red_frame(96, 64))
    spout.send(VideoFrame(np.zeros((10, 20, 4), np.uint8), "RGBA"))
    spout.close()
    _, pixels, w, h, fmt, invert = calls[1]
    assert calls[0] == ("name", "beatcanvas") and (w, h, fmt, invert) == (96, 64, GL_BGRA_EXT, False)
    assert pixels.shape == (64, 96, 4) and pixels[32, 60].tolist() == [0, 0, 230, 255]  # alpha made opaque
    assert calls[2] == ("sync", "beatcanvas") and calls[3][4] == GL_RGBA and calls[-1] == ("release",)


def test_syphon_publishes_a_texture_of_the_frame_order():
    made, copied, published = [], [], []
    raw = types.SimpleNamespace(
        create_mtl_texture=lambda device, w, h, fmt: made.append((w, h, fmt)) or f"tex{len(made)}",
        copy_bytes_to_mtl_texture=lambda data, tex: copied.append((len(data), data[:4], tex)),
    )

    class Server:
        device = "gpu"

        def __init__(self, name):
            self.name = name

        def publish_frame_texture(self, tex):
            published.append(tex)

        def stop(self):
            published.append("stopped")

    module = types.SimpleNamespace(SyphonMetalServer=Server, utils=types.SimpleNamespace(raw=raw))
    syphon = SyphonBackend(platform="darwin", module=module)
    syphon.send(red_frame(96, 64))
    syphon.send(red_frame(96, 64))
    syphon.send(VideoFrame(np.zeros((10, 20, 4), np.uint8), "RGBA"))
    syphon.close()
    assert made == [(96, 64, MTL_BGRA8), (20, 10, MTL_RGBA8)]  # a texture per format, not per frame
    assert copied[0][0] == 96 * 64 * 4 and copied[0][1] == bytes([200, 0, 0, 255])
    assert published == ["tex1", "tex1", "tex2", "stopped"]


@pytest.mark.parametrize("backend,platform,needle", [
    (SpoutBackend, "linux", "Spout is Windows-only"),
    (SyphonBackend, "win32", "Syphon is macOS-only"),
])
def test_the_wrong_platform_says_what_to_use(backend, platform, needle):
    with pytest.raises(BeatcanvasError, match=needle):
        backend(platform=platform)


def test_missing_libraries_say_what_to_install(monkeypatch):
    import sys

    from live.outputs.ndi import load_cyndilib

    for name in ("SpoutGL", "syphon", "syphon.utils.raw", "cyndilib"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(BeatcanvasError, match=r"pip install 'beatcanvas\[spout\]'"):
        SpoutBackend(platform="win32")
    with pytest.raises(BeatcanvasError, match=r"pip install 'beatcanvas\[syphon\]'"):
        SyphonBackend(platform="darwin")
    with pytest.raises(BeatcanvasError, match=r"pip install 'beatcanvas\[ndi\]'"):
        load_cyndilib()


# -- OSC out ------------------------------------------------------------------------------------


class Receiver:
    def __init__(self):
        self.messages = []
        d = Dispatcher()
        d.set_default_handler(lambda address, *args: self.messages.append((address, args)))
        self.server = BlockingOSCUDPServer(("127.0.0.1", 0), d)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def wait(self, n, timeout=30.0):  # returns as soon as n arrived; generous for a busy machine
        deadline = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.messages

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def features_over_two_beats():
    """60 display frames over one second at 120 BPM: phase wraps twice."""
    return [Features(t=i / 60, tempo_bpm=120.0, beat_phase=(i / 30) % 1.0, rms=0.2, low=1.5, mid=1.0, high=0.5)
            for i in range(1, 61)]


def test_osc_out_sends_a_bundle_per_frame_with_one_trigger_per_beat():
    rx = Receiver()
    try:
        out = OscBroadcast("127.0.0.1", rx.port)
        for f in features_over_two_beats():
            out.features(f)
            out.features(f)  # the same block seen twice: no second trigger
        cond = Conditioning(None, None, labels={"techno": 0.5, "dark": 0.3, "calm": 0.05, "jazz": 0.01},
                            prompt="dark techno, neon")
        out.hop(cond)
        msgs = rx.wait(120 * 13 + 2)
    finally:
        rx.close()
    by = {}
    for address, args in msgs:
        by.setdefault(address, []).append(args)
    assert len(by["/beatcanvas/out/bpm"]) == 120 and by["/beatcanvas/out/bpm"][0] == (120.0,)
    assert sum(a[0] for a in by["/beatcanvas/out/beat"]) == 2
    assert by["/beatcanvas/out/bands"][0] == pytest.approx((1.5, 1.0, 0.5))
    assert by["/beatcanvas/out/stems"][0] == (0.0, 0.0, 0.0, 0.0)  # no stems heard in these features
    assert by["/beatcanvas/out/labels"] == [("techno", 0.5, "dark", pytest.approx(0.3), "calm", pytest.approx(0.05))]
    assert by["/beatcanvas/out/prompt"] == [("dark techno, neon",)]


def test_osc_out_every_beat_sends_only_on_beats():
    rx = Receiver()
    try:
        out = OscBroadcast("127.0.0.1", rx.port, every="beat")
        for f in features_over_two_beats():
            out.features(f)
        msgs = rx.wait(2 * 12)
        time.sleep(0.1)
    finally:
        rx.close()
    assert [args for address, args in msgs if address == "/beatcanvas/out/beat"] == [(1,), (1,)]


def test_osc_out_to_nowhere_is_not_an_error_for_the_show():
    out = OscBroadcast("127.0.0.1", 9)  # discard port: nothing listens
    for f in features_over_two_beats()[:5]:
        out.features(f)
    assert out.sent + out.errors == 5


def test_osc_out_target_parsing():
    assert parse_target("9001") == ("127.0.0.1", 9001)
    assert parse_target("10.0.0.5:7000") == ("10.0.0.5", 7000)
    with pytest.raises(BeatcanvasError, match="HOST:PORT"):
        parse_target("lights")
