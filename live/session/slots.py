"""Latest-value-wins hand-off between the live loops.

A slow consumer never builds latency: a new `put` overwrites the old value, so whoever reads next
gets the newest one. Never a queue (DESIGN.md, "The flow of data").
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """One value plus a version counter that rises with every `put`.

    Readers remember the version they last saw and ask for anything newer, so each reader decides on
    its own whether it has seen a value, and many readers can share one slot.
    """

    def __init__(self, value: T | None = None) -> None:
        self._cond = threading.Condition()
        self._value: T | None = value
        self._version = 0 if value is None else 1
        self._closed = False

    @property
    def version(self) -> int:
        return self._version

    def put(self, value: T) -> int:
        """Replace the value (the old one is dropped) and wake waiters; returns the new version."""
        with self._cond:
            self._value = value
            self._version += 1
            self._cond.notify_all()
            return self._version

    def get(self) -> tuple[int, T | None]:
        """The newest (version, value); version 0 and None before the first put."""
        with self._cond:
            return self._version, self._value

    def get_newer(self, version: int) -> tuple[int, T] | None:
        """(version, value) if something newer than `version` was put, else None. Never blocks."""
        with self._cond:
            if self._version > version:
                return self._version, self._value  # type: ignore[return-value]
            return None

    def wait_newer(self, version: int, timeout: float | None = None) -> tuple[int, T] | None:
        """Block until a value newer than `version` arrives, `timeout` passes or the slot closes."""
        with self._cond:
            self._cond.wait_for(lambda: self._version > version or self._closed, timeout)
            if self._version > version:
                return self._version, self._value  # type: ignore[return-value]
            return None

    def close(self) -> None:
        """Wake every waiter for good (used on shutdown so workers end without waiting out a timeout)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
