"""`beatcanvas analyze TRACK [--json FILE]`: the musical features of a track, as JSON and a summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from engine.audio.analysis import analyze_track
from engine.audio.io import probe
from engine.errors import BeatcanvasError


def run_head_analysis(head: str, track: Path, result: dict[str, Any], console: Console) -> None:
    """HOOK for the understanding stage: add what a conditioning head heard to `result`.

    `beatcanvas analyze TRACK --head zeroshot` calls this after the features. The understanding
    engineer fills it in (e.g. CLAP every hop → zero-shot labels, stored as `result["head"]`); until
    then asking for a head is a clear error rather than a silent no-op.
    """
    raise BeatcanvasError(f"--head {head} is not available yet in this build — run analyze without --head")


def _words(v: float, neg: str, mid: str, pos: str) -> str:
    return neg if v < -0.33 else pos if v > 0.33 else mid


def _summary(console: Console, track: Path, r: dict[str, Any]) -> None:
    frames = r["frames"]
    console.print(f"[bold]{track.name}[/]  {r['duration']:.1f} s  ·  tempo [bold]{r['tempo_bpm']:.1f} BPM[/]  ·  {len(r['beats'])} beats")
    if not frames:
        console.print("[yellow]the track is shorter than one frame; nothing to summarise[/]")
        return
    arr = {k: np.array([f[k] for f in frames]) for k in frames[0]}
    rms_db = 20 * np.log10(np.maximum(arr["rms"], 1e-5))

    def level(a: int, b: int) -> float:  # energy average: a click track is not "silent"
        return float(10 * np.log10(max(np.mean(arr["rms"][a:b] ** 2), 1e-10)))

    console.print(
        f"loudness {level(0, len(frames)):.1f} dBFS (loudest 0.1 s: {rms_db.max():.1f})  ·  "
        f"arousal {np.mean(arr['arousal']):+.2f} ({_words(np.mean(arr['arousal']), 'calm', 'moderate', 'energetic')})  ·  "
        f"valence {np.mean(arr['valence']):+.2f} ({_words(np.mean(arr['valence']), 'dark/minor', 'neutral', 'bright/major')})"
    )
    table = Table(title="sections", title_justify="left")
    for col in ("from", "to", "dBFS", "onset", "low", "mid", "high", "arousal", "valence"):
        table.add_column(col, justify="right")
    n = len(frames)
    parts = min(8, n)
    for i in range(parts):
        a, b = i * n // parts, max((i + 1) * n // parts, i * n // parts + 1)
        seg = {k: v[a:b] for k, v in arr.items()}
        table.add_row(
            f"{frames[a]['t'] - 0.1:.0f}s" if a else "0s",
            f"{frames[b - 1]['t']:.0f}s",
            f"{level(a, b):.0f}",
            f"{seg['onset'].mean():.2f}",
            f"{seg['low'].mean():.2f}",
            f"{seg['mid'].mean():.2f}",
            f"{seg['high'].mean():.2f}",
            f"{seg['arousal'].mean():+.2f}",
            f"{seg['valence'].mean():+.2f}",
        )
    console.print(table)


def analyze(
    track: Path = typer.Argument(..., help="Audio file (wav, flac, ogg, mp3, aiff)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write tempo, beats and 0.1 s frames to this JSON file."),
    frame_every: float = typer.Option(0.1, "--frame-every", min=0.01, help="Seconds between JSON frames."),
    head: Optional[str] = typer.Option(None, "--head", help="Also run a conditioning head (e.g. zeroshot), when available."),
) -> None:
    """Beats, tempo, loudness, bands and valence/arousal of a track (streamed; any length)."""
    console = Console()
    info = probe(track)
    with Progress(
        TextColumn("analyzing"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn(),
        console=console, transient=True,
    ) as progress:
        task = progress.add_task("analyze", total=max(info.duration, 1e-3))
        result = analyze_track(track, frame_every=frame_every,
                               on_progress=lambda t: progress.update(task, completed=t))
    if head:
        run_head_analysis(head, track, result, console)
    if json_out is not None:
        payload = {k: result[k] for k in ("tempo_bpm", "beats", "frames")}
        payload.update({k: v for k, v in result.items() if k not in payload and k != "duration"})
        try:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(payload))
        except OSError as e:
            raise BeatcanvasError(f"cannot write {json_out}: {e.strerror} — choose another --json path") from e
    _summary(console, track, result)
    if json_out is not None:
        console.print(f"wrote {json_out}")


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze)
