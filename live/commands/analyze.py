"""`beatcanvas analyze TRACK [--json FILE]`: the musical features of a track, as JSON and a summary."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from engine.errors import BeatcanvasError
from engine.files import file_error, write_text
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
    for col in ("#", "from", "to", "dBFS", "like", "letter"):
        table.add_column(col, justify="right")
    for i, s in enumerate(sections, start=1):
        table.add_row(str(i), format_time(s.start), format_time(s.end), f"{s.loudness_db:.0f}", str(s.like or ""),
                      s.letter)
    console.print(table)
    console.print(f"form: {' '.join(s.letter for s in sections)}", highlight=False)
    console.print(f"wrote {out}: give each section a style, then play or export with --schedule {out}",
                  soft_wrap=True, highlight=False)


def stems_result(track: Path, frame_every: float) -> dict[str, Any]:
    """The offline stems (engine/audio/stems.py) as analyze's JSON part: per-stem envelopes every
    `frame_every` s (the mean level over the frame; 1.0 = the track's typical mix level), the bass
    and lead pitch, and each stem's onset times."""
    import numpy as np

    from engine.audio.features import N_FFT
    from engine.audio.stems import analyze_stems, onset_times
    from engine.types import SAMPLE_RATE, STEM_NAMES

    track_stems = analyze_stems(track)
    rows, fps = track_stems.rows, track_stems.fps
    step = max(1, int(round(frame_every * fps)))
    frames = []
    for a in range(0, len(rows), step):
        b = min(a + step, len(rows))
        frame: dict[str, float] = {"t": round(b / fps, 4)}
        frame.update({name: round(float(rows.level[a:b, k].mean()), 4) for k, name in enumerate(STEM_NAMES)})
        frame["bass_hz"] = round(float(rows.bass_hz[b - 1]), 1)
        frame["voice_hz"] = round(float(rows.voice_hz[b - 1]), 1)
        frames.append(frame)
    centre = -N_FFT / 2 / SAMPLE_RATE + 1.0 / fps  # a hop's frame ends at (i + 1) / fps; its middle is earlier
    onsets = {"percussive": [round(t + centre, 3) for t in onset_times(rows, fps).tolist()]}
    for k, name in enumerate(STEM_NAMES[1:], start=1):
        onsets[name] = [round((i + 1) / fps - N_FFT / 2 / SAMPLE_RATE, 3) for i in np.nonzero(rows.hit[:, k])[0].tolist()]
    return {"frame_every": frame_every, "frames": frames, "onsets": onsets}


def write_stems(stems: dict[str, Any], out: Path) -> None:
    """`.json`: the whole stems result; anything else: CSV, one row per frame."""
    from engine.types import STEM_NAMES

    if out.suffix.lower() == ".json":
        text = json.dumps(stems)
    else:
        cols = ["t", *STEM_NAMES, "bass_hz", "voice_hz"]
        text = ",".join(cols) + "\n" + "".join(",".join(str(f[c]) for c in cols) + "\n" for f in stems["frames"])
    try:
        write_text(out, text)
    except OSError as e:
        raise file_error(e, out) from e


def _words(v: float, neg: str, mid: str, pos: str) -> str:
    return neg if v < -0.33 else pos if v > 0.33 else mid


def _summary(console: Console, track: Path, r: dict[str, Any]) -> None:
    import numpy as np

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
    stems: bool = typer.Option(False, "--stems", help="Separate percussive, bass, harmonic and voice envelopes "
                               "(offline) and write them to TRACK.stems.csv (and into --json)."),
    stems_out: Optional[Path] = typer.Option(None, "--stems-out", help="Where --stems writes: .csv or .json "
                                             "(default: TRACK.stems.csv)."),
    beats: str = typer.Option("learned", "--beats", help="Beat tracker: learned (the shipped beat network; falls "
                              "back to dsp, saying why, when its weights do not load) | dsp."),
) -> None:
    """Beats, tempo, loudness, bands and valence/arousal of a track (streamed; any length)."""
    from engine.audio.analysis import analyze_track  # numpy and the decoder: when it runs, not for --help
    from engine.audio.io import probe

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
    if stems or stems_out is not None:  # issue 27
        with console.status("separating stems"):
            result["stems"] = stems_result(track, frame_every)
        out = stems_out or track.with_name(f"{track.stem}.stems.csv")
        write_stems(result["stems"], out)
        _stems_summary(console, result["stems"], out)
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


def _stems_summary(console: Console, stems: dict[str, Any], out: Path) -> None:
    import numpy as np

    from engine.types import STEM_NAMES

    frames = stems["frames"]
    if frames:
        means = "  ·  ".join(f"{n} {np.mean([f[n] for f in frames]):.2f}" for n in STEM_NAMES)
        console.print(f"stems (mean level, 1 = the mix's typical level): {means}  ·  "
                      f"{len(stems['onsets']['percussive'])} percussive onsets")
    console.print(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze)
