"""Where presets live: the built-ins in the repository's `presets/` folder, and the user's own.

User presets sit in `$BEATCANVAS_PRESETS`, else `$XDG_CONFIG_HOME/beatcanvas/presets`, else
`~/.config/beatcanvas/presets`. A user preset with a built-in's name shadows it, so a performer
can tweak `default` without touching the repository.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from engine.files import write_text

from live.presets import DEFAULT_PRESET
from live.presets.schema import GROUPS, NAME_PATTERN, Preset, PresetError, preset_hash, read_preset_file

__all__ = [
    "BUILTIN_DIR",
    "DEFAULT_PRESET",
    "PresetInfo",
    "find_preset",
    "list_presets",
    "load_preset",
    "new_preset",
    "preset_file",
    "preset_hash",
    "to_toml",
    "user_presets_dir",
]

BUILTIN_DIR = Path(__file__).resolve().parents[2] / "presets"


def user_presets_dir() -> Path:
    """The per-user preset folder (it need not exist yet)."""
    override = os.environ.get("BEATCANVAS_PRESETS")
    if override:
        return Path(override).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config).expanduser() / "beatcanvas" / "presets"


@dataclass(frozen=True)
class PresetInfo:
    """One entry of `list_presets()`: enough to print a table without loading everything twice."""

    name: str
    path: Path
    source: str  # "user" | "builtin"
    description: str = ""
    shadows_builtin: bool = False
    error: str | None = None  # set when the file does not validate


def _scan(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.toml")) if p.is_file()}


def list_presets() -> list[PresetInfo]:
    """Every preset by name (user presets shadowing built-ins), sorted; broken files are listed
    with their error rather than hiding the rest."""
    builtin = _scan(BUILTIN_DIR)
    user = _scan(user_presets_dir())
    out: list[PresetInfo] = []
    for name in sorted(set(builtin) | set(user)):
        path, source = (user[name], "user") if name in user else (builtin[name], "builtin")
        try:
            preset = read_preset_file(path)
            description, error = preset.description, None
        except PresetError as e:
            description, error = "", str(e)
        out.append(
            PresetInfo(
                name=name,
                path=path,
                source=source,
                description=description,
                shadows_builtin=source == "user" and name in builtin,
                error=error,
            )
        )
    return out


def _looks_like_path(name_or_path: str | Path) -> bool:
    s = str(name_or_path)
    return isinstance(name_or_path, Path) or s.endswith(".toml") or os.sep in s or "/" in s


def find_preset(name: str) -> Path:
    """The file that provides preset `name`: the user's copy first, then the built-in."""
    for folder in (user_presets_dir(), BUILTIN_DIR):
        path = folder / f"{name}.toml"
        if path.is_file():
            return path
    known = sorted(set(_scan(BUILTIN_DIR)) | set(_scan(user_presets_dir())))
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'?" if close else "run `beatcanvas presets list` to see them"
    raise PresetError(f"no preset named '{name}'; {hint}", key=name)


def preset_file(name_or_path: str | Path | None = None) -> Path:
    """The file a preset name (user folder, then built-ins) or a .toml path refers to.
    None means `DEFAULT_PRESET`."""
    if name_or_path is None or name_or_path == "":
        name_or_path = DEFAULT_PRESET
    if _looks_like_path(name_or_path):
        return Path(name_or_path).expanduser()
    return find_preset(str(name_or_path))


def load_preset(name_or_path: str | Path | None = None) -> Preset:
    """Load a preset by name (user folder, then built-ins) or from a .toml path.
    None loads `DEFAULT_PRESET`."""
    return read_preset_file(preset_file(name_or_path))


# --- writing: `presets new` and `presets show` -------------------------------------------------


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON string escapes are valid TOML basic strings
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _comment(model: type[BaseModel], field: str) -> str:
    info = model.model_fields[field]
    return f"# {info.description}" if info.description else ""


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def to_toml(preset: Preset, comments: bool = True, header: str = "") -> str:
    """The fully resolved preset as TOML that `parse_preset` reads back to an equal Preset;
    with `comments`, each key carries its description from the schema."""
    lines: list[str] = [f"# {h}".rstrip() for h in header.splitlines()] if header else []

    def put(model: type[BaseModel], key: str, value: object) -> None:
        if comments and _comment(model, key):
            lines.append(_comment(model, key))
        if value is None:
            lines.append(f"# {key} = ")
        else:
            lines.append(f"{key} = {_toml_value(value)}")

    for key in ("name", "description", "commercial_safe"):
        put(Preset, key, getattr(preset, key))
    for group, model in GROUPS.items():
        settings = getattr(preset, group)
        lines += ["", f"[{group}]"]
        nested: dict[str, dict] = {}
        for key in model.model_fields:
            value = getattr(settings, key)
            if isinstance(value, dict):
                nested[key] = value
                if comments and _comment(model, key):
                    lines.append(f"# [{group}.{key}]: {model.model_fields[key].description}")
                continue
            put(model, key, value)
        for key, table in nested.items():
            if table:
                lines += ["", f"[{group}.{key}]"]
                lines += [f"{_key(k)} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def new_preset(name: str, base: str = DEFAULT_PRESET, force: bool = False) -> Path:
    """Write a commented, fully resolved copy of `base` as user preset `name`; returns its path."""
    if not re.match(NAME_PATTERN, name):
        raise PresetError(
            f"'{name}' is not a valid preset name; use lower-case letters, digits, '-' and '_'", key=name
        )
    source = load_preset(base)
    folder = user_presets_dir()
    path = folder / f"{name}.toml"
    if path.exists() and not force:
        raise PresetError(f"{path} already exists; pick another name or pass --force", file=str(path))
    preset = source.model_copy(update={"name": name})
    header = (
        f"beatcanvas preset '{name}', copied from '{source.name}'.\n"
        "Every setting is listed with what it does; delete the ones you don't change.\n"
        "It shadows any built-in preset of the same name. Check it: beatcanvas presets validate FILE"
    )
    folder.mkdir(parents=True, exist_ok=True)
    text = to_toml(preset, comments=True, header=header)
    write_text(path, text)
    return path
