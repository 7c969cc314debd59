"""The exporter's files: PNG frames, the per-frame log, the manifest, and checking what a killed or
damaged run left behind.

- `frame_000001.png` … written atomically (engine/files.py), so a kill never leaves a half-written
  frame under a real name;
- `frames.jsonl`: one JSON line per finished frame, appended and flushed after its PNG is in place; each
  line records the PNG's size and CRC-32, so a resume checks every frame on disk cheaply (no decode);
- `manifest.json`: the settings, their fingerprint and progress, rewritten atomically.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pygame

from engine.errors import BeatcanvasError
from engine.files import write_bytes

MANIFEST = "manifest.json"
FRAMES_LOG = "frames.jsonl"
FRAME_PATTERN = "frame_{:06d}.png"
FRAME_RE = re.compile(r"^frame_(\d{6})\.png$")


def frame_path(out_dir: Path, i: int) -> Path:
    """PNG of frame index i (0-based) — named from 1, as video tools expect."""
    return Path(out_dir) / FRAME_PATTERN.format(i + 1)


def encode_png(rgb: np.ndarray, level: int = 1) -> bytes:
    """HxWx3 uint8 → PNG bytes: the "Up" filter on every row and zlib level 1.

    Five times faster than pygame's encoder (libpng at its default level: 136 ms vs 24 ms for a
    1280x720 frame on the reference CPU) at 1.7x the size; export is bound by PNG encoding with
    the procedural renderer. Lossless and deterministic (stdlib zlib, no timestamps).
    """
    h, w, _ = rgb.shape
    rows = np.empty((h, w * 3 + 1), dtype=np.uint8)
    rows[:, 0] = 2  # filter type Up: each row minus the row above (the first row minus zeros)
    flat = rgb.reshape(h, w * 3)
    rows[0, 1:] = flat[0]
    np.subtract(flat[1:], flat[:-1], out=rows[1:, 1:])  # uint8 wraps, as PNG's mod-256 wants

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), level))
        + chunk(b"IEND", b"")
    )


@dataclass(frozen=True)
class Written:
    """What the log records about a frame's file, to check it on resume."""

    bytes: int
    crc: int


def png_of(surface: pygame.Surface) -> bytes:
    """A Surface as the PNG file an export writes."""
    w, h = surface.get_size()
    return encode_png(np.frombuffer(pygame.image.tobytes(surface, "RGB"), dtype=np.uint8).reshape(h, w, 3))


def write_png(surface: pygame.Surface | bytes, path: Path) -> Written:
    """Save a Surface (or its `png_of` bytes) as PNG atomically; returns its size and CRC-32 for the log."""
    data = surface if isinstance(surface, bytes) else png_of(surface)
    write_bytes(path, data)
    return Written(len(data), zlib.crc32(data))


def png_ok(path: Path, size: tuple[int, int]) -> bool:
    """True when `path` decodes as an image of `size` (a truncated frame does not)."""
    try:
        with open(path, "rb") as f:
            img = pygame.image.load(f, "frame.png")
    except (pygame.error, OSError, ValueError):
        return False
    return img.get_size() == size


def frame_intact(path: Path, rec: dict[str, Any], size: tuple[int, int]) -> bool:
    """The PNG on disk is the one the log line recorded: same size and CRC (decoded, for logs from
    before CRCs were recorded)."""
    if "crc" not in rec:
        return png_ok(path, size)
    try:
        if path.stat().st_size != rec.get("bytes"):
            return False
        return zlib.crc32(path.read_bytes()) == rec["crc"]
    except OSError:
        return False


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    write_bytes(out_dir / MANIFEST, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    p = Path(out_dir) / MANIFEST
    if not p.exists():
        return None
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise BeatcanvasError(f"{p} is unreadable ({e}) — delete the folder or rerun with --force to start over") from e
    if not isinstance(data, dict):
        raise BeatcanvasError(f"{p} is not an export manifest — delete the folder or rerun with --force to start over")
    return data


def iter_frame_log(out_dir: Path) -> Iterator[tuple[dict[str, Any], int]]:
    """(record, byte offset after its line) for each whole, parseable line of frames.jsonl, in order;
    stops at the first torn or unparseable line (a kill mid-write)."""
    p = Path(out_dir) / FRAMES_LOG
    if not p.exists():
        return
    with open(p, "rb") as f:
        offset = 0
        for line in f:
            if not line.endswith(b"\n"):
                return
            try:
                rec = json.loads(line)
            except ValueError:
                return
            if not isinstance(rec, dict):
                return
            offset += len(line)
            yield rec, offset


@dataclass(frozen=True)
class OnDisk:
    """What a previous run left: `logged` consecutive frames with log lines (`log_bytes` long), of
    which the ones in `bad` have a missing or damaged PNG and must be written again."""

    logged: int
    log_bytes: int
    bad: frozenset[int]

    @property
    def done(self) -> int:
        """Frames that need no work."""
        return self.logged - len(self.bad)


def scan(out_dir: Path, size: tuple[int, int], limit: int) -> OnDisk:
    """Check every logged frame (up to `limit`, the frames the export now wants) against its PNG."""
    k, log_bytes, bad = 0, 0, set()
    for rec, end in iter_frame_log(out_dir):
        if k >= limit or rec.get("i") != k:
            break
        if not frame_intact(frame_path(out_dir, k), rec, size):
            bad.add(k)
        k, log_bytes = k + 1, end
    return OnDisk(k, log_bytes, frozenset(bad))
