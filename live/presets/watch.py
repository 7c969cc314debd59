"""Hot-reload: watch the running preset's TOML file (or a schedule or lyrics file) and hand over every good edit.

A thread runs watchfiles on the file's folder (editors often save by writing a new file and
renaming it over the old one, and a deleted file may come back). An edit is taken only once the file
has stopped changing (an editor that writes in pieces is not caught half-way), is not empty, and
validates; anything else is reported through `on_error` and the session keeps the last good preset.
Parsing happens here, never on the display thread. Nothing a file can contain stops the watching: a
failure of the watcher itself is reported and the watch starts again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import watchfiles

from live.presets.library import load_preset
from live.presets.schema import Preset
from engine.errors import one_line

log = logging.getLogger(__name__)

SETTLE_S = 0.12  # a file must read the same twice this far apart to count as saved
SETTLE_TRIES = 20  # ... within about this many tries (a file rewritten non-stop is read as it stands)
RESTART_S = 1.0  # pause before watching again after the watcher itself failed


class PresetWatcher:
    """Calls `on_change(preset)` for each valid edit of `path`, `on_error(message)` otherwise.

    `current`, when given, is the preset the show already runs from this file: if the file says
    something else by the time the watch starts (it was edited while another preset played), that
    edit is applied at once."""

    def __init__(
        self,
        path: str | Path,
        on_change: Callable[[Any], None],
        on_error: Callable[[str], None],
        debounce_ms: int = 100,
        loader: Callable[[Path], Any] = load_preset,
        current: Preset | None = None,
        what: str = "preset",  # what the file is, in messages ("schedule" for --schedule)
    ) -> None:
        self.path = Path(path).resolve()
        self.on_change = on_change
        self.on_error = on_error
        self.debounce_ms = debounce_ms
        self.loader = loader
        self.current = current
        self.what = what
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_text: str | None = None
        self.ready = threading.Event()  # set once the watcher is actually watching

    def start(self) -> None:
        try:
            self._last_text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            self._last_text = None
        self._thread = threading.Thread(target=self._run, name="preset-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 0.5) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        if self.current is not None:
            self._catch_up(self.current)
        while not self._stop.is_set():
            try:
                self._watch()
            except Exception as e:  # noqa: BLE001 - the watcher must never take the show down
                log.warning("%s hot-reload failed (%s); watching again", self.what, one_line(e))
                self.on_error(f"{self.what} hot-reload failed ({one_line(e)}); watching again")
                self._stop.wait(RESTART_S)

    def _watch(self) -> None:
        for changes in watchfiles.watch(
            self.path.parent,
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
                return
            if changes:
                self.check()

    def _catch_up(self, current: Preset) -> None:
        try:
            preset = self.loader(self.path)
        except Exception:  # noqa: BLE001 - a broken file is reported when it is edited
            return
        if preset != current:
            log.info("preset %s changed on disk since it was loaded; applying", preset.name)
            self.on_change(preset)

    def _settled_text(self) -> str:
        """The file's text once two reads SETTLE_S apart agree."""
        text = self.path.read_text(encoding="utf-8")
        for _ in range(SETTLE_TRIES):
            if self._stop.wait(SETTLE_S):
                break
            again = self.path.read_text(encoding="utf-8")
            if again == text:
                break
            text = again
        return text

    def check(self) -> None:
        """Reload now (the watcher calls this on every change)."""
        keep = f"keeping the last good {self.what}"
        if not self.path.exists():
            msg = f"{self.what} file {self.path} was deleted; {keep}"
            log.warning(msg)
            self.on_error(msg)
            self._last_text = None
            return
        try:
            text = self._settled_text()
        except (OSError, UnicodeDecodeError) as e:
            self.on_error(f"cannot read {self.what} file {self.path}: {one_line(e)}; {keep}")
            return
        if text == self._last_text:
            return  # touched, not changed
        self._last_text = text
        if not text.strip():
            self.on_error(f"{self.what} file {self.path} is empty (a save in progress?); {keep}")
            return
        try:
            preset = self.loader(self.path)
        except Exception as e:  # noqa: BLE001 - whatever the file holds, the show goes on
            msg = f"{one_line(e)} ({keep})"
            log.warning("%s edit rejected: %s", self.what, msg)
            self.on_error(msg)
            return
        log.info("%s reloaded from %s", self.what, self.path)
        self.on_change(preset)
