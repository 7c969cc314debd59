"""`beatcanvas analyze TRACK --sections`: a schedule skeleton, one key per detected section.

The fastest way to a directed video: analyse, fill in a style per section, export. The skeleton is a
valid schedule as written (its keys set nothing until you uncomment a line), lists the section starts
in `sections` so a boundary is fixed in one place, and cuts on the beat at each section.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from engine.directing.sections import Section
from engine.directing.timecode import format_time
from engine.errors import BeatcanvasError


def _level(section: Section, loudest: float) -> str:
    drop = loudest - section.loudness_db
    return "loud" if drop < 4 else "medium" if drop < 12 else "quiet"


def skeleton_toml(sections: Sequence[Section], track_name: str, schedule_name: str) -> str:
    loudest = max((s.loudness_db for s in sections), default=0.0)
    starts = ", ".join(f'"{format_time(s.start)}"' for s in sections)
    lines = [
        f"# Schedule for {track_name}, written by `beatcanvas analyze --sections`.",
        "# Give each section a look (uncomment and edit), then:",
        f"#   beatcanvas play {track_name} --schedule {schedule_name}",
        f"#   beatcanvas export {track_name} --schedule {schedule_name} --out frames/ --video out.mp4",
        "# Keys may also use at = \"m:ss.x\" or bar = N; interpolate = linear | ease | hold | cut; fade = \"2 bars\".",
        "",
        'interpolate = "cut"  # each section\'s look starts on the first beat of the section',
        f"sections = [{starts}]",
    ]
    for i, s in enumerate(sections, start=1):
        like = f", sounds like section {s.like}" if s.like else ""
        like += f", part {s.letter}" if s.letter else ""
        lines += [
            "",
            "[[key]]",
            f"# section {i}: {format_time(s.start)}–{format_time(s.end)}, {_level(s, loudest)} "
            f"({s.loudness_db:.0f} dBFS){like}",
            f"section = {i}",
            '# style = "describe the picture for this part"',
            "# reactivity.beat_zoom = 1.0",
        ]
    return "\n".join(lines) + "\n"


def write_skeleton(path: Path, text: str, force: bool = False) -> None:
    """Write atomically; never over an existing file (it may hold your edits) unless `force`."""
    path = Path(path)
    if path.exists() and not force:
        raise BeatcanvasError(f"{path} already exists (your edits?); pass --force to overwrite it "
                              "or --schedule-out to write another file")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        raise BeatcanvasError(f"cannot write {path}: {e.strerror}; pass --schedule-out FILE somewhere writable") from e
    finally:
        if tmp.exists():
            tmp.unlink()
