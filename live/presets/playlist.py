"""Playlists: an ordered list of presets in TOML, for auto-advancing shows.

    name = "late-night"
    description = "Dark to bright over an hour."
    loop = true            # back to the first after the last
    shuffle = false        # with a seed, so the same seed plays the same order

    [[entry]]
    preset = "neon-noir"
    duration_s = 45        # optional: overrides the preset's transitions.duration_s

Playlists live in `presets/playlists/` and in the user preset folder's `playlists/`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from live.presets.library import BUILTIN_DIR, _looks_like_path, _scan, list_presets, preset_file, user_presets_dir
from live.presets.schema import (
    NAME_PATTERN, Preset, PresetError, find_key_line, load_toml, read_preset_file, validation_error,
)
from live.presets.transitions import Transitioner

PLAYLIST_DIRNAME = "playlists"


class PlaylistEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    preset: str = Field(min_length=1, description="preset name or path to a .toml file")
    duration_s: float | None = Field(
        None, ge=0.0, le=3600.0, description="overrides the preset's transitions.duration_s; 0 = never"
    )


class Playlist(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field("playlist", pattern=NAME_PATTERN)
    description: str = ""
    loop: bool = True
    shuffle: bool = False
    seed: int = Field(0, ge=0)
    entry: tuple[PlaylistEntry, ...] = Field(min_length=1)

    def order(self) -> list[PlaylistEntry]:
        """Entries in play order: as written, or shuffled reproducibly by `seed`."""
        entries = list(self.entry)
        if self.shuffle:
            random.Random(self.seed).shuffle(entries)
        return entries


def playlist_dirs() -> list[Path]:
    """User playlists first, so they shadow built-ins of the same name."""
    return [user_presets_dir() / PLAYLIST_DIRNAME, BUILTIN_DIR / PLAYLIST_DIRNAME]


def list_playlists() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in reversed(playlist_dirs()):
        found.update(_scan(folder))
    return dict(sorted(found.items()))


def parse_playlist(text: str, source: str = "<string>", name: str | None = None) -> Playlist:
    data = load_toml(text, source)
    if name is not None:
        data.setdefault("name", name)
    try:
        return Playlist.model_validate(data)
    except ValidationError as e:
        raise validation_error(e, text, source, root=Playlist) from None


def load_playlist(name_or_path: str | Path) -> tuple[Playlist, str]:
    """The playlist and its TOML text (kept so later errors can point at a line)."""
    if _looks_like_path(name_or_path):
        path = Path(name_or_path).expanduser()
    else:
        found = next((d / f"{name_or_path}.toml" for d in playlist_dirs() if (d / f"{name_or_path}.toml").is_file()),
                     None)
        if found is None:
            raise PresetError(f"no playlist named '{name_or_path}'; put it in {playlist_dirs()[0]}")
        path = found
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PresetError(f"{path}: cannot read playlist ({e.strerror or e})", file=str(path)) from None
    return parse_playlist(text, source=str(path), name=path.stem), text


def resolve_playlist(playlist: Playlist, text: str = "", source: str = "") -> ShowList:
    """Load every entry's preset, in play order; a missing preset is reported at its line."""
    presets: list[Preset] = []
    paths: list[Path | None] = []
    durations: list[float | None] = []
    for entry in playlist.order():
        try:
            path = preset_file(entry.preset)
            presets.append(read_preset_file(path))
        except PresetError as e:
            index = playlist.entry.index(entry)
            line = find_key_line(text, ("entry", index, "preset")) if text else None
            where = f"{source}, line {line}: " if source and line else (f"{source}: " if source else "")
            raise PresetError(f"{where}entry {index + 1}: {e}", file=source, line=line,
                              key=f"entry[{index}].preset") from None
        paths.append(path)
        durations.append(entry.duration_s)
    return ShowList(tuple(presets), tuple(paths), tuple(durations), loop=playlist.loop, name=playlist.name)


@dataclass(frozen=True)
class ShowList:
    """The presets a show steps through (a playlist, or the library for ←/→), with the file each
    came from (for hot reload) and its duration override (None: the preset's own)."""

    presets: tuple[Preset, ...]
    paths: tuple[Path | None, ...]
    durations: tuple[float | None, ...]
    start: int = 0
    loop: bool = True
    name: str = ""  # the playlist's name; "" for the library

    def transitioner(self, t0: float = 0.0) -> Transitioner:
        return Transitioner(self.presets, durations=self.durations, start=self.start, t0=t0, loop=self.loop)


def library_show(preset: Preset, path: Path | None) -> ShowList:
    """The library in `list_presets` order (broken files left out), starting at `preset`: ←/→ and
    the number keys walk it. Nothing auto-advances (durations 0): that is what a playlist is for."""
    items: list[tuple[Preset, Path | None]] = []
    for info in list_presets():
        if info.error is None:
            try:
                items.append((read_preset_file(info.path), info.path))
            except PresetError:
                continue  # changed since it was listed
    names = [p.name for p, _ in items]
    if preset.name in names:
        start = names.index(preset.name)
        items[start] = (preset, path)
    else:
        items.append((preset, path))
        start = len(items) - 1
    return ShowList(tuple(p for p, _ in items), tuple(q for _, q in items), (0.0,) * len(items), start=start)


def playlist_show(name_or_path: str | Path) -> ShowList:
    """A playlist's presets, ready for a `Transitioner` (`ShowList.transitioner`)."""
    playlist, text = load_playlist(name_or_path)
    return resolve_playlist(playlist, text, str(name_or_path))


def transitioner_for(name_or_path: str | Path, t0: float = 0.0) -> Transitioner:
    """A `Transitioner` over a playlist's presets, ready to `step(t, features)`."""
    return playlist_show(name_or_path).transitioner(t0)
