"""Writing files so that a crash, a kill or a full disk never leaves a half-written file under a real name.

One rule for every file beatcanvas writes (frames, manifests, videos, checkpoints, caches, presets):
write to `.NAME.PID.tmp` in the same folder, then `os.replace` it over NAME. A run killed in between
leaves only the temp file, which `remove_stale_temps` deletes on the next run (a temp file whose
process is still alive is left alone). `file_error` turns an OSError into the one-line message a
user can act on (a full disk first of all).
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.errors import BeatcanvasError

_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$")


def temp_path(path: Path) -> Path:
    """Where `path` is written before it is moved into place."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """`with atomic_write(p) as tmp: write(tmp)`: p appears whole or not at all; the temp file is
    removed if the body raises."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but is not ours
        return True
    return True


def remove_stale_temps(folder: str | Path, name: str | None = None) -> list[Path]:
    """Delete the temp files a killed run left in `folder` (only those for `name`, when given)."""
    removed: list[Path] = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        m = _TEMP.match(p.name)
        if m and (name is None or m["name"] == name) and not _alive(int(m["pid"])):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def file_error(e: OSError, path: str | Path, doing: str = "writing") -> BeatcanvasError:
    """One line that says what happened to which file and what to do about it."""
    where = Path(path)
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return BeatcanvasError(f"the disk is full while {doing} {where} — free some space (or pick another folder) and rerun")
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return BeatcanvasError(f"no permission for {doing} {where} — pick a folder you can write to")
    reason = e.strerror or type(e).__name__
    return BeatcanvasError(f"{doing} {where} failed: {reason} — check the path and the disk, then rerun")
