"""Hot-reload: watch the running preset's TOML file and hand over every good edit.

A thread runs watchfiles on the file's folder (editors often save by writing a new file and
renaming it over the old one, and a deleted file may come back). Each change is validated with
`load_preset`; a broken or deleted file is reported through `on_error` and the session keeps the
last good preset. The debounce is short so an edit applies well within a second.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import watchfiles

from engine.errors import BeatcanvasError

log = logging.getLogger(__name__)


def _load(path: Path) -> Any:
    from live.presets.library import load_preset  # the presets engineer's loader (validates)

    return load_preset(path)


class PresetWatcher:
    """Calls `on_change(preset)` for each valid edit of `path`, `on_error(message)` otherwise."""

    def __init__(
        self,
        path: str | Path,
        on_change: Callable[[Any], None],
        on_error: Callable[[str], None],
        debounce_ms: int = 100,
        loader: Callable[[Path], Any] = _load,
        what: str = "preset",  # what the file is, in messages ("schedule" for --schedule)
    ) -> None:
        self.path = Path(path).resolve()
        self.on_change = on_change
        self.on_error = on_error
        self.debounce_ms = debounce_ms
        self.loader = loader
        self.what = what
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_text: str | None = None
        self.ready = threading.Event()  # set once the watcher is actually watching

    def start(self) -> None:
        try:
            self._last_text = self.path.read_text(encoding="utf-8")
        except OSError:
            self._last_text = None
        self._thread = threading.Thread(target=self._run, name="preset-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 0.5) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        folder = self.path.parent
        try:
            for changes in watchfiles.watch(
                folder,
                watch_filter=lambda _change, p: Path(p).resolve() == self.path,
                debounce=self.debounce_ms,
                step=20,
                stop_event=self._stop,
                rust_timeout=200,
                yield_on_timeout=True,
                recursive=False,
                raise_interrupt=False,
            ):
                self.ready.set()
                if self._stop.is_set():
                    break
                if changes:
                    self.check()
        except Exception as e:  # the watcher must never take the show down
            log.warning("%s hot-reload stopped: %s", self.what, e)
            self.on_error(f"{self.what} hot-reload stopped: {e}")

    def check(self) -> None:
        """Reload now (the watcher calls this on every change)."""
        if not self.path.exists():
            msg = f"{self.what} file {self.path} was deleted; keeping the last good {self.what}"
            log.warning(msg)
            self.on_error(msg)
            self._last_text = None
            return
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as e:
            self.on_error(f"cannot read {self.what} file {self.path}: {e}; keeping the last good {self.what}")
            return
        if text == self._last_text:
            return  # touched, not changed
        self._last_text = text
        try:
            preset = self.loader(self.path)
        except BeatcanvasError as e:
            msg = f"{e} (keeping the last good {self.what})"
            log.warning("%s edit rejected: %s", self.what, msg)
            self.on_error(msg)
            return
        log.info("%s reloaded from %s", self.what, self.path)
        self.on_change(preset)
