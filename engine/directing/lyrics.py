"""Timed lyrics from an .lrc file: which line is being sung at time t.

The format, as players read it:

    [ti:Night Drive]            metadata tags (ti, ar, al, by, length, ...) are kept as `meta`
    [offset:+250]               milliseconds; positive shows every line earlier
    [00:12.50]Neon on the river          one timestamp, then the line
    [00:45.00][01:30.10]Chorus line      one line sung at several times
    [00:20.00]<00:20.00>Burning <00:20.60>city   enhanced LRC: a time for each word
    [00:24.00]                           an empty line ends the one before it

A line lasts until the next line begins (at most `MAX_LINE_S`, so a long instrumental after the last
word does not keep it up). A line that is not of this form is reported with its number in
`Lyrics.problems` and skipped; the rest still play.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import BeatcanvasError

MAX_LINE_S = 10.0
_STAMP = r"(\d{1,3}):(\d{1,2}(?:[.:]\d{1,3})?)"
_TAG = re.compile(r"\[([^\[\]]*)\]")
_TIME = re.compile(rf"^{_STAMP}$")
_META = re.compile(r"^([A-Za-z#][A-Za-z]*)\s*:(.*)$")
_WORD = re.compile(rf"<{_STAMP}>")


@dataclass(frozen=True)
class Word:
    t: float
    text: str


@dataclass(frozen=True)
class LyricLine:
    start: float
    end: float
    text: str
    line: int  # line number in the file
    words: tuple[Word, ...] = ()  # enhanced LRC word timings, when the file has them

    def sung(self, t: float) -> str:
        """The words sung by `t` (the whole line when there are no word timings)."""
        if not self.words:
            return self.text
        return " ".join(w.text for w in self.words if w.t <= t + 1e-9)


@dataclass(frozen=True)
class Lyrics:
    lines: tuple[LyricLine, ...]
    meta: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()  # "line 7: ... skipped" for each malformed line
    source: str = "<lyrics>"

    def at(self, t: float) -> LyricLine | None:
        """The line being sung at `t`, or None between lines."""
        i = bisect.bisect_right([ln.start for ln in self.lines], t) - 1
        if i >= 0 and t < self.lines[i].end:
            return self.lines[i]
        return None


def _seconds(minutes: str, seconds: str) -> float:
    sec = seconds.replace(":", ".")  # some tools write mm:ss:xx
    value = float(sec)
    if value >= 60:
        raise ValueError(f"{seconds} seconds is 60 or more")
    return int(minutes) * 60 + value


def _parse_words(body: str) -> tuple[str, tuple[Word, ...]]:
    """Text without word stamps, and the words with their times (empty when there are none)."""
    parts = _WORD.split(body)
    if len(parts) == 1:
        return body.strip(), ()
    words: list[Word] = []
    lead = parts[0].strip()
    for i in range(1, len(parts), 3):
        t = _seconds(parts[i], parts[i + 1])
        text = parts[i + 2].strip()
        if text:
            words.append(Word(t, text))
    text = " ".join(([lead] if lead else []) + [w.text for w in words])
    return text, tuple(words)


def _parse_line(raw: str) -> tuple[list[float], str, tuple[Word, ...], tuple[str, str] | None]:
    """(times, text, words, meta) of one line; ValueError says what is wrong with it."""
    rest, times = raw.strip(), []
    while rest.startswith("["):
        m = _TAG.match(rest)
        if not m:
            raise ValueError("a '[' without its ']'")
        tag = m.group(1).strip()
        stamp, meta = _TIME.match(tag), _META.match(tag)
        if stamp:
            times.append(_seconds(*stamp.groups()))
        elif meta and not times:
            return [], "", (), (meta.group(1).lower(), meta.group(2).strip())
        else:
            raise ValueError(f"[{tag}] is not a time [mm:ss.xx]")
        rest = rest[m.end():]
    if not times:
        raise ValueError("no [mm:ss.xx] time at the start")
    text, words = _parse_words(rest)
    return times, text, words, None


def parse_lrc(text: str, source: str = "<lyrics>") -> Lyrics:
    stamped: list[tuple[float, int, str, tuple[Word, ...]]] = []
    meta: dict[str, str] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            times, body, words, tag = _parse_line(raw)
        except ValueError as e:
            shown = raw.strip() if len(raw.strip()) <= 40 else raw.strip()[:37] + "..."
            problems.append(f"{source}, line {number}: {shown!r}: {e}; write [mm:ss.xx] text — skipped")
            continue
        if tag is not None:
            meta[tag[0]] = tag[1]
            continue
        for t in times:
            stamped.append((t, number, body, words if t == times[0] else ()))
    offset = _offset_s(meta.get("offset", ""), source, problems)
    stamped.sort(key=lambda s: (s[0], s[1]))
    lines: list[LyricLine] = []
    for i, (t, number, body, words) in enumerate(stamped):
        if not body:
            continue  # an empty stamp only ends the previous line
        start = max(0.0, t - offset)
        nxt = stamped[i + 1][0] - offset if i + 1 < len(stamped) else start + MAX_LINE_S
        end = min(max(nxt, start + 1e-3), start + MAX_LINE_S)
        words = tuple(Word(max(0.0, w.t - offset), w.text) for w in words)
        lines.append(LyricLine(start, end, body, number, words))
    return Lyrics(tuple(lines), meta, tuple(problems), source)


def _offset_s(value: str, source: str, problems: list[str]) -> float:
    if not value:
        return 0.0
    try:
        return int(value.replace("+", "")) / 1000.0
    except ValueError:
        problems.append(f"{source}: [offset:{value}] is not whole milliseconds (like +250); offset ignored")
        return 0.0


def read_lrc(path: str | Path) -> Lyrics:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BeatcanvasError(f"{path}: no such lyrics file; check the --lyrics path") from None
    except UnicodeDecodeError:
        raise BeatcanvasError(f"{path}: not UTF-8 text; save the .lrc as UTF-8 and try again") from None
    except OSError as e:
        raise BeatcanvasError(f"{path}: cannot read the lyrics ({e.strerror})") from None
    return parse_lrc(text, source=str(path))


def lyrics_beside(track: str | Path) -> Path | None:
    """`song.lrc` next to `song.flac`, if there is one."""
    candidate = Path(track).with_suffix(".lrc")
    return candidate if candidate.is_file() else None
