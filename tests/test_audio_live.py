"""Ring buffer and sources (live/audio/ringbuffer.py, live/audio/sources.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from engine.errors import BeatcanvasError
from live.audio.ringbuffer import RingBuffer
from live.audio import sources
from live.audio.sources import FileSource, MicSource
from live_fakes import wait_for

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ ring buffer
def test_ring_latest_wraps_pads_and_timestamps() -> None:
    r = RingBuffer(seconds=1.0, sample_rate=10)
    r.write(np.arange(4, dtype=np.float32))
    w = r.latest()
    assert list(w.samples) == [0] * 6 + [0, 1, 2, 3] and w.t_end == pytest.approx(0.4)
    x = np.arange(4, 41, dtype=np.float32)
    for i in range(0, len(x), 3):  # odd block sizes cross the wrap point
        r.write(x[i : i + 3], t_end=7.5)
    assert list(r.latest().samples) == list(range(31, 41))
    assert list(r.latest(0.3).samples) == [38, 39, 40]
    assert r.latest().t_end == 7.5
    r.write(np.arange(100, 125, dtype=np.float32))  # bigger than the whole buffer
    r.write(np.arange(200, 203, dtype=np.float32))
    assert list(r.latest().samples) == list(range(118, 125)) + [200, 201, 202]
    with pytest.raises(ValueError):
        r.latest(2.0)


def test_ring_reader_never_sees_torn_windows_while_writer_runs() -> None:
    """Each block is a constant ramp value; any window must be a contiguous run of the stream."""
    import threading

    r = RingBuffer(seconds=0.1, sample_rate=48_000)
    stop = threading.Event()

    def writer() -> None:
        k = 0
        while not stop.is_set():
            r.write(np.full(480, k, dtype=np.float32))
            k += 1

    th = threading.Thread(target=writer)
    th.start()
    try:
        for _ in range(300):
            w = r.latest(0.05).samples
            vals = w[::480]
            if vals[0] > 0:
                assert np.all(np.diff(vals) == 1)
    finally:
        stop.set()
        th.join()


# ------------------------------------------------------------------ file source
def _track(tmp_path: Path, seconds: float = 1.0, sr: int = 44_100) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    path = tmp_path / "track.wav"
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr)
    return path


def test_audio_feed_is_deterministic_exact_to_the_sample_and_needs_no_device(tmp_path: Path, monkeypatch) -> None:
    """Export and analyze feed the ring from the file on the hop clock, with no sound card."""
    from engine.audio.io import iter_audio_blocks
    from live.audio.hopclock import AudioFeed, HopClock

    monkeypatch.setattr(sources, "import_sounddevice", lambda: pytest.fail("the audio feed touched PortAudio"))
    path = _track(tmp_path, 1.0)

    def feed_frames() -> tuple[list[float], AudioFeed]:
        feed = AudioFeed(iter_audio_blocks(path, 480))
        ends = []
        for i in range(1, 31):
            feed.feed_to(round(i / 30 * 48_000))
            ends.append(feed.ring.t_end)
        return ends, feed

    ends, feed = feed_frames()
    assert ends == pytest.approx([i / 30 for i in range(1, 31)]) and feed.fed == 48_000
    w = feed.ring.latest(1.0)
    assert np.abs(w.samples).max() > 0.25
    np.testing.assert_array_equal(feed_frames()[1].ring.latest(1.0).samples, w.samples)
    feed.feed_to(96_000)  # past the end: stops there, no crash
    assert feed.exhausted and feed.fed == 48_000
    hops = HopClock(0.5)
    assert list(hops.due(48_000)) == [0, 24_000, 48_000] and list(hops.due(48_000)) == []
    assert HopClock(0.5).newest_due(1.2) == 1.0  # live runs only the newest due hop


def _fake_clock(monkeypatch) -> list[float]:
    """sources' monotonic clock, moved only by the test (sleeps stay real): pace without timing."""
    now = [1000.0]
    monkeypatch.setattr(sources, "time", SimpleNamespace(monotonic=lambda: now[0], sleep=time.sleep))
    return now


