"""Where beatcanvas keeps regenerable files (demo track, descriptor-bank embeddings, TensorRT engines).

One place, so every stage agrees: $BEATCANVAS_CACHE, else $XDG_CACHE_HOME/beatcanvas, else
~/.cache/beatcanvas. Deleting it costs only the time to regenerate.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    if os.environ.get("BEATCANVAS_CACHE"):
        return Path(os.environ["BEATCANVAS_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "beatcanvas"
