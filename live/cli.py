"""The `beatcanvas` command line.

Each command lives in `live/commands/<name>.py` and adds itself with `register(app)`. A
`BeatcanvasError` is printed as one line without a traceback (unless `--debug`) and exits 1.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from engine.errors import BeatcanvasError
from live.commands.options import App

app = App(
    name="beatcanvas",
    help="Real-time, audio-reactive visualizer: music in, evolving AI images out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)

# Command modules, in the order `--help` lists them.
COMMANDS = [
    "play",
    "demo",
    "live",
    "export",
    "analyze",
    "devices",
    "presets",
    "models",
    "bench",
    "train",
    "osc_map",
    "studio",
]

@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logging."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Info-level logging."),
) -> None:
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _register_all() -> None:
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"live.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"live.commands.{name}":
                continue  # command not built yet
            raise
        module.register(app)


_register_all()


def _click_exceptions() -> dict[str, tuple[type, ...]]:
    """Click's exception classes: typer ≥ 0.29 raises its vendored copy (typer._click), older
    typer the click package's. Both, so a usage error prints its message, never a traceback."""
    modules = []
    for name in ("typer.exceptions", "typer._click.exceptions", "click.exceptions"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            continue
    return {k: tuple(vars(m)[k] for m in modules if k in vars(m)) for k in ("Exit", "ClickException", "Abort")}


def main(argv: list[str] | None = None) -> int:
    """Console entry point."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        # Without standalone mode click returns a command's `typer.Exit` code instead of exiting.
        rc = app(args=argv, standalone_mode=False)
    except BeatcanvasError as e:
        if debug:
            raise
        # escaped: "[model]" in a message is a preset section, not rich markup
        err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as e:  # click usage errors and the like
        exceptions = _click_exceptions()
        click_error: Any = e  # click's classes, found at run time (see _click_exceptions)
        if isinstance(e, exceptions["Exit"]):
            return int(click_error.exit_code)
        if isinstance(e, exceptions["ClickException"]):
            click_error.show()
            return int(click_error.exit_code)
        if isinstance(e, exceptions["Abort"]):
            err.print("aborted")
            return 1
        raise
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