def test_file_source_no_audio_out_runs_at_real_time_pace(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sources, "import_sounddevice", lambda: pytest.fail("--no-audio-out touched PortAudio"))
    now = _fake_clock(monkeypatch)
    src = FileSource(_track(tmp_path, 0.6), audio_out=False)
    src.start()
    try:
        assert src.clock() == 0.0
        now[0] += 0.3  # 0.3 s of wall clock: 0.3 s of the track, not more, not less
        assert src.clock() == pytest.approx(0.3) and not src.finished
        assert wait_for(lambda: src.ring.t_end >= 0.29), "the audio did not follow the clock into the ring"
        assert src.ring.t_end <= 0.3 + 0.02  # and not ahead of it (one block)
        now[0] += 5.0
        assert src.clock() == pytest.approx(0.6) and src.finished  # stops at the track's end
        assert wait_for(lambda: src.ring.t_end >= 0.6 - 1e-3)
    finally:
        src.stop()


def _noise_track(tmp_path: Path, n: int = 4_977) -> tuple[Path, np.ndarray]:
    """A short track of noise at 48 kHz (float, so decoding is exact), `n` samples long: n is a
    multiple of no block size, so the wrap falls inside a block."""
    x = np.random.default_rng(7).uniform(-0.5, 0.5, n).astype(np.float32)
    sf.write(tmp_path / "noise.wav", x, 48_000, subtype="FLOAT")
    return tmp_path / "noise.wav", x


def test_looping_file_source_is_seamless_and_its_clock_keeps_counting(tmp_path: Path, monkeypatch) -> None:
    """`studio`'s loop, silent (wall clock): across three wraps the ring holds the track again and
    again, sample for sample, and the clock never jumps back nor stops at the track's end."""
    path, x = _noise_track(tmp_path)
    now = _fake_clock(monkeypatch)
    src = FileSource(path, audio_out=False, loop=True)
    src.start()
    clocks = []
    try:
        for _ in range(7):  # 0.35 s of a 0.104 s track
            now[0] += 0.05
            clocks.append(src.clock())
            assert wait_for(lambda: src.ring.t_end >= clocks[-1] - 1e-9), "the audio did not follow the clock"
        assert not src.finished and src.loops >= 3
    finally:
        src.stop()
    assert np.all(np.diff(clocks) > 0) and clocks[-1] == pytest.approx(0.35)
    n = int(round(0.35 * 48_000))
    heard = src.ring.latest(0.3).samples
    np.testing.assert_array_equal(heard, np.tile(x, 4)[n - len(heard) : n])


def test_looping_file_source_through_a_sound_card_has_no_seam(tmp_path: Path, monkeypatch) -> None:
    """The same through a (fake) output device: the sample after the track's last is its first, the
    device never runs dry at the wrap, and the clock (the playback position) keeps increasing."""
    path, x = _noise_track(tmp_path)
    now = _fake_clock(monkeypatch)
    callbacks = []

    class Stream:
        latency = 0.0

        def __init__(self, **kw: object) -> None:
            callbacks.append(kw["callback"])

        def start(self) -> None:
            pass

        def stop(self) -> None:
            pass

        def close(self) -> None:
            pass

    fake = SimpleNamespace(OutputStream=Stream, PortAudioError=OSError, CallbackStop=StopIteration)
    monkeypatch.setattr(sources, "import_sounddevice", lambda: fake)
    monkeypatch.setattr(sources, "resolve_device", lambda d, k: None)
    src = FileSource(path, loop=True)
    src.start()
    played, clocks = [], []
    no_time = SimpleNamespace(outputBufferDacTime=0.0, currentTime=0.0)
    try:
        for _ in range(40):  # 40 callbacks of 480 samples: 19,200 samples, the track 3.9 times
            assert wait_for(lambda: src._fifo.qsize() >= 2), "the decoder stopped at the track's end"
            out = np.zeros((480, 1), np.float32)
            callbacks[0](out, 480, no_time, SimpleNamespace(output_underflow=False))
            played.append(out[:, 0].copy())
            now[0] += 0.010
            clocks.append(src.clock())
        assert not src.finished and src.error is None and src.stats.underflows == 0
    finally:
        src.stop()
    played_all = np.concatenate(played)
    np.testing.assert_array_equal(played_all, np.tile(x, 4)[: len(played_all)])
    assert played_all[len(x)] == x[0]  # the block after the last sample starts with the first one
    assert np.all(np.diff(clocks) > 0) and clocks[-1] > 3 * len(x) / 48_000


