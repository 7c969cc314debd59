"""Times and spans as people write them in schedules: `92.5`, `"1:32.5"`, `"1:02:03"`, `"2 bars"`.

A bad value raises `ValueError` whose message says what to write instead; the schedule parser adds
the file and line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_CLOCK = re.compile(r"^(?:(\d+):)?(?:(\d+):)?(\d+(?:\.\d*)?|\.\d+)$")
_SPAN = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|secs|seconds?|beats?|bars?)?$")
HOW = 'write seconds (92.5) or minutes:seconds ("1:32.5")'


def parse_time(value: object) -> float:
    """Seconds from a number or an "h:mm:ss.x" / "m:ss.x" / "s.x" string."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{value!r} is not a time; {HOW}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{value!r} is not a time of 0 or more seconds; {HOW}")
        return float(value)
    m = _CLOCK.match(value.strip())
    if not m:
        raise ValueError(f"{value!r} is not a time; {HOW}")
    a, b, sec = m.groups()
    hours, minutes = (int(a), int(b)) if b is not None else (0, int(a or 0))
    seconds = float(sec)
    if (a is not None and seconds >= 60) or (b is not None and minutes >= 60):
        raise ValueError(f"{value!r} has 60 or more seconds (or minutes) in a field; {HOW}")
    return hours * 3600.0 + minutes * 60.0 + seconds


def format_time(t: float) -> str:
    """Seconds → "m:ss.xx" (what the skeleton writes and errors show)."""
    t = max(0.0, float(t))
    minutes, seconds = divmod(round(t, 2), 60.0)
    return f"{int(minutes)}:{seconds:05.2f}"


@dataclass(frozen=True)
class Span:
    """A length in seconds, beats or bars (beats and bars need a beat grid to become seconds)."""

    amount: float
    unit: str  # "s" | "beats" | "bars"


def parse_span(value: object) -> Span:
    """A fade length: a number of seconds, "m:ss", "4 beats", "2 bars" or "1.5s"."""
    if isinstance(value, str) and not _CLOCK.match(value.strip()):
        m = _SPAN.match(value.strip().lower())
        if not m:
            raise ValueError(f"{value!r} is not a length; write seconds (4), \"8 beats\" or \"2 bars\"")
        unit = (m.group(2) or "s").rstrip("s") or "s"
        unit = {"sec": "s", "second": "s", "beat": "beats", "bar": "bars"}.get(unit, unit)
        return Span(float(m.group(1)), unit)
    try:
        return Span(parse_time(value), "s")
    except ValueError:
        raise ValueError(f"{value!r} is not a length; write seconds (4), \"8 beats\" or \"2 bars\"") from None
