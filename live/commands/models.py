"""`beatcanvas models list|fetch`: what is on this machine, and getting the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from engine.models import registry
from live.commands.options import App



def _out() -> Console:
    """A console per command, so the terminal width (or $COLUMNS) is read when the command runs."""
    return Console()

models_app = App(help="List and fetch the published models (CLAP, SDXL-Turbo/Lightning, decoders).",
                         no_args_is_help=True)

_MODELS_DIR = typer.Option(
    None,
    "--models-dir",
    envvar=registry.ENV_MODELS_DIR,
    help="Folder holding one sub-folder per model (<dir>/<name>/). Also read from $BEATCANVAS_MODELS.",
    file_okay=False,
)


@models_app.command("list")
def list_models(models_dir: Optional[Path] = _MODELS_DIR) -> None:
    """Every model beatcanvas knows, its licence, and whether (and where) it is on this machine."""
    out = _out()
    table = Table(title="beatcanvas models", title_justify="left")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("repo", overflow="fold")
    table.add_column("licence", no_wrap=True)
    table.add_column("paid gigs", no_wrap=True)
    table.add_column("size", no_wrap=True, justify="right")
    table.add_column("present / where", overflow="fold")
    for st in registry.status(models_dir):
        s = st.spec
        where = f"[green]yes[/] ({st.source}) {st.path}" if st.present else "[red]no[/]"
        table.add_row(
            s.name,
            s.repo_id,
            s.licence_id,
            "[green]yes[/]" if s.commercial_ok else "[yellow]no[/]",
            f"{s.size_gb:.2g} GB",
            where,
        )
    out.print(table)
    out.print(
        "Fetch with `beatcanvas models fetch NAME` (or with no NAME for every missing model). "
        "SDXL-Turbo is non-commercial; for paid gigs use sdxl-lightning (+ sdxl-base)."
    )


@models_app.command("fetch")
def fetch_models(
    name: Optional[str] = typer.Argument(None, help=f"One of: {', '.join(registry.MODELS)}. Omit for all missing."),
    models_dir: Optional[Path] = _MODELS_DIR,
    force: bool = typer.Option(False, "--force", help="Download even if already present."),
) -> None:
    """Download a model (only the files beatcanvas uses) with a progress bar. Needs internet."""
    out = _out()
    if name is not None:
        spec = registry.spec(name)  # unknown name -> one-line error before any network work
        names = [*spec.depends_on, spec.name]
    else:
        names = list(registry.MODELS)
    for n in names:
        st = registry.locate(n, models_dir)
        if st.present and not force:
            out.print(f"{n}: already present ({st.source}) at {st.path}")
            continue
        s = st.spec
        out.print(f"fetching [bold]{n}[/] from {s.repo_id} (~{s.size_gb:.2g} GB, licence: {s.licence})")
        result = registry.fetch(n, models_dir, progress=True)
        out.print(f"[green]{n}[/]: {len(result.files)} files at {result.path}")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
