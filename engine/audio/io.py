"""Decode any file libsndfile reads, downmix to mono, resample to 48 kHz, cut windows.

Everything downstream (CLAP, features, the ring buffer) works on float32 mono at 48 kHz, so the
conversion happens once, here. Resampling uses soxr (a proper anti-aliasing resampler); a naive
linear resampler would fold everything above the source Nyquist back into the band CLAP hears.

`iter_audio_blocks` streams: a 3-hour file is decoded and resampled a chunk at a time, so memory
stays at a few hundred kilobytes whatever the length. `load_audio` is for short material only
(tests, windows of a few minutes) and refuses files that would not fit comfortably in memory.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from engine.errors import BeatcanvasError
from engine.types import SAMPLE_RATE, WINDOW_SECONDS, Window

log = logging.getLogger(__name__)

# Decoding chunk for streaming, in source frames: big enough to amortise Python overhead, small
# enough that memory stays flat (65536 frames × 8 channels × 4 B = 2 MiB worst case).
_CHUNK_FRAMES = 65_536
# load_audio refuses anything longer: a 30-minute mono track at 48 kHz is already 345 MB.
MAX_LOAD_SECONDS = 30 * 60
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 768_000


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, before any conversion."""

    path: Path
    sample_rate: int
    channels: int
    frames: int
    format: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def _check_path(path: str | Path) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise BeatcanvasError(f"audio file not found: {p} — check the path")
    if p.is_dir():
        raise BeatcanvasError(f"{p} is a directory, not an audio file — pass a file such as track.wav")
    if p.stat().st_size == 0:
        raise BeatcanvasError(f"audio file is empty (0 bytes): {p} — re-export or re-download it")
    return p


# How the formats libsndfile reads begin (MP3: an ID3 tag or an MPEG frame sync, checked apart).
_AUDIO_MAGIC = (b"RIFF", b"RF64", b"BW64", b"riff", b"fLaC", b"OggS", b"FORM", b"caff", b".snd", b"ID3")


def _looks_like_audio(p: Path) -> bool:
    with p.open("rb") as f:
        head = f.read(4)
    return head.startswith(_AUDIO_MAGIC) or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Hush what C libraries print straight to file descriptor 2 (mpg123's "Note: Trying to resync…"
    on a file that is not MP3): the one-line error says what went wrong."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (captured, or none): nothing to hush
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _open(path: str | Path) -> tuple[Path, sf.SoundFile]:
    p = _check_path(path)
    try:
        with _quiet_native_stderr():
            f = sf.SoundFile(str(p))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        if not _looks_like_audio(p):
            raise BeatcanvasError(
                f"{p.name} is not an audio file (its contents are not wav, flac, ogg, mp3 or aiff, whatever its "
                "name says) — pass the track itself"
            ) from e
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "does not exist" in detail:  # libsndfile's words for any file it cannot parse; this one exists
            detail = "the file is corrupt or in an encoding libsndfile cannot read"
        raise BeatcanvasError(
            f"cannot decode {p.name}: {detail} — supported: wav, flac, ogg, mp3, aiff "
            f"(convert others with `ffmpeg -i {p.name} track.wav`)"
        ) from e
    if f.channels < 1:
        f.close()
        raise BeatcanvasError(f"{p.name} has no audio channels — re-export it with at least one channel")
    if not MIN_SAMPLE_RATE <= f.samplerate <= MAX_SAMPLE_RATE:
        f.close()
        raise BeatcanvasError(
            f"{p.name} has an unusable sample rate of {f.samplerate} Hz — re-export it at 44.1 or 48 kHz"
        )
    return p, f


def probe(path: str | Path) -> AudioInfo:
    """Sample rate, channels and length of a file without decoding it (raises BeatcanvasError)."""
    p, f = _open(path)
    with f:
        frames = f.frames if f.frames and f.frames > 0 else 0
        return AudioInfo(p, int(f.samplerate), int(f.channels), int(frames), str(f.format))


