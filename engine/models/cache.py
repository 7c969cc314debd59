"""Where beatcanvas keeps regenerable files (demo track, descriptor-bank embeddings, TensorRT engines).

One place, so every stage agrees: $BEATCANVAS_CACHE, else $XDG_CACHE_HOME/beatcanvas, else
~/.cache/beatcanvas. Deleting it costs only the time to regenerate.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path


def cache_dir() -> Path:
    if os.environ.get("BEATCANVAS_CACHE"):
        return Path(os.environ["BEATCANVAS_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "beatcanvas"


def files_fingerprint(paths: Sequence[str | os.PathLike[str]]) -> str:
    """A key for checkpoint files (or folders of them): each file's resolved path, size and
    modification time — changed weights on disk change the key, and nothing is read or hashed."""
    h = hashlib.sha256()
    for path in sorted(Path(p).resolve() for p in paths):
        files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
        for f in files:
            st = f.stat()
            h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]
