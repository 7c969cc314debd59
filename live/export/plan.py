"""What an export will do, checked before anything is built: its settings, the span of frames, and
whether an existing output folder can be resumed with them."""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.audio.io import probe
from engine.errors import BeatcanvasError
from live.screen.compositor import Reactivity
from live.export.chunks import DEFAULT_CHUNK_S, RENDER_WARMUP_S, WARMUP_S
from live.export.files import FRAME_RE, MANIFEST, read_manifest
from live.audio.hopclock import HOP_S

FORMAT_VERSION = 3  # 2: pulses from the offline beat pass; 3: chunks with warm-ups (frames differ from 2)
MAX_FRAMES = 999_999  # frame_000001.png … frame_999999.png
MIN_SIDE, MAX_SIDE = 16, 8192


@dataclass(frozen=True)
class ExportSettings:
    """Everything that decides the pixels, plus where they go.

    `renderer` is the resolved renderer's name and `model_ids` the models behind it: both are part
    of the fingerprint, so resuming with other weights is refused.
    """

    track: Path
    out_dir: Path
    fps: float = 30.0
    width: int = 512
    height: int = 512
    start: float = 0.0
    end: float | None = None  # None: the end of the track
    render_every: int = 1
    seed: int = 0
    hop_s: float = HOP_S
    preset_name: str = "default"
    preset_hash: str = ""
    renderer: str = "procedural"
    profile: str = ""
    model_ids: dict[str, str] = field(default_factory=dict)
    reactivity: Reactivity | None = None  # the compositor's knobs; None = defaults
    crossfade_ms: float = 400.0
    max_flashes_per_s: float = 3.0  # preset.procedural.max_flashes_per_s
    chunk_s: float = DEFAULT_CHUNK_S  # export's chunks (live/export/chunks.py): part of what the frames are
    direction: str = ""  # ShowDirection.fingerprint() of --schedule/--lyrics (live/schedule/runtime.py)
    beats: str = "learned"  # the offline beat tracker (engine/audio/beatnet/choice.py): learned | dsp
    drops: bool = False  # prepare each build's drop look and cut to it on the drop's downbeat (engine/directing/drops.py)


@dataclass(frozen=True)
class ExportPlan:
    """The validated span: `n_frames` frames from `start`, and the track's facts."""

    n_frames: int
    start: float
    end: float
    track_duration: float
    track_id: str

    def frame_time(self, i: int, fps: float) -> float:
        return self.start + i / fps


# --- validation -------------------------------------------------------------------------------


def _track_id(path: Path, size: int) -> str:
    """Cheap identity of the audio: size plus hashes of its first and last MiB (a 3-hour file is
    not read whole; touching or copying it does not change the id)."""
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        if size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read(1 << 20))
    return h.hexdigest()[:32]


