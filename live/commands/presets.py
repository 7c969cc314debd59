"""`beatcanvas presets list|show|validate|new|playlist`: browse, check and copy presets."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from live.commands.options import App
from live.presets import DEFAULT_PRESET

# Each command imports the library (pydantic) when it runs: `beatcanvas --help` registers them all.

console = Console()
presets_app = App(help="Browse, check and copy presets (one look per TOML file).", no_args_is_help=True)


@presets_app.command("list")
def list_command() -> None:
    """Built-in and user presets, with their descriptions."""
    from live.presets.library import BUILTIN_DIR, list_presets, user_presets_dir

    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("name", style="cyan", no_wrap=True)
    table.add_column("from", no_wrap=True)
    table.add_column("description")
    for info in list_presets():
        source = "user, shadows built-in" if info.shadows_builtin else info.source
        if info.name == DEFAULT_PRESET:
            source += " (default)"
        description = info.description if info.error is None else f"[red]invalid:[/] {info.error}"
        table.add_row(info.name, source, description)
    console.print(table)
    console.print(f"built-in: {BUILTIN_DIR}\nuser:     {user_presets_dir()}", highlight=False)


@presets_app.command("show")
def show_command(name: str = typer.Argument(..., help="preset name or path to a .toml file")) -> None:
    """The fully resolved settings of one preset (every default filled in), as TOML."""
    from live.presets.library import find_preset, load_preset, preset_hash, to_toml

    preset = load_preset(name)
    path = Path(name) if name.endswith(".toml") else find_preset(name)
    header = f"{path}\nsha256 of the settings: {preset_hash(preset)}"
    if preset.conditioning.negative and preset.model.guidance_scale <= 1.0:
        header += "\nnote: the negative prompt is ignored while guidance_scale <= 1"
    # Plain stdout: the output is TOML, and must not be wrapped or styled.
    typer.echo(to_toml(preset, comments=False, header=header), nl=False)


@presets_app.command("validate")
def validate_command(files: list[Path] = typer.Argument(..., help="preset .toml files")) -> None:
    """Check preset files against the schema; exits 1 if any is invalid."""
    from live.presets.schema import PresetError, read_preset_file

    failed = 0
    for path in files:
        try:
            preset = read_preset_file(path)
        except PresetError as e:
            failed += 1
            console.print(f"[red]invalid[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            continue
        console.print(f"[green]ok[/]      {path}  ({preset.name}: {preset.description})",
                      highlight=False, soft_wrap=True)
    if failed:
        raise PresetError(f"{failed} of {len(files)} preset files are invalid; fix the lines named above")


@presets_app.command("new")
def new_command(
    name: str = typer.Argument(..., help="name of the new preset"),
    base: str = typer.Option(DEFAULT_PRESET, "--from", help="preset to copy"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing user preset"),
) -> None:
    """Write a commented copy of BASE to the user preset folder as NAME."""
    from live.presets.library import new_preset

    path = new_preset(name, base, force=force)
    console.print(f"wrote {path}\nedit it, then: beatcanvas presets validate {path}", highlight=False)


@presets_app.command("playlist")
def playlist_command(name: str = typer.Argument(..., help="playlist name or path")) -> None:
    """Check a playlist and show its presets in play order."""
    from live.presets.playlist import load_playlist, resolve_playlist

    playlist, text = load_playlist(name)
    show = resolve_playlist(playlist, text, name)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("#", "preset", "duration", "cut"):
        table.add_column(col)
    for i, (preset, duration) in enumerate(zip(show.presets, show.durations), start=1):
        rules = preset.transitions
        d = rules.duration_s if duration is None else duration
        cut = f"soft {rules.soft_cut_s:g} s" + (", beat hard cuts" if rules.hard_cut else "")
        table.add_row(str(i), preset.name, "never" if d == 0 else f"{d:g} s", cut)
    console.print(f"{playlist.name}: {playlist.description}", highlight=False)
    console.print(table)
    console.print(f"play it: beatcanvas play TRACK --playlist {name}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(presets_app, name="presets")