def test_file_source_without_any_output_device_plays_silently(tmp_path: Path, monkeypatch) -> None:
    def no_device(device, kind):
        raise BeatcanvasError("no audio output device found")

    monkeypatch.setattr(sources, "resolve_device", no_device)
    now = _fake_clock(monkeypatch)
    src = FileSource(_track(tmp_path, 0.6))
    src.start()
    try:
        assert src.mode == "realtime" and "no audio output device" in src.fallback_reason
        now[0] += 0.25
        assert src.clock() == pytest.approx(0.25)  # the wall clock drives the show
    finally:
        src.stop()


def test_file_source_named_output_device_that_fails_is_an_error(tmp_path: Path, monkeypatch) -> None:
    def no_device(device, kind):
        raise BeatcanvasError(f"no audio output device named {device!r}")

    monkeypatch.setattr(sources, "resolve_device", no_device)
    monkeypatch.setattr(sources, "import_sounddevice", lambda: SimpleNamespace())
    with pytest.raises(BeatcanvasError, match="speakers"):
        FileSource(_track(tmp_path, 0.6), device="speakers").start()


def test_file_source_rejects_bad_file_before_opening_devices(tmp_path: Path) -> None:
    (tmp_path / "x.mp3").write_bytes(b"")
    with pytest.raises(BeatcanvasError, match="empty"):
        FileSource(tmp_path / "x.mp3")