def plan_export(settings: ExportSettings) -> ExportPlan:
    """Check the arguments against the track; raise BeatcanvasError with the fix for anything off."""
    s = settings
    if not (isinstance(s.fps, (int, float)) and math.isfinite(s.fps) and s.fps > 0):
        raise BeatcanvasError(f"--fps must be a positive number of frames per second, not {s.fps} — try --fps 30")
    if s.fps > 240:
        raise BeatcanvasError(f"--fps {s.fps:g} is more than 240 — use at most 240 (video players do not go higher)")
    if not (MIN_SIDE <= s.width <= MAX_SIDE and MIN_SIDE <= s.height <= MAX_SIDE):
        raise BeatcanvasError(
            f"--size {s.width}x{s.height} is out of range: each side must be {MIN_SIDE}..{MAX_SIDE} pixels"
        )
    if not (s.chunk_s == 0 or (math.isfinite(s.chunk_s) and s.chunk_s >= 1)):
        raise BeatcanvasError(f"--chunk-seconds must be 0 (one chunk) or at least 1 second, not {s.chunk_s:g} — try 10")
    if s.render_every < 1:
        raise BeatcanvasError(f"--render-every must be 1 or more (1 = render every frame), not {s.render_every}")
    if not math.isfinite(s.start) or s.start < 0:
        raise BeatcanvasError(f"--start must be 0 or more seconds, not {s.start}")
    if s.hop_s <= 0:
        raise BeatcanvasError(f"the conditioning hop must be positive, not {s.hop_s}")
    info = probe(s.track)
    duration = info.duration
    end = duration if s.end is None else float(s.end)
    if s.end is not None and (not math.isfinite(end) or end <= s.start):
        raise BeatcanvasError(f"--end {s.end:g} s is not after --start {s.start:g} s — give an end later than the start")
    if s.start >= duration:
        raise BeatcanvasError(
            f"--start {s.start:g} s is at or past the end of {info.path.name} ({duration:.2f} s) — start earlier"
        )
    if end > duration + 1e-6:
        raise BeatcanvasError(
            f"--end {end:g} s is past the end of {info.path.name} ({duration:.2f} s) — leave --end out to export to the end"
        )
    n = int(math.floor((end - s.start) * s.fps + 1e-9))
    if n < 1:
        raise BeatcanvasError(
            f"{info.path.name} from {s.start:g} s to {end:g} s is shorter than one frame at {s.fps:g} fps "
            f"({1 / s.fps:.3f} s) — export a longer span or raise --fps"
        )
    if n > MAX_FRAMES:
        raise BeatcanvasError(
            f"{n} frames is more than the {MAX_FRAMES} an export can name — lower --fps or split it with --start/--end"
        )
    return ExportPlan(n, float(s.start), end, duration, _track_id(info.path, info.path.stat().st_size))


def fingerprint(settings: ExportSettings, plan: ExportPlan) -> dict[str, Any]:
    """What old frames depend on. `end` is not in it: a longer or shorter export of the same span
    keeps its frames."""
    s = settings
    return {
        "format": FORMAT_VERSION,
        "track": plan.track_id,
        "fps": float(s.fps),
        "size": f"{s.width}x{s.height}",
        "start": float(s.start),
        "render_every": int(s.render_every),
        "seed": int(s.seed),
        "hop_s": float(s.hop_s),
        "preset_hash": s.preset_hash,
        "renderer": s.renderer,
        "profile": s.profile,
        "model_ids": dict(sorted(s.model_ids.items())),
        "chunks": {"seconds": float(s.chunk_s), "warmup_s": WARMUP_S, "render_warmup_s": RENDER_WARMUP_S},
        **({"direction": s.direction} if s.direction else {}),
        **({"beats": s.beats} if s.beats != "dsp" else {}),  # the pulses sit on these beats
        **({"drops": True} if s.drops else {}),
    }


def check_writable(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe_file = out_dir / f".write-test-{os.getpid()}"
        probe_file.write_bytes(b"")
        probe_file.unlink()
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise BeatcanvasError(f"cannot write to the output folder {out_dir}: {reason} — pick another --out") from e
    if not out_dir.is_dir():
        raise BeatcanvasError(f"--out {out_dir} is a file, not a folder — pick a folder")


def check_resumable(settings: ExportSettings, plan: ExportPlan, force: bool = False, keys: tuple[str, ...] | None = None) -> None:
    """Refuse an output folder holding frames made with other settings (unless `force`).

    `keys` limits the comparison (the CLI checks the cheap settings before loading any model)."""
    out = Path(settings.out_dir)
    if force or not out.is_dir():
        return
    fp = fingerprint(settings, plan)
    old = read_manifest(out)
    if old is None:
        if any(FRAME_RE.match(p.name) for p in out.iterdir()):
            raise BeatcanvasError(
                f"{out} already holds frames but no {MANIFEST} — pass --force to overwrite them or pick another --out"
            )
        return
    before = old.get("fingerprint") or {}
    changed = [f"{k} {before.get(k)!r} → {fp[k]!r}" for k in (keys or fp) if before.get(k) != fp.get(k)]
    if changed or (keys is None and before != fp):
        raise BeatcanvasError(
            f"{out} holds an export made with other settings ({'; '.join(changed) or 'unknown format'}): "
            "rerun with the original settings to resume, pass --force to start over, or pick another --out"
        )
