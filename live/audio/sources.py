"""Audio sources: a track (FileSource) or a live input (MicSource, also used for loopback).

Every source has the same surface: `start()`, `stop()`, `clock() -> float` (seconds of audio
heard so far — the clock the picture follows), `.ring` (the RingBuffer the listeners read),
`.finished` and `.stats` (overflow/underflow counters, never fatal).

FileSource has two clocks:
- "device" (default): plays through the output device; the clock is the playback position, so
  picture and sound stay in sync whatever the device latency.
- "realtime" (`audio_out=False`, the CLI's `--no-audio-out`): silent, paced by the wall clock.
`loop=True` (the studio's default) plays the track over and over without a seam: the sample after
its last is its first again, and the clock, the ring's timestamps and so the beat tracker simply keep
counting up (they never see a jump back to 0); such a source never finishes. Without it, the end of
the track is `finished`, never an `error` (an error means the device went away).
Files are always streamed block by block, never loaded whole (a 3-hour mix is fine). Export and
analyze need no source: they feed the ring from the file on the hop clock (live/audio/hopclock.py).

sounddevice is imported lazily: export and analyze never need PortAudio, and when it is missing
the error says how to install it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from engine.audio.io import iter_audio_blocks, probe
from engine.errors import BeatcanvasError
from engine.types import SAMPLE_RATE, WINDOW_SECONDS
from live.audio.ringbuffer import RingBuffer

log = logging.getLogger(__name__)

PORTAUDIO_HINT = (
    "install PortAudio: `sudo apt-get install libportaudio2` (Debian/Ubuntu), "
    "`brew install portaudio` (macOS); export and analyze need no audio device"
)


def import_sounddevice() -> Any:
    """The sounddevice module, or a BeatcanvasError that says how to get PortAudio."""
    try:
        import sounddevice as sd
    except OSError as e:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise BeatcanvasError(f"the PortAudio library was not found ({e}) — {PORTAUDIO_HINT}") from e
    return sd


def list_devices() -> list[dict[str, Any]]:
    """All PortAudio devices as dicts (index, name, hostapi, channels, default rate, defaults)."""
    sd = import_sounddevice()
    try:
        devices = sd.query_devices()
        apis = sd.query_hostapis()
        default_in, default_out = sd.default.device
    except sd.PortAudioError as e:
        raise BeatcanvasError(f"cannot query audio devices: {e} — {PORTAUDIO_HINT}") from e
    out = []
    for d in devices:
        out.append(
            {
                "index": d["index"],
                "name": d["name"],
                "hostapi": apis[d["hostapi"]]["name"],
                "inputs": d["max_input_channels"],
                "outputs": d["max_output_channels"],
                "default_samplerate": d["default_samplerate"],
                "default_input": d["index"] == default_in,
                "default_output": d["index"] == default_out,
            }
        )
    return out


def resolve_device(spec: int | str | None, kind: str) -> int | None:
    """Device index for `spec` (None = system default, an index, or part of a name).

    `kind` is "input" or "output". Raises BeatcanvasError naming what exists when nothing fits.
    """
    key = "inputs" if kind == "input" else "outputs"
    devices = [d for d in list_devices() if d[key] > 0]
    if not devices:
        raise BeatcanvasError(
            f"no audio {kind} device found — connect one, or see docs/loopback.md"
            + ("; use --no-audio-out to play silently" if kind == "output" else "")
        )
    if spec is None or spec == "":
        return None  # PortAudio's default
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        index = int(spec)
        if any(d["index"] == index for d in devices):
            return index
        raise BeatcanvasError(f"audio {kind} device {index} does not exist or has no {kind}s — run `beatcanvas devices`")
    name = spec.lower()
    exact = [d for d in devices if d["name"].lower() == name]
    partial = [d for d in devices if name in d["name"].lower()]
    match = exact or partial
    if not match:
        names = ", ".join(f"{d['index']}: {d['name']}" for d in devices[:8])
        raise BeatcanvasError(f"no audio {kind} device matches {spec!r} (have {names}) — run `beatcanvas devices`")
    return int(match[0]["index"])


@dataclass
class SourceStats:
    """Counters a HUD can show; problems are counted, never fatal."""

    callbacks: int = 0
    frames: int = 0
    overflows: int = 0  # input arrived faster than we read it (samples lost)
    underflows: int = 0  # the device wanted samples we did not have (a click was heard)
    dropped_frames: int = 0


class AudioSource(Protocol):
    ring: RingBuffer
    stats: SourceStats
    # True for a live input (its stream stopping means the device went away); False for a track,
    # whose end is just the end of the track.
    live_input: bool
    # How far the sound the audience hears now is ahead of clock() (s): a live input's capture
    # latency; 0 for a track, whose clock already follows the speaker (see FileSource.clock).
    lead_s: float

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def clock(self) -> float: ...
    @property
    def finished(self) -> bool: ...


def _open_error(kind: str, device: Any, e: Exception) -> BeatcanvasError:
    what = f"device {device!r}" if device is not None else "the default device"
    detail = str(e).splitlines()[0] if str(e) else type(e).__name__
    return BeatcanvasError(
        f"cannot open audio {kind} on {what}: {detail} — is another program using it? "
        "pick another with --device (see `beatcanvas devices`)"
    )


class FileSource:
    """A track as a source. See the module docstring for the three clocks."""

    def __init__(
        self,
        path: str | Path,
        *,
        audio_out: bool = True,
        device: int | str | None = None,
        block_size: int = 480,
        sample_rate: int = SAMPLE_RATE,
        ring_seconds: float = WINDOW_SECONDS,
        loop: bool = False,
    ) -> None:
        self.path = Path(path)
        self.loop = loop
        self.live_input = False
        self.loops = 0  # times the track wrapped back to its start (decoding, ahead of what is heard)
        self.info = probe(self.path)  # bad files fail here, before any device opens
        self.duration = self.info.duration
        self.mode = "device" if audio_out else "realtime"
        self.device = device
        self.fallback_reason: str | None = None  # set when no output device could be opened
        self.block_size = block_size
        self.sample_rate = sample_rate
        self.ring = RingBuffer(ring_seconds, sample_rate)
        self.stats = SourceStats()
        self._blocks = iter_audio_blocks(self.path, block_size, sample_rate)
        self._pending = np.zeros(0, dtype=np.float32)
        self._eof = False
        self._pos = 0  # samples delivered to the ring
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._t0 = 0.0
        self._stream: Any = None
        self._sd: Any = None
        self._fifo: queue.Queue[np.ndarray] = queue.Queue(maxsize=64)
        self._cb_state = (0, 0.0, 0.0)  # (frames before the last callback, its monotonic time, DAC delay)
        self._out_frames = 0
        self._out_left = np.zeros(0, dtype=np.float32)
        self._done = False
        self.error: str | None = None  # set when playback stops before the track ends
        self.lead_s = 0.0  # clock() is the position being heard: it already counts the output latency
        self.output_latency = 0.0  # the output stream's reported latency (s), when the DAC time is not

    # -------------------------------------------------------------- decoding
    def _take(self, n: int) -> np.ndarray:
        """The next n samples of the track (zeros past its end; with `loop`, its start again)."""
        parts, have = [], 0
        if len(self._pending):
            parts.append(self._pending)
            have = len(self._pending)
        restarted = False
        while have < n and not self._eof:
            try:
                b = next(self._blocks)
            except StopIteration:
                if not self.loop or restarted:  # a restart that decoded nothing: stop, don't spin
                    self._eof = True
                    break
                self._blocks = iter_audio_blocks(self.path, self.block_size, self.sample_rate)
                self.loops += 1
                restarted = True
                continue
            restarted = False
            parts.append(b)
            have += len(b)
        data = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        out, self._pending = data[:n], data[n:]
        if len(out) < n:
            out = np.concatenate([out, np.zeros(n - len(out), dtype=np.float32)])
        return out

    def _advance_to(self, t: float) -> None:
        """Realtime clock: deliver the track up to time `t` into the ring."""
        target = max(int(round(t * self.sample_rate)), self._pos)
        new = self._take(target - self._pos)
        self._pos = target
        if len(new):
            self.ring.write(new, t_end=self._pos / self.sample_rate)
            self.stats.frames += len(new)

    # -------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._stop.clear()
        self._t0 = time.monotonic()
        if self.mode == "realtime":
            self._thread = threading.Thread(target=self._pace, name="beatcanvas-file-pace", daemon=True)
            self._thread.start()
            return
        try:
            self._start_output()
        except BeatcanvasError as e:
            if self.device is not None:  # the user asked for this device: say so, don't hide it
                raise
            # No sound card (a headless box, a VM): the show goes on, silent, on the wall clock.
            self.stop()
            self._stop.clear()
            log.warning("%s — playing silently instead", e)
            self.fallback_reason = str(e)
            self.mode = "realtime"
            self.start()

    def _start_output(self) -> None:
        sd = self._sd = import_sounddevice()
        index = resolve_device(self.device, "output")
        self._thread = threading.Thread(target=self._decode_ahead, name="beatcanvas-file-decode", daemon=True)
        self._thread.start()
        try:
            self._stream = sd.OutputStream(
                samplerate=self.sample_rate, channels=1, dtype="float32", device=index,
                callback=self._out_callback, finished_callback=self._on_finished, latency="low",
            )
            self._stream.start()
            self.output_latency = float(self._stream.latency or 0.0)
        except (sd.PortAudioError, ValueError) as e:
            self._stop.set()
            raise _open_error("output", self.device, e) from e

    def stop(self) -> None:
        self._stop.set()
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            except Exception as e:  # a vanished device must not turn stop into a crash
                log.warning("closing output stream: %s", e)
            self._stream = None
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
            self._thread = None

    def clock(self) -> float:
        end = float("inf") if self.loop else self.duration
        if self.mode == "realtime":
            return min(time.monotonic() - self._t0, end) if self._t0 else 0.0
        frames_before, mono, dac_delay = self._cb_state
        if mono == 0.0:
            return 0.0
        t = frames_before / self.sample_rate + (time.monotonic() - mono) - dac_delay
        return float(min(max(t, 0.0), self._out_frames / self.sample_rate, end))

    @property
    def finished(self) -> bool:
        if self.mode == "device":
            return self._done
        return not self.loop and self.clock() >= self.duration

    # -------------------------------------------------------------- realtime pacing
    def _pace(self) -> None:
        step = self.block_size / self.sample_rate
        while not self._stop.is_set():
            now = self.clock()
            self._advance_to(now)
            if now >= self.duration and not self.loop:
                break
            self._stop.wait(step)

    # -------------------------------------------------------------- device playback
    def _decode_ahead(self) -> None:
        chunk = 2048
        while not self._stop.is_set():
            if self._eof and not len(self._pending):
                break
            block = self._take(chunk)
            if self._eof and not len(self._pending):
                tail = max(0, int(round(self.duration * self.sample_rate)) - self._pos)
                block = block[: min(chunk, tail)] if tail < chunk else block
            self._pos += len(block)
            while not self._stop.is_set():
                try:
                    self._fifo.put(block, timeout=0.1)
                    break
                except queue.Full:
                    continue
        if not self._stop.is_set():
            self._fifo.put(np.zeros(0, dtype=np.float32))  # end-of-track marker

    def _out_callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        self.stats.callbacks += 1
        if status.output_underflow:
            self.stats.underflows += 1
        filled = 0
        end = False
        while filled < frames:
            if not len(self._out_left):
                try:
                    self._out_left = self._fifo.get_nowait()
                except queue.Empty:
                    break
                if not len(self._out_left):
                    end = True
                    break
            n = min(frames - filled, len(self._out_left))
            outdata[filled : filled + n, 0] = self._out_left[:n]
            self._out_left = self._out_left[n:]
            filled += n
        if filled < frames:
            outdata[filled:, 0] = 0.0
            if not end:
                self.stats.underflows += 1
        try:
            dac_delay = max(0.0, float(time_info.outputBufferDacTime - time_info.currentTime))
        except (AttributeError, TypeError):
            dac_delay = 0.0
        if dac_delay <= 0.0:  # some host APIs leave the DAC time at 0: use the stream's reported latency
            dac_delay = self.output_latency
        self._cb_state = (self._out_frames, time.monotonic(), dac_delay)
        self._out_frames += filled
        self.stats.frames += filled
        if filled:
            self.ring.write(outdata[:filled, 0], t_end=self._out_frames / self.sample_rate)
        if end:
            raise self._sd.CallbackStop

    def _on_finished(self) -> None:
        self._done = True
        if not self._stop.is_set() and self._out_frames < self._pos:
            self.error = "audio output stopped before the track ended — device unplugged? (try --no-audio-out)"


class MicSource:
    """A live input (microphone, line in, or a loopback/monitor device) into the ring buffer.

    The PortAudio callback only copies (downmixing into a preallocated scratch array) and counts
    overflow/underflow flags; everything else reads the ring from other threads.
    """

    def __init__(
        self,
        device: int | str | None = None,
        *,
        sample_rate: int = SAMPLE_RATE,
        channels: int | None = None,
        block_size: int = 480,
        ring_seconds: float = WINDOW_SECONDS,
    ) -> None:
        self.device = device
        self.sample_rate = sample_rate
        self.channels = channels
        self.block_size = block_size
        self.ring = RingBuffer(ring_seconds, sample_rate)
        self.stats = SourceStats()
        self._scratch = np.zeros(max(block_size, 8192), dtype=np.float32)
        self._frames = 0
        self._cb_mono = 0.0
        self._stream: Any = None
        self._stopped = False
        self.error: str | None = None  # set when the stream stops by itself (device unplugged)
        self.lead_s = 0.0  # the input's reported latency, once open: the room is this far ahead of clock()
        self.live_input = True

    def start(self) -> None:
        sd = import_sounddevice()
        index = resolve_device(self.device, "input")
        info = sd.query_devices(index, "input") if index is not None else sd.query_devices(kind="input")
        channels = self.channels or max(1, min(2, int(info["max_input_channels"])))
        try:
            self._stream = sd.InputStream(
                samplerate=self.sample_rate, channels=channels, dtype="float32", device=index,
                blocksize=self.block_size, callback=self._callback, latency="low",
                finished_callback=self._on_finished,
            )
            self._stream.start()
            self.lead_s = float(self._stream.latency or 0.0)
        except (sd.PortAudioError, ValueError) as e:
            self._stream = None
            raise _open_error("input", self.device, e) from e
        self._stopped = False
        self.error = None

    def _on_finished(self) -> None:
        if not self._stopped:
            self.error = f"the audio input {self.device or '(default)'} stopped — device unplugged or taken by another program?"

    def stop(self) -> None:
        self._stopped = True
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            except Exception as e:
                log.warning("closing input stream: %s", e)
            self._stream = None

    def clock(self) -> float:
        t = self._frames / self.sample_rate
        if self._cb_mono:
            t += min(time.monotonic() - self._cb_mono, self.block_size / self.sample_rate)
        return t

    @property
    def finished(self) -> bool:
        """True once stopped, or when the device went away (the stream stopped by itself)."""
        return self._stopped or (self._stream is not None and not self._stream.active)

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        # Runs on PortAudio's thread: copy and count, nothing else.
        st = self.stats
        st.callbacks += 1
        if status.input_overflow:
            st.overflows += 1
        if status.input_underflow:
            st.underflows += 1
        if indata.shape[1] == 1:
            mono = indata[:, 0]
        elif frames <= len(self._scratch):
            mono = self._scratch[:frames]
            np.mean(indata, axis=1, out=mono)
        else:
            mono = indata.mean(axis=1)
        self._frames += frames
        st.frames += frames
        self.ring.write(mono, t_end=self._frames / self.sample_rate)
        self._cb_mono = time.monotonic()
