"""The fault boundary: one rule, in one place, for everything a performer, a file or the machine can
throw at the show.

Every hand-off between the outside (keys, preset files and switches, audio blocks, model outputs) and
the loops goes through `Faults.guard(where)`: any exception becomes one logged line and a HUD error,
the loop keeps its last good state and goes on. Only quit ends the show. `Backoff` is how a loop
waits after a failure: not at all after one (a one-off glitch costs nothing), then doubling.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from engine.errors import one_line
from live.screen.hud import HudState

log = logging.getLogger(__name__)


# glibc gives a new thread a malloc arena of its own while others are busy (up to 8 per core) and keeps
# what each arena freed. Under the chaos harness's hangs (a hung render worker and its replacement
# alive at once) RSS grew 43 MB in a minute with the default, 8 MB with four arenas and 1 MB with two;
# the display held 57-61 fps with two. The loops' big arrays are few per frame: lock contention is
# not what limits them.
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)


def cap_malloc_arenas(n: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas at `n` for this process (threads started later share them); False
    where the C library is not glibc (macOS, Windows, musl), which keeps its own behaviour."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_ARENA_MAX, n))


def is_out_of_memory(e: BaseException) -> bool:
    """CUDA OOM in any of its spellings (torch.cuda.OutOfMemoryError, or a RuntimeError from an
    older path / another back-end that says so)."""
    try:
        import torch

        if isinstance(e, torch.cuda.OutOfMemoryError):
            return True
    except Exception:  # noqa: BLE001 - torch missing or odd build: fall back to the message
        pass
    return isinstance(e, (RuntimeError, MemoryError)) and "out of memory" in str(e).lower()


class Faults:
    """Counts faults by where they happened and shows the newest on the HUD."""

    def __init__(self, state: HudState) -> None:
        self.state = state
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def report(self, where: str, e: BaseException, level: int = logging.WARNING) -> None:
        with self._lock:
            self.counts[where] = self.counts.get(where, 0) + 1
        log.log(level, "%s: %s", where, one_line(e), exc_info=log.isEnabledFor(logging.DEBUG))
        self.state.set_error(f"{where}: {one_line(e)}")

    @contextmanager
    def guard(self, where: str) -> Iterator[None]:
        """Run the body; an exception (not KeyboardInterrupt/SystemExit) is reported and swallowed."""
        try:
            yield
        except Exception as e:  # noqa: BLE001 - this is the boundary: nothing passes it
            self.report(where, e)


class Backoff:
    """Delay before the next try: 0 after the first failure, then `first`, doubling up to `most`."""

    def __init__(self, first: float, most: float) -> None:
        self.first, self.most = first, most
        self.failures = 0

    def failed(self) -> float:
        self.failures += 1
        if self.failures == 1:
            return 0.0
        return min(self.most, self.first * 2 ** (self.failures - 2))

    def succeeded(self) -> None:
        self.failures = 0
