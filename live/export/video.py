"""PNG frames + the track's audio → an H.264 (yuv420p) MP4 with AAC audio, via PyAV.

It encodes from the PNGs on disk, not from memory, so a resumed export (or `--video` on a finished
one) produces the same file, and memory stays at one frame plus one audio chunk. The audio is the
same span as the frames — from `start` for exactly n_frames / fps seconds — read straight from the
original file (its channels, at 48 kHz), so the video and audio durations agree within one frame.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pygame
import soundfile as sf
import soxr

from engine.errors import BeatcanvasError
from engine.files import atomic_write, file_error, remove_stale_temps

log = logging.getLogger(__name__)

AUDIO_RATE = 48_000
AUDIO_BITRATE = 192_000
_AUDIO_CHUNK = 4_800  # source frames per read: a tenth of a second, interleaved with the video


def fps_fraction(fps: float) -> Fraction:
    """30 → 30/1, 29.97 → 2997/100: PyAV wants a rational rate."""
    return Fraction(fps).limit_denominator(10_000)


def _load_rgb(path: Path) -> np.ndarray:
    try:
        with open(path, "rb") as f:
            surf = pygame.image.load(f, "frame.png")
    except (pygame.error, OSError) as e:
        raise BeatcanvasError(f"cannot read frame {path} ({e}) — rerun the same export: it re-renders damaged frames") from e
    w, h = surf.get_size()
    return np.frombuffer(pygame.image.tobytes(surf, "RGB"), dtype=np.uint8).reshape(h, w, 3)


def _audio_chunks(track: Path, start: float, seconds: float) -> tuple[int, Iterator[np.ndarray]]:
    """(channels, iterator of (channels, n) float32 chunks at 48 kHz) for `seconds` from `start`."""
    f = sf.SoundFile(str(track))
    channels = min(f.channels, 2)
    sr = f.samplerate
    first = int(round(start * sr))
    total_out = int(round(seconds * AUDIO_RATE))

    def gen() -> Iterator[np.ndarray]:
        with f:
            f.seek(min(first, f.frames))
            rs = None if sr == AUDIO_RATE else soxr.ResampleStream(sr, AUDIO_RATE, channels, dtype="float32")
            emitted = 0
            remaining_in = int(round(seconds * sr)) + 1
            while emitted < total_out:
                data = f.read(min(_AUDIO_CHUNK, max(remaining_in, 0)), dtype="float32", always_2d=True)
                remaining_in -= len(data)
                last = len(data) == 0 or remaining_in <= 0
                if data.shape[1] > 2:  # surround → stereo by averaging
                    data = np.stack([data[:, 0::2].mean(1), data[:, 1::2].mean(1)], 1).astype(np.float32)
                if rs is not None:
                    data = rs.resample_chunk(np.ascontiguousarray(data), last=last)
                if last and len(data) + emitted < total_out:  # short by resampler rounding: pad
                    data = np.concatenate([data, np.zeros((total_out - emitted - len(data), channels), np.float32)])
                data = data[: total_out - emitted]
                if len(data):
                    emitted += len(data)
                    yield np.ascontiguousarray(data.T)
                if last:
                    break

    return channels, gen()


def encode_video(
    frames: list[Path] | Callable[[int], Path],
    n_frames: int,
    fps: float,
    out_path: str | Path,
    track: str | Path | None = None,
    start: float = 0.0,
    crf: int = 18,
    on_frame: Callable[[int], None] | None = None,
) -> Path:
    """Encode `n_frames` PNGs (a list, or index → path) at `fps` into `out_path`, muxing the audio of
    `track` from `start` for n_frames / fps seconds. Written to a temp file, then renamed."""
    out_path = Path(out_path)
    if out_path.suffix.lower() != ".mp4":
        raise BeatcanvasError(f"--video {out_path} must end in .mp4 (H.264 + AAC in an MP4 container)")
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BeatcanvasError(f"cannot create {out_path.parent}: {e.strerror} — pick another --video path") from e
    path_of = frames if callable(frames) else (lambda i: frames[i])
    first = _load_rgb(path_of(0))
    h, w = first.shape[:2]
    if w % 2 or h % 2:
        raise BeatcanvasError(f"H.264 (yuv420p) needs an even width and height, frames are {w}x{h} — export with an even --size")
    rate = fps_fraction(fps)
    seconds = n_frames / float(rate)
    remove_stale_temps(out_path.parent, out_path.name)  # left by a run killed mid-mux
    try:
        with atomic_write(out_path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
            vs = container.add_stream("libx264", rate=rate)
            vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
            vs.options = {"crf": str(crf), "preset": "medium"}
            astream = None
            chunks = None
            if track is not None:
                channels, chunks = _audio_chunks(Path(track), start, seconds)
                astream = container.add_stream("aac", rate=AUDIO_RATE)
                astream.layout = "stereo" if channels == 2 else "mono"
                astream.bit_rate = AUDIO_BITRATE
            audio_pts = 0

            def mux_audio_until(t_s: float) -> None:
                # Keep the audio a step ahead of the video so the muxer interleaves as it goes.
                nonlocal audio_pts
                while astream is not None and chunks is not None and audio_pts < t_s * AUDIO_RATE:
                    chunk = next(chunks, None)
                    if chunk is None:
                        return
                    af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=astream.layout.name)
                    af.sample_rate = AUDIO_RATE
                    af.pts = audio_pts
                    af.time_base = Fraction(1, AUDIO_RATE)
                    audio_pts += chunk.shape[1]
                    for packet in astream.encode(af):
                        container.mux(packet)

            for i in range(n_frames):
                img = first if i == 0 else _load_rgb(path_of(i))
                if img.shape[:2] != (h, w):
                    raise BeatcanvasError(
                        f"frame {i + 1} is {img.shape[1]}x{img.shape[0]}, not {w}x{h} — rerun the export with --force"
                    )
                mux_audio_until((i + 1) / float(rate))
                vf = av.VideoFrame.from_ndarray(img, format="rgb24")
                vf.pts = i
                vf.time_base = 1 / rate
                for packet in vs.encode(vf):
                    container.mux(packet)
                if on_frame is not None:
                    on_frame(i + 1)
            for packet in vs.encode():
                container.mux(packet)
            if astream is not None:
                mux_audio_until(float("inf"))
                for packet in astream.encode():
                    container.mux(packet)
    except OSError as e:  # a full disk, a folder gone: PyAV's errors are OSErrors with an errno
        raise file_error(e, out_path, "writing the video") from e
    return out_path
