"""The studio page's TOML editor, server side: validate as you type through the real preset schema
(errors at their line), and save / save-as that keep the file's comments and order (tomlkit).

Files are named, never pathed: a page sends a preset name (`NAME_PATTERN`), and only files inside
the preset folders (the user's, the built-ins, and the folder of a preset the show was started
from) are read or written. The running show hot-reloads a saved file through its own watcher
(live/presets/watch.py), exactly as after an outside editor's save.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from engine.files import write_text
from live.control.knobs import knob_table
from live.presets.library import BUILTIN_DIR, user_presets_dir
from live.presets.schema import MAX_PRESET_BYTES, NAME_PATTERN, Preset, PresetError, parse_preset


class EditorError(ValueError):
    """A request the editor refuses; the message is one line for the page."""


@dataclass(frozen=True)
class Problem:
    line: int  # 1-based; 0 when the error has no line
    message: str


class PresetFiles:
    """The preset folders a page may read and write."""

    def __init__(self, extra_dirs: tuple[Path, ...] = ()) -> None:
        self.extra_dirs = tuple(Path(d).resolve() for d in extra_dirs)

    def dirs(self) -> list[Path]:
        """Where a name is looked up, in order: the user's folder, the show's own, the built-ins."""
        return [user_presets_dir().expanduser().resolve(), *self.extra_dirs, BUILTIN_DIR.resolve()]

    def inside(self, path: Path) -> bool:
        resolved = path.resolve()
        return any(resolved.is_relative_to(d) and resolved.parent == d for d in self.dirs())

    def find(self, name: str) -> Path:
        check_name(name)
        for folder in self.dirs():
            path = folder / f"{name}.toml"
            if path.is_file() and self.inside(path):
                return path
        raise EditorError(f"no preset file named {name!r} in the preset folders")

    def read(self, name: str) -> str:
        path = self.find(name)
        if path.stat().st_size > MAX_PRESET_BYTES:
            raise EditorError(f"{name}.toml is larger than a preset can be; edit it in a text editor")
        return path.read_text(encoding="utf-8")

    def save(self, name: str, text: str) -> Path:
        """Write `text` over preset `name`'s file, when it validates."""
        path = self.find(name)
        _refuse_invalid(text, name)
        write_text(path, text)
        return path

    def save_as(self, name: str, text: str, overwrite: bool = False) -> Path:
        """Write `text` as a new preset `name` in the user's folder (its `name =` line follows)."""
        check_name(name)
        folder = user_presets_dir().expanduser().resolve()
        path = folder / f"{name}.toml"
        if path.exists() and not overwrite:
            raise EditorError(f"{name}.toml already exists in {folder}; pick another name")
        text = renamed(text, name)
        _refuse_invalid(text, name)
        folder.mkdir(parents=True, exist_ok=True)
        write_text(path, text)
        return path


def check_name(name: Any) -> str:
    if not isinstance(name, str) or len(name) > 64 or not re.fullmatch(NAME_PATTERN, name):
        raise EditorError("a preset name is lower-case letters, digits, - and _ (no paths)")
    return name


def check(text: str, name: str) -> list[Problem]:
    """Every problem the preset loader would report, with its line (empty: the text is a valid preset)."""
    if len(text.encode("utf-8", "replace")) > MAX_PRESET_BYTES:
        return [Problem(0, f"larger than {MAX_PRESET_BYTES // 1024} KB: not a preset")]
    try:
        parse_preset(text, source=f"{name}.toml", name=name)
    except PresetError as e:
        return [Problem(e.line or 0, str(e))]
    return []


def _refuse_invalid(text: str, name: str) -> None:
    problems = check(text, name)
    if problems:
        raise EditorError(f"not saved: {problems[0].message}")


def renamed(text: str, name: str) -> str:
    """`text` with its top-level `name = …` (if any) set to `name`, comments kept."""
    try:
        doc = tomlkit.parse(text)
    except TOMLKitError:
        return text  # the check reports the syntax error at its line
    if "name" in doc:
        doc["name"] = name
    return tomlkit.dumps(doc)


def with_values(text: str, preset: Preset) -> str:
    """The file's text with every knob set to the running preset's value (the page's moves), keeping
    the user's comments, order and formatting; knobs a file leaves at their default stay unwritten."""
    try:
        doc = tomlkit.parse(text)
    except TOMLKitError:
        return text
    try:
        on_file = parse_preset(text, name=preset.name)
    except PresetError:
        return text
    for knob in knob_table().values():
        value = knob.read(preset)
        if value is None or value == knob.read(on_file):
            continue
        table = doc.get(knob.section)
        if table is None:
            table = tomlkit.table()
            doc[knob.section] = table
        if "/" in knob.key:
            inner = table.get(knob.field)
            if inner is None:
                inner = tomlkit.inline_table()
                table[knob.field] = inner
            inner[knob.key.split("/", 1)[1]] = value
        else:
            table[knob.key] = value
    return tomlkit.dumps(doc)
