"""The command-line options several commands share, each defined once.

`ModelArgs` (which preset, which renderer and weights) is shared by play, live, demo and export;
`ShowArgs` (the window, the HUD, playlists) by play, live and demo. `@with_options(model=ModelArgs)`
adds a group's options to a typer command and hands them to it as one object:

    @with_options(model=ModelArgs, show=ShowArgs)
    def play(track: Path = typer.Argument(...), *, model: ModelArgs, show: ShowArgs) -> None: ...
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, TypeVar, get_type_hints

import typer
from typer.core import TyperArgument, TyperCommand

if TYPE_CHECKING:  # the CLI starts without importing torch
    from live.session.show import ShowOptions

F = TypeVar("F", bound=Callable[..., Any])


class UsageCommand(TyperCommand):
    """A command that names its arguments in capitals, `play [OPTIONS] TRACK`, in the usage line, the
    help and "Missing argument 'TRACK'" (typer ≥ 0.29 writes `{track}`, which reads like a placeholder
    left unfilled)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, TyperArgument) and param.metavar is None and param.name:
                param.metavar = param.name.upper()

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if not isinstance(param, TyperArgument):
                pieces.extend(param.get_usage_pieces(ctx))
                continue
            name = str(param.metavar) + ("..." if param.nargs != 1 else "")
            pieces.append(name if param.required else f"[{name}]")
        return pieces


class App(typer.Typer):
    """`typer.Typer` whose commands are `UsageCommand`s: the CLI and its sub-apps (presets, models)."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["cls"] = kwargs.get("cls") or UsageCommand
        return super().command(*args, **kwargs)


def option(default: Any, *flags: str, help: str) -> Any:
    """A dataclass field that is also a typer option."""
    return field(default=default, metadata={"option": typer.Option(default, *flags, help=help)})


@dataclass(frozen=True)
class ModelArgs:
    preset: str = option("default", "--preset", help="Preset name or .toml file (hot-reloaded in a show).")
    renderer: Optional[str] = option(None, "--renderer", help="auto | sdxl | procedural (default: the preset's).")
    profile: str = option("real", "--profile", help="Model weights: real | tiny | random-full.")
    backend: Optional[str] = option(None, "--backend", help="auto | eager | inductor | tensorrt (default: the preset's).")
    models_dir: Optional[Path] = option(None, "--models-dir", help="Folder with downloaded models.")
    beats: str = option("learned", "--beats", help="Beat tracker: learned (the shipped beat network; falls back to "
                        "dsp, saying why, when its weights do not load) | dsp.")

    def show_options(self, **kw: Any) -> ShowOptions:
        from live.session.show import ShowOptions

        return ShowOptions(renderer=self.renderer, profile=self.profile, backend=self.backend,
                           models_dir=self.models_dir, **kw)


@dataclass(frozen=True)
class ShowArgs:
    playlist: Optional[str] = option(None, "--playlist", help="Play a playlist (name or .toml): auto-advance and cuts.")
    fullscreen: bool = option(False, "--fullscreen", help="Start fullscreen (F toggles).")
    display: int = option(0, "--display", help="Monitor number for the window.")
    duration: Optional[float] = option(None, "--duration", help="Stop after S seconds.")
    allow_cpu_diffusion: bool = option(False, "--allow-cpu-diffusion", help="Let SDXL run on a CPU (seconds per frame).")
    fit: str = option("fill", "--fit", help="fill (crop to the window) | letterbox.")
    size: str = option("1280x720", "--size", help="Composition size WIDTHxHEIGHT (the window scales it).")
    no_hud: bool = option(False, "--no-hud", help="Start with the HUD hidden (H toggles).")
    screenshots: Path = option(Path("screenshots"), "--screenshots", help="Folder for S screenshots.")
    latency_ms: float = option(0.0, "--latency-ms", help="Beat pulses lead the audio by this much (ms): raise it "
                               "if the picture lags the sound (L calibrates).")
    schedule: Optional[Path] = option(None, "--schedule", help="Schedule TOML (hot-reloaded): timed styles, knobs, "
                                      "presets, on the track's clock (or the input's bars).")
    lyrics: Optional[Path] = option(None, "--lyrics", help="Timed lyrics (.lrc); default: TRACK.lrc if present.")


def with_options(**groups: type) -> Callable[[F], F]:
    """Add each group's fields to the command as options; the command gets one object per group."""

    def decorate(fn: F) -> F:
        sig = inspect.signature(fn, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name not in groups]
        added = []
        for cls in groups.values():
            hints = get_type_hints(cls)
            added += [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.metadata["option"],
                                        annotation=hints[f.name]) for f in fields(cls)]

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            for name, cls in groups.items():
                kwargs[name] = cls(**{f.name: kwargs.pop(f.name) for f in fields(cls)})
            return fn(**kwargs)

        params = own + added
        command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        del command.__wrapped__  # typer must read the signature above, not fn's
        return command  # type: ignore[return-value]

    return decorate