# ------------------------------------------------------------------ devices and errors
def test_missing_portaudio_says_how_to_install(monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(BeatcanvasError, match="sudo apt-get install libportaudio2"):
        MicSource().start()


class _FakeSD:
    """Just enough of sounddevice to reach the open call."""

    class PortAudioError(Exception):
        pass

    class CallbackStop(Exception):
        pass

    default = SimpleNamespace(device=(0, 1))

    def __init__(self, devices):
        self._devices = devices

    def query_devices(self, index=None, kind=None):
        if index is None and kind is None:
            return self._devices
        return self._devices[index if index is not None else 0]

    def query_hostapis(self):
        return [{"name": "FAKE"}]

    def InputStream(self, **kw):  # noqa: N802 - mirrors sounddevice
        raise self.PortAudioError("Device unavailable [PaErrorCode -9985]")


def _dev(i: int, name: str, ins: int, outs: int) -> dict:
    return {"index": i, "name": name, "hostapi": 0, "max_input_channels": ins,
            "max_output_channels": outs, "default_samplerate": 48_000.0}


def test_busy_device_and_unknown_name_give_one_line_errors(monkeypatch) -> None:
    fake = _FakeSD([_dev(0, "USB Mic", 1, 0), _dev(1, "Speakers", 0, 2)])
    monkeypatch.setattr(sources, "import_sounddevice", lambda: fake)
    with pytest.raises(BeatcanvasError, match="another program") as e:
        MicSource("usb").start()
    assert "\n" not in str(e.value)
    with pytest.raises(BeatcanvasError, match="no audio input device matches 'zoom'"):
        MicSource("zoom").start()
    with pytest.raises(BeatcanvasError, match="device 1 does not exist or has no inputs"):
        MicSource(1).start()
    assert sources.resolve_device("speak", "output") == 1
    monkeypatch.setattr(sources, "import_sounddevice", lambda: _FakeSD([_dev(0, "Speakers", 0, 2)]))
    with pytest.raises(BeatcanvasError, match="no audio input device found"):
        MicSource().start()


def test_mic_callback_copies_downmixes_and_counts_xruns() -> None:
    """The callback boundary, without a device: what PortAudio would call, as it would call it."""
    mic = MicSource(block_size=256)
    ok = SimpleNamespace(input_overflow=False, input_underflow=False)
    bad = SimpleNamespace(input_overflow=True, input_underflow=False)
    stereo = np.stack([np.full(256, 0.2, np.float32), np.full(256, 0.6, np.float32)], axis=1)
    mic._callback(stereo, 256, None, ok)
    mic._callback(stereo[:100], 100, None, bad)  # odd frame count, overflow flagged
    mic._callback(np.full((300, 1), -0.5, np.float32), 300, None, ok)
    assert mic.stats.callbacks == 3 and mic.stats.overflows == 1 and mic.stats.frames == 656
    w = mic.ring.latest(656 / 48_000)
    np.testing.assert_allclose(w.samples[:356], 0.4, atol=1e-6)
    np.testing.assert_allclose(w.samples[356:], -0.5)
    assert w.t_end == pytest.approx(656 / 48_000)
    assert mic.clock() >= w.t_end
    stereo[:] = 9.0  # the ring holds a copy, not a view of PortAudio's buffer
    assert mic.ring.latest(656 / 48_000).samples.max() < 1.0
    assert mic.error is None
    mic._on_finished()  # PortAudio ended the stream without us asking: the device went away
    assert "unplugged" in mic.error


_NULL_SCRIPT = textwrap.dedent(
    """
    import time
    from engine.errors import BeatcanvasError
    import sys
    from live.audio.sources import FileSource, MicSource
    try:
        mic = MicSource("nullpcm")
        mic.start()
    except BeatcanvasError as e:
        print("SKIP", e)
        raise SystemExit(0)
    time.sleep(0.2)
    mic.stop()
    w = mic.ring.latest(1.0)
    # The null sink swallows samples as fast as they come: the track "plays" in well under 2 s.
    out = FileSource(sys.argv[1], device="nullpcm")
    out.start()
    deadline = time.monotonic() + 30  # generous: a busy machine
    while not out.finished and time.monotonic() < deadline:
        time.sleep(0.02)
    out.stop()
    print("OK", mic.stats.callbacks, mic.stats.frames, w.t_end, int(out.finished), out.ring.written)
    """
)


def test_real_portaudio_input_stream_on_alsa_null(tmp_path: Path) -> None:
    """Open a real PortAudio InputStream on ALSA's null device (skips, saying why, where PortAudio or
    ALSA cannot open one; fails when the run itself breaks)."""
    if not sys.platform.startswith("linux") or not Path("/usr/share/alsa/alsa.conf").exists():
        pytest.skip("no ALSA here (/usr/share/alsa/alsa.conf is missing)")
    conf = tmp_path / "asound.conf"
    conf.write_text("pcm.nullpcm { type null }\n")
    env = dict(os.environ, ALSA_CONFIG_PATH=f"/usr/share/alsa/alsa.conf:{conf}", PYTHONPATH=str(REPO))
    track = _track(tmp_path, 0.5)
    proc = subprocess.run([sys.executable, "-c", _NULL_SCRIPT, str(track)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=30)
    out = proc.stdout.strip().splitlines()
    # Only "PortAudio cannot open ALSA's null device here" is a missing machine part; a crash is a bug.
    assert proc.returncode == 0 and out, f"the PortAudio run failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}"
    if out[-1].startswith("SKIP"):
        pytest.skip(f"no PortAudio null device here: {out[-1][5:]}")
    _, callbacks, frames, t_end, finished, played = out[-1].split()
    assert int(callbacks) > 0 and int(frames) > 0 and float(t_end) > 0
    assert finished == "1" and int(played) >= 23_000  # the output stream played the track and stopped