def to_mono(data: np.ndarray) -> np.ndarray:
    """Average channels; (frames, channels) or (frames,) → float32 (frames,). NaN/inf become 0."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        if data.shape[1] == 0:
            raise BeatcanvasError("audio has 0 channels — nothing to listen to")
        data = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    elif data.ndim != 1:
        raise BeatcanvasError(f"audio must be (frames,) or (frames, channels), got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        # A corrupt float file or a bad plug-in: silence the bad samples rather than let NaN poison
        # every feature and embedding downstream.
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    return np.ascontiguousarray(data, dtype=np.float32)


def resample(samples: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Anti-aliased resampling of a mono float32 signal (soxr, high quality)."""
    if from_rate == to_rate or len(samples) == 0:
        return np.asarray(samples, dtype=np.float32)
    return soxr.resample(samples, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)


def iter_audio_blocks(
    path: str | Path, block_size: int, sample_rate: int = SAMPLE_RATE, start_s: float = 0.0
) -> Iterator[np.ndarray]:
    """Yield float32 mono blocks of exactly `block_size` samples at `sample_rate`, streaming, from
    `start_s` seconds into the file (a seek: a chunk of a long export does not decode what is before it).

    The last block is shorter if the track does not divide evenly (never empty). Raises
    BeatcanvasError for files that cannot be opened or that break off mid-way (truncated/corrupt).
    """
    if block_size <= 0:
        raise ValueError("block_size must be positive")
    p, f = _open(path)
    with f:
        if start_s > 0:
            f.seek(min(int(round(start_s * f.samplerate)), max(0, f.frames)))
        rs = None if f.samplerate == sample_rate else soxr.ResampleStream(
            f.samplerate, sample_rate, 1, dtype="float32", quality="HQ"
        )
        pending = np.zeros(0, dtype=np.float32)
        while True:
            try:
                chunk = f.read(_CHUNK_FRAMES, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as e:
                raise BeatcanvasError(f"{p.name} is corrupt or truncated ({e}) — re-export it") from e
            last = len(chunk) < _CHUNK_FRAMES
            mono = to_mono(chunk)
            if rs is not None:
                mono = rs.resample_chunk(mono, last=last)
            pending = np.concatenate([pending, mono]) if len(pending) else mono
            n_full = len(pending) // block_size
            for i in range(n_full):
                yield pending[i * block_size : (i + 1) * block_size].copy()
            pending = pending[n_full * block_size :]
            if last:
                break
        if len(pending):
            yield pending.copy()


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode a whole (short) file to float32 mono at `sample_rate`.

    For long material use `iter_audio_blocks`: this refuses tracks over MAX_LOAD_SECONDS rather
    than exhaust memory.
    """
    info = probe(path)
    if info.duration > MAX_LOAD_SECONDS:
        raise BeatcanvasError(
            f"{info.path.name} is {info.duration / 60:.0f} min long — too long to load whole; "
            "stream it with iter_audio_blocks (analyze/export/play already do)"
        )
    blocks = list(iter_audio_blocks(path, _CHUNK_FRAMES, sample_rate))
    if not blocks:
        raise BeatcanvasError(f"{info.path.name} contains no audio frames — re-export it")
    return np.concatenate(blocks)


def window_at(
    samples: np.ndarray,
    t_end: float,
    seconds: float = WINDOW_SECONDS,
    sample_rate: int = SAMPLE_RATE,
) -> Window:
    """The `seconds` of audio ending at time `t_end` (s from the start of `samples`).

    Zero-padded at the start of a track (and past its end), so a window is always exactly
    round(seconds * sample_rate) samples: CLAP sees 10 s even 2 s into a song.
    """
    n = int(round(seconds * sample_rate))
    end = int(round(t_end * sample_rate))
    start = end - n
    out = np.zeros(n, dtype=np.float32)
    lo, hi = max(start, 0), min(end, len(samples))
    if hi > lo:
        out[lo - start : hi - start] = samples[lo:hi]
    return Window(samples=out, t_end=float(t_end), sample_rate=sample_rate)
