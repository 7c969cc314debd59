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
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from live.presets.library import BUILTIN_DIR, _looks_like_path, _scan, load_preset, user_presets_dir
from live.presets.schema import NAME_PATTERN, Preset, PresetError, find_key_line, load_toml, validation_error
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
        path = next((d / f"{name_or_path}.toml" for d in playlist_dirs() if (d / f"{name_or_path}.toml").is_file()),
                    None)
        if path is None:
            raise PresetError(f"no playlist named '{name_or_path}'; put it in {playlist_dirs()[0]}")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PresetError(f"{path}: cannot read playlist ({e.strerror or e})", file=str(path)) from None
    return parse_playlist(text, source=str(path), name=path.stem), text


def resolve_playlist(playlist: Playlist, text: str = "", source: str = "") -> tuple[list[Preset], list[float | None]]:
    """Load every entry's preset, in play order; a missing preset is reported at its line."""
    presets: list[Preset] = []
    durations: list[float | None] = []
    for entry in playlist.order():
        try:
            presets.append(load_preset(entry.preset))
        except PresetError as e:
            index = playlist.entry.index(entry)
            line = find_key_line(text, ("entry", index, "preset")) if text else None
            where = f"{source}, line {line}: " if source and line else (f"{source}: " if source else "")
            raise PresetError(f"{where}entry {index + 1}: {e}", file=source, line=line,
                              key=f"entry[{index}].preset") from None
        durations.append(entry.duration_s)
    return presets, durations


def transitioner_for(name_or_path: str | Path, t0: float = 0.0) -> Transitioner:
    """A `Transitioner` over a playlist's presets, ready to `step(t, features)`."""
    playlist, text = load_playlist(name_or_path)
    source = str(name_or_path)
    presets, durations = resolve_playlist(playlist, text, source)
    return Transitioner(presets, durations=durations, t0=t0, loop=playlist.loop)
