"""`beatcanvas analyze TRACK [--json FILE]`: the musical features of a track, as JSON and a summary."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from engine.audio.analysis import analyze_track
from engine.audio.io import probe
from engine.errors import BeatcanvasError
from live.commands.play import check_beats

if TYPE_CHECKING:
    from engine.understanding.pipeline import Understanding


def run_head_analysis(head: str, track: Path, result: dict[str, Any], console: Console,
                      profile: str = "real", hop_s: float = 5.0) -> None:
    """The understanding stage's part of `analyze`: CLAP every `hop_s` over the track, with the tempo
    the tracker measured → the head's top labels, valence/arousal and prompt, as `result["head"]`."""
    from engine.models.profiles import as_profile
    from engine.understanding.pipeline import build_understanding

    if head != "zeroshot":
        raise BeatcanvasError(f"analyze --head supports 'zeroshot' (got '{head}'): the transformer head has no labels")
    with console.status(f"loading the {head} head ({profile} profile)"):
        u = build_understanding(as_profile(profile), head=head)
    rows = head_rows(u, track, hop_s)
    result["head"] = {"name": head, "profile": profile, "hop_s": hop_s, "windows": rows}
    table = Table(title=f"{head} head, every {hop_s:g} s", title_justify="left")
    for col in ("t", "genre", "mood", "energy", "V", "A", "prompt"):
        table.add_column(col, overflow="fold")
    for r in rows:
        top = {c: ", ".join(f"{lab} {w:.2f}" for lab, w in items[:2]) for c, items in r["labels"].items()}
        table.add_row(f"{r['t']:.1f}", top.get("genre", ""), top.get("mood", ""), top.get("energy", ""),
                      f"{r['valence']:+.2f}", f"{r['arousal']:+.2f}", r["prompts"][0][0])
    console.print(table)


def head_rows(understanding: Understanding, track: Path, hop_s: float) -> list[dict[str, Any]]:
    """Per window (every hop, and the track's end): time, scene change, top labels per category with
    weights, valence/arousal and the prompts — on the same hop clock and audio feed as export."""
    from engine.audio.features import FeatureTracker
    from engine.audio.io import iter_audio_blocks
    from live.audio.hopclock import FEATURE_BLOCK, AudioFeed, HopClock, hop_windows

    feed = AudioFeed(iter_audio_blocks(track, FEATURE_BLOCK), tracker=FeatureTracker())
    rows: list[dict[str, Any]] = []
    for window in hop_windows(feed, HopClock(hop_s, start_k=1)):
        understanding.step(window, feed.features)
        info = understanding.info
        row: dict[str, Any] = {"t": round(window.t_end, 3), "scene_change": info.scene_change}
        if info.heard is not None:
            row["labels"] = {c: [[lab, round(w, 3)] for lab, w in items] for c, items in info.heard.top.items()}
            row["valence"], row["arousal"] = round(info.heard.valence, 3), round(info.heard.arousal, 3)
            row["prompts"] = [[p, round(w, 3)] for p, w in info.heard.prompts]
        rows.append(row)
    feed.close()
    return rows


def run_sections(track: Path, result: dict[str, Any], console: Console, out: Path | None, force: bool,
                 clap: bool, profile: str) -> None:
    """Directing (issue 17): section boundaries → `result["sections"]` and a schedule skeleton."""
    from engine.audio.io import iter_audio_blocks
    from engine.directing.sections import clap_embeddings, find_sections, section_features
    from engine.directing.timecode import format_time
    from live.schedule.skeleton import skeleton_toml, write_skeleton

    embeddings = None
    if clap:
        from engine.understanding.clap import ClapEncoder
        from engine.models.profiles import as_profile, build_clap

        with console.status(f"CLAP embeddings for sections ({profile} profile)"):
            encoder = ClapEncoder(build_clap(as_profile(profile)))
            embeddings = clap_embeddings(encoder, iter_audio_blocks(track, 48_000), 48_000)
    sections = find_sections(section_features(iter_audio_blocks(track, 48_000), 48_000), embeddings)
    out = out or track.with_name(f"{track.stem}.schedule.toml")
    write_skeleton(out, skeleton_toml(sections, track.name, out.name), force=force)
    result["sections"] = [dataclasses.asdict(s) for s in sections]
    table = Table(title="detected sections", title_justify="left")
    for col in ("#", "from", "to", "dBFS", "like"):
        table.add_column(col, justify="right")
    for i, s in enumerate(sections, start=1):
        table.add_row(str(i), format_time(s.start), format_time(s.end), f"{s.loudness_db:.0f}", str(s.like or ""))
    console.print(table)
    console.print(f"wrote {out}: give each section a style, then play or export with --schedule {out}",
                  soft_wrap=True, highlight=False)


def _words(v: float, neg: str, mid: str, pos: str) -> str:
    return neg if v < -0.33 else pos if v > 0.33 else mid


def _summary(console: Console, track: Path, r: dict[str, Any]) -> None:
    frames = r["frames"]
    bars = f"{len(r['downbeats'])} bars" if r["downbeats"] else "bars not found"
    console.print(f"[bold]{track.name}[/]  {r['duration']:.1f} s  ·  tempo [bold]{r['tempo_bpm']:.1f} BPM[/]  ·  "
                  f"{len(r['beats'])} beats  ·  {bars}")
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
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write tempo, beats (with confidence), downbeats and 0.1 s frames to this JSON file."),
    frame_every: float = typer.Option(0.1, "--frame-every", min=0.01, help="Seconds between JSON frames."),
    head: Optional[str] = typer.Option(None, "--head", help="Also run a conditioning head (e.g. zeroshot), when available."),
    profile: str = typer.Option("real", "--profile", help="Model profile for --head: real (published weights) or tiny."),
    head_hop: float = typer.Option(5.0, "--head-hop", min=0.1, help="Seconds between --head windows."),
    sections: bool = typer.Option(False, "--sections", help="Find section boundaries and write a schedule skeleton."),
    schedule_out: Optional[Path] = typer.Option(None, "--schedule-out", help="Skeleton file (default: TRACK.schedule.toml)."),
    clap: bool = typer.Option(False, "--clap", help="--sections also compares CLAP embeddings (slow on a CPU)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing skeleton."),
    beats: str = typer.Option("learned", "--beats", help="Beat tracker: learned (the shipped beat network; falls "
                              "back to dsp, saying why, when its weights do not load) | dsp."),
) -> None:
    """Beats, tempo, loudness, bands and valence/arousal of a track (streamed; any length)."""
    console = Console()
    info = probe(track)
    with Progress(
        TextColumn("analyzing"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn(),
        console=console, transient=True,
    ) as progress:
        task = progress.add_task("analyze", total=max(info.duration, 1e-3))
        result = analyze_track(track, frame_every=frame_every, beats=check_beats(beats),
                               on_progress=lambda t: progress.update(task, completed=t))
    if result.get("beat_tracker_note"):
        console.print(result["beat_tracker_note"], highlight=False)
    if head:
        run_head_analysis(head, track, result, console, profile=profile, hop_s=head_hop)
    if sections:  # directing (issue 17)
        run_sections(track, result, console, schedule_out, force, clap, profile)
    if json_out is not None:
        payload = {k: result[k] for k in ("tempo_bpm", "beats", "beat_confidence", "downbeats", "frames")}
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
