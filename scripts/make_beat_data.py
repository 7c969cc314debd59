#!/usr/bin/env python
"""Synthesize beat/downbeat training data with exact labels, reproducibly from a seed.

    scripts/make_beat_data.py --hours 3 --seed 1 --out /work/beatdata/train
    scripts/make_beat_data.py --hours 0.25 --seed 2 --out /work/beatdata/heldout --split heldout --audio

Each piece is a generated arrangement (drum patterns of many styles, or — for about half the pieces —
no percussion at all: strings, pads, piano, choir, orchestral sections with soft attacks; plus bass,
chords and melody) in 4/4, 3/4, 6/8 or swung 4/4, on a tempo curve (constant, ramp, rubato, a tempo
change, fermatas), with expressive timing jitter and dynamics. It is written as MIDI (mido) and
rendered by FluidSynth through a General MIDI soundfont from the Debian archive, then augmented
(reverb, EQ, compression, noise, band limits, level) and turned into the model's input features
(`engine.audio.beatnet.features`, 100 frames/s). No recorded music is used.

Per piece: `DIR/piece_NNNNN.safetensors` holding `x` (frames × features, float16), `beats` and
`downbeats` (seconds, float64; the score's beat positions, before timing jitter) and metadata;
with `--audio` also `piece_NNNNN.wav` (48 kHz mono, 16-bit). `DIR/manifest.json` lists hours,
pieces, tempos, meters, styles and soundfonts.

Splits: `train` renders with FluidR3_GM (fluid-soundfont-gm) and never uses the held-out styles
(bossa, march drums; choir and harp-only ensembles) nor base tempos in [104, 112) BPM; `heldout`
renders with TimGM6mb (timgm6mb-soundfont), uses those styles and draws a third of its tempos from
that band. Needs `apt-get install fluidsynth fluid-soundfont-gm timgm6mb-soundfont`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import mido
import numpy as np
from safetensors.numpy import save_file
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.audio.beatnet.features import features_of  # noqa: E402
from engine.types import SAMPLE_RATE  # noqa: E402

SOUNDFONTS = {
    "train": ["/usr/share/sounds/sf2/FluidR3_GM.sf2"],
    "heldout": ["/usr/share/sounds/sf2/TimGM6mb.sf2"],
}
HELDOUT_BAND = (104.0, 112.0)
TICKS_PER_S = 960  # MIDI at 120 BPM with 480 ticks per quarter: ticks are ~1 ms


# ---------------------------------------------------------------------------- the score
@dataclass
class Note:
    start: float  # in beats (score time)
    dur: float  # in beats
    pitch: int
    vel: int
    chan: int


@dataclass
class Piece:
    meter: str  # "4/4", "3/4", "6/8", "swing"
    beats_per_bar: int  # beats as labelled: 6/8 has 2 dotted-quarter beats per bar
    sub: int  # subdivisions of a beat (2 or 4; 3 in 6/8)
    n_bars: int
    style: str
    drums: bool
    programs: dict[int, int] = field(default_factory=dict)  # channel → GM program
    notes: list[Note] = field(default_factory=list)


DRUM_STYLES_TRAIN = ["rock", "pop", "disco", "hiphop", "funk", "reggae", "halftime", "breakbeat",
                     "punk", "shuffle", "jazz", "waltz", "sixeight", "sparse"]
DRUM_STYLES_HELDOUT = ["bossa", "march"]
ENSEMBLES_TRAIN = ["strings", "pad", "piano", "orchestra", "organ", "guitar", "woodwinds", "brass"]
ENSEMBLES_HELDOUT = ["choir", "harp"]
KICK, SNARE, HAT, OPEN_HAT, RIDE, CLAP, RIM, TOM, CRASH, SHAKER = 36, 38, 42, 46, 51, 39, 37, 45, 49, 70

SCALES = {"major": [0, 2, 4, 5, 7, 9, 11], "minor": [0, 2, 3, 5, 7, 8, 10]}
PROGRESSIONS = [[0, 4, 5, 3], [0, 5, 3, 4], [0, 3, 4, 4], [5, 3, 0, 4], [0, 0, 3, 4], [0, 3, 0, 4],
                [1, 4, 0, 0], [0, 4, 5, 2, 3, 0, 3, 4]]


def _drum_pattern(style: str, bpb: int, sub: int, rng: np.random.Generator) -> list[tuple[float, int, int]]:
    """(beat offset within the bar, drum note, velocity) for one bar."""
    hits: list[tuple[float, int, int]] = []
    steps = bpb * sub

    def add(step: float, note: int, vel: int) -> None:
        hits.append((step / sub, note, vel))

    if style in ("waltz",) or bpb == 3:
        add(0, KICK, 110)
        for b in range(1, bpb):
            add(b * sub, SNARE if rng.random() < 0.7 else HAT, 80)
        for s in range(steps):
            if rng.random() < 0.5:
                add(s, HAT, 60)
        return hits
    if style == "sixeight" or sub == 3:
        add(0, KICK, 110)
        add(sub * (bpb - 1) if bpb > 1 else 1.5 * sub, SNARE, 95)
        for s in range(steps):
            add(s, HAT if rng.random() < 0.8 else RIDE, 70 if s % sub else 90)
        return hits
    hat = RIDE if style == "jazz" else (SHAKER if style == "bossa" else HAT)
    hat_every = 1 if style in ("funk", "disco", "breakbeat", "hiphop") and sub == 4 else max(1, sub // 2)
    for s in range(0, steps, hat_every):
        add(s, OPEN_HAT if style == "disco" and s % sub == sub // 2 else hat, 85 if s % sub == 0 else 55)
    for b in range(bpb):
        s = b * sub
        if style in ("disco", "march"):
            add(s, KICK, 110)
        if style == "halftime":
            if b == 0:
                add(s, KICK, 115)
            if b == 2:
                add(s, SNARE, 110)
            continue
        if style == "reggae":  # one drop: kick and rim on 3
            if b == 2:
                add(s, KICK, 110)
                add(s, RIM, 100)
            continue
        if style == "bossa":
            if b % 2 == 0:
                add(s, KICK, 95)
            add(s + (sub * 3) // 4 if sub == 4 else s + 1, RIM, 80)
            continue
        if style == "jazz":
            if b % 2 == 1:
                add(s, 44, 70)  # pedal hat on 2 and 4
            continue
        if b % 2 == 0 and style not in ("disco", "march"):
            add(s, KICK, 110)
        if b % 2 == 1:
            add(s, CLAP if style in ("hiphop", "disco") and rng.random() < 0.5 else SNARE, 105)
    if style in ("funk", "breakbeat", "hiphop", "rock", "pop") and sub >= 2:  # syncopated kicks
        for _ in range(rng.integers(1, 3)):
            add(int(rng.integers(0, steps)) | 1 if sub > 1 else 0, KICK, 90)
    if style == "march":
        for s in range(steps):
            if rng.random() < 0.4:
                add(s, SNARE, 60)
    if style == "sparse":
        hits = [h for h in hits if rng.random() < 0.5] + [(0.0, KICK, 100)]
    return hits


def _chord(root_deg: int, scale: list[int], key: int) -> list[int]:
    return [key + scale[(root_deg + k) % 7] + 12 * ((root_deg + k) // 7) for k in (0, 2, 4)]


def compose(rng: np.random.Generator, split: str) -> Piece:
    r = rng.random()
    if r < 0.45:
        meter, bpb, sub = "4/4", 4, int(rng.choice([2, 4]))
    elif r < 0.7:
        meter, bpb, sub = "3/4", 3, 2
    elif r < 0.88:
        meter, bpb, sub = "6/8", 2, 3
    else:
        meter, bpb, sub = "swing", 4, 2
    drums = rng.random() < 0.5
    held = split == "heldout"
    if drums:
        pool = DRUM_STYLES_HELDOUT + DRUM_STYLES_TRAIN[:4] if held else DRUM_STYLES_TRAIN
        style = str(rng.choice(pool))
        if bpb == 3:
            style = "waltz"
        elif sub == 3:
            style = "sixeight"
        elif meter == "swing":
            style = str(rng.choice(["shuffle", "jazz"]))
    else:
        style = str(rng.choice(ENSEMBLES_HELDOUT + ENSEMBLES_TRAIN[:4] if held else ENSEMBLES_TRAIN))
    piece = Piece(meter, bpb, sub, int(rng.integers(8, 20)), style, drums)
    key = int(rng.integers(40, 52))
    scale = SCALES[str(rng.choice(list(SCALES)))]
    prog = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    bar_len = float(bpb)
    chords_per_bar = 2 if rng.random() < 0.2 and bpb == 4 else 1

    ens = {  # (chord program, bass program, melody program, chord style)
        "strings": (48, 42, 40, "sustain"), "pad": (89, 38, 81, "sustain"), "piano": (0, 32, 0, "arp"),
        "orchestra": (49, 43, 73, "sustain"), "organ": (19, 32, 16, "sustain"), "guitar": (24, 32, 25, "strum"),
        "woodwinds": (71, 70, 68, "sustain"), "brass": (61, 58, 56, "pulse"), "choir": (52, 52, 53, "sustain"),
        "harp": (46, 46, 46, "arp"),
    }
    if drums:
        chord_prog = int(rng.choice([0, 4, 5, 24, 27, 48, 89, 16, 61]))
        bass_prog = int(rng.choice([32, 33, 34, 38, 39, 36]))
        mel_prog = int(rng.choice([0, 11, 25, 56, 65, 73, 80, 81, 40]))
        chord_style = str(rng.choice(["sustain", "pulse", "strum", "arp"]))
    else:
        chord_prog, bass_prog, mel_prog, chord_style = ens[style]
        if rng.random() < 0.3:
            chord_style = str(rng.choice(["sustain", "arp", "pulse"]))
    piece.programs = {0: chord_prog, 1: bass_prog, 2: mel_prog}
    sustained = chord_style == "sustain"
    use_melody = rng.random() < 0.8
    use_bass = rng.random() < 0.85
    soft = not drums and rng.random() < 0.5  # soft attacks: quiet, legato, swelling
    base_vel = int(rng.integers(55, 100))

    for bar in range(piece.n_bars):
        t0 = bar * bar_len
        cresc = 1.0 + 0.3 * np.sin(2 * np.pi * bar / max(4, piece.n_bars / 2) + rng.random())
        for c in range(chords_per_bar):
            deg = prog[(bar * chords_per_bar + c) % len(prog)]
            notes = _chord(deg, scale, key + 12)
            cs, cl = t0 + c * bar_len / chords_per_bar, bar_len / chords_per_bar
            vel = int(np.clip(base_vel * cresc * (0.7 if soft else 1.0), 20, 127))
            if chord_style == "sustain":
                for p in notes:
                    piece.notes.append(Note(cs, cl * 0.98, p, vel, 0))
            elif chord_style in ("pulse", "strum"):
                for b in range(int(cl)):
                    for j, p in enumerate(notes):
                        acc = 1.15 if b == 0 else 1.0
                        piece.notes.append(Note(cs + b + 0.01 * j * (chord_style == "strum"), 0.8, p,
                                                int(min(127, vel * acc)), 0))
            else:  # arpeggio on the subdivisions
                n_steps = int(cl * sub)
                for s in range(n_steps):
                    p = notes[s % 3] + (12 if (s // 3) % 2 else 0)
                    piece.notes.append(Note(cs + s / sub, 1.5 / sub, p, int(vel * (1.1 if s % sub == 0 else 0.85)), 0))
            if use_bass:
                root = key - 12 + scale[deg % 7]
                if sustained and not drums:
                    piece.notes.append(Note(cs, cl * 0.95, root, vel, 1))
                else:
                    for b in range(int(cl)):
                        p = root if b % 2 == 0 else root + (7 if rng.random() < 0.5 else 12)
                        piece.notes.append(Note(cs + b, 0.9, p, int(vel * (1.15 if b == 0 else 0.95)), 1))
        if use_melody:
            pos = 0.0
            deg = int(rng.integers(0, 7))
            while pos < bar_len - 1e-6:
                dur = float(rng.choice([1.0, 0.5, 2.0, 1.5] if sub != 3 else [1 / 3, 2 / 3, 1.0]))
                dur = min(dur, bar_len - pos)
                deg = int(np.clip(deg + rng.integers(-2, 3), -3, 12))
                p = key + 24 + scale[deg % 7] + 12 * (deg // 7)
                if rng.random() < 0.85:
                    piece.notes.append(Note(t0 + pos, dur * 0.95, p, int(np.clip(base_vel * cresc, 20, 120)), 2))
                pos += dur
        if drums:
            for off, note, vel in _drum_pattern(style, bpb, sub, rng):
                piece.notes.append(Note(t0 + off, 0.1, note, int(np.clip(vel * cresc * 0.9, 10, 127)), 9))
            if bar % 4 == 0 and rng.random() < 0.5:
                piece.notes.append(Note(t0, 0.1, CRASH, 100, 9))
    if meter == "swing":  # second eighth of each beat to 2/3
        for n in piece.notes:
            frac = n.start % 1.0
            if abs(frac - 0.5) < 1e-6:
                n.start += 1.0 / 6.0
    return piece


# ---------------------------------------------------------------------------- time
def beat_times(rng: np.random.Generator, n_beats: int, base_bpm: float, bpb: int) -> tuple[np.ndarray, str]:
    """Times (s) of beats 0..n_beats on a tempo curve (the beat after the last closes the piece)."""
    kind = str(rng.choice(["constant", "ramp", "rubato", "change", "fermata"], p=[0.35, 0.2, 0.2, 0.15, 0.1]))
    i = np.arange(n_beats + 1, dtype=np.float64)
    bpm = np.full(n_beats + 1, base_bpm)
    if kind == "ramp":
        bpm = base_bpm * np.linspace(1.0, float(rng.uniform(0.8, 1.25)), n_beats + 1)
    elif kind == "rubato":
        depth = rng.uniform(0.03, 0.1)
        for _ in range(3):
            bpm *= 1 + depth / 3 * np.sin(2 * np.pi * i / rng.uniform(4, 24) + rng.uniform(0, 6.3))
    elif kind == "change":
        at = int(rng.integers(n_beats // 3, 2 * n_beats // 3)) // bpb * bpb
        bpm[at:] *= float(rng.choice([0.75, 0.85, 1.15, 1.3]))
    periods = 60.0 / bpm
    if kind == "fermata":  # a held beat at the end of a few bars, and a ritardando into it
        for _ in range(int(rng.integers(1, 3))):
            b = int(rng.integers(1, max(2, n_beats // bpb))) * bpb - 1
            if 0 <= b < n_beats:
                periods[b] *= rng.uniform(1.8, 3.0)
                periods[max(0, b - 2) : b] *= 1.15
    t = np.concatenate([[0.0], np.cumsum(periods[:-1])])
    return t, kind


def render_midi(piece: Piece, times: np.ndarray, rng: np.random.Generator, path: Path, lead: float) -> None:
    """MIDI with every note placed on the tempo curve (+ jitter), in absolute seconds."""
    jitter = rng.uniform(0.0, 0.02)

    def at(beat: float) -> float:
        return lead + float(np.interp(beat, np.arange(len(times)), times))

    events: list[tuple[int, int, mido.Message]] = []
    for ch, prog in piece.programs.items():
        events.append((0, 0, mido.Message("program_change", channel=ch, program=prog)))
    for ch in range(16):
        events.append((0, 0, mido.Message("control_change", channel=ch, control=91, value=int(rng.integers(0, 60)))))
    for n in piece.notes:
        on = at(n.start) + rng.normal(0, jitter)
        off = at(n.start + n.dur)
        vel = int(np.clip(n.vel + rng.normal(0, 6), 1, 127))
        on_t = max(0, int(round(on * TICKS_PER_S)))
        off_t = max(on_t + 20, int(round(off * TICKS_PER_S)))
        events.append((on_t, 1, mido.Message("note_on", channel=n.chan, note=n.pitch, velocity=vel)))
        events.append((off_t, 0, mido.Message("note_off", channel=n.chan, note=n.pitch, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
    now = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=TICKS_PER_S))
    mid.save(str(path))


def synthesize(midi: Path, wav: Path, soundfont: str, gain: float) -> np.ndarray:
    subprocess.run(["fluidsynth", "-ni", "-q", "-g", f"{gain:.2f}", "-r", str(SAMPLE_RATE), "-R", "0",
                    "-C", "0", "-F", str(wav), soundfont, str(midi)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import soundfile as sf

    audio, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    assert sr == SAMPLE_RATE
    return audio.mean(axis=1)


# ---------------------------------------------------------------------------- augmentation
def augment(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    sr, done = SAMPLE_RATE, []
    if rng.random() < 0.6:  # reverb: exponentially decaying noise
        rt60 = rng.uniform(0.2, 2.5)
        n = int(rt60 * sr)
        ir = rng.standard_normal(n).astype(np.float32) * np.exp(-6.9 * np.arange(n) / n).astype(np.float32)
        ir /= np.sqrt(np.sum(ir**2))
        wet = signal.fftconvolve(x, ir)[: len(x)].astype(np.float32)
        mix = rng.uniform(0.1, 0.6)
        x = (1 - mix) * x + mix * wet
        done.append(f"reverb{rt60:.1f}")
    if rng.random() < 0.5:  # EQ: a random peak/dip
        f0 = np.exp(rng.uniform(np.log(80), np.log(8000)))
        g = 10 ** (rng.uniform(-12, 12) / 20)
        b, a = signal.iirpeak(f0, Q=rng.uniform(0.7, 3), fs=sr)
        x = (x + (g - 1) * signal.lfilter(b, a, x)).astype(np.float32)
        done.append("eq")
    if rng.random() < 0.3:  # band limits (telephone, laptop speaker, muffled)
        lo, hi = rng.uniform(80, 400), rng.uniform(2500, 9000)
        sos = signal.butter(4, [lo, hi], btype="band", fs=sr, output="sos")
        x = signal.sosfilt(sos, x).astype(np.float32)
        done.append("band")
    if rng.random() < 0.4:  # compression: a smoothed envelope drives the gain down
        env = np.sqrt(signal.lfilter([0.002], [1, -0.998], x * x) + 1e-9)
        thr = np.percentile(env, rng.uniform(30, 70))
        ratio = rng.uniform(2, 8)
        gain = np.where(env > thr, (env / thr) ** (1 / ratio - 1), 1.0)
        x = (x * gain).astype(np.float32)
        done.append("comp")
    peak = float(np.max(np.abs(x))) or 1.0
    x = x / peak * 10 ** (rng.uniform(-30, -1) / 20)
    if rng.random() < 0.4:  # noise: white or pink at 10–40 dB SNR
        noise = rng.standard_normal(len(x)).astype(np.float32)
        if rng.random() < 0.5:
            noise = signal.lfilter([0.05], [1, -0.95], noise).astype(np.float32)
        snr = rng.uniform(10, 40)
        p = float(np.mean(x**2)) + 1e-12
        x = x + noise * np.sqrt(p / (float(np.mean(noise**2)) * 10 ** (snr / 10)))
        done.append(f"noise{snr:.0f}")
    return np.clip(x, -1, 1).astype(np.float32), done


# ---------------------------------------------------------------------------- main
def make_piece(idx: int, seed: int, split: str, tmp: Path,
               soundfonts: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    rng = np.random.default_rng([seed, idx, 0 if split == "train" else 1])
    piece = compose(rng, split)
    while True:
        bpm = float(np.exp(rng.uniform(np.log(55 if piece.meter != "6/8" else 40), np.log(180 if piece.meter != "6/8" else 110))))
        if split == "heldout" and rng.random() < 1 / 3:
            bpm = float(rng.uniform(*HELDOUT_BAND))
        if split == "heldout" or not HELDOUT_BAND[0] <= bpm < HELDOUT_BAND[1]:
            break
    n_beats = piece.n_bars * piece.beats_per_bar
    times, curve = beat_times(rng, n_beats, bpm, piece.beats_per_bar)
    # The score counts in labelled beats (6/8: dotted quarters, 3 eighths each); this maps them to seconds.
    lead = float(rng.uniform(0.0, 1.5))
    fonts = soundfonts or SOUNDFONTS[split]
    sf = fonts[idx % len(fonts)]
    mid, wav = tmp / f"{idx}.mid", tmp / f"{idx}.wav"
    render_midi(piece, times, rng, mid, lead)
    audio = synthesize(mid, wav, sf, gain=0.4)
    audio, augs = augment(audio, rng)
    beats = lead + times[:n_beats]
    downbeats = np.ascontiguousarray(beats[:: piece.beats_per_bar])  # safetensors writes a strided view's buffer
    meta = {"meter": piece.meter, "beats_per_bar": piece.beats_per_bar, "bpm": round(bpm, 2), "curve": curve,
            "style": piece.style, "percussion": piece.drums, "soundfont": Path(sf).name,
            "augment": augs, "seconds": round(len(audio) / SAMPLE_RATE, 2)}
    return audio, beats, downbeats, meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--hours", type=float, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--split", choices=["train", "heldout"], default="train")
    ap.add_argument("--audio", action="store_true", help="also keep each piece's audio as a 48 kHz WAV")
    ap.add_argument("--soundfont", action="append", default=None,
                    help="render through these soundfonts instead (repeatable; pieces take turns), e.g. "
                         "/usr/share/sounds/sf3/MuseScore_General.sf3 /usr/share/sounds/sf2/sf_GMbank.sf2")
    args = ap.parse_args()
    fonts = args.soundfont or SOUNDFONTS[args.split]
    if args.split == "train" and any(Path(f).name in {Path(h).name for h in SOUNDFONTS["heldout"]} for f in fonts):
        sys.exit("make_beat_data: the held-out soundfont (TimGM6mb) must not render training data")
    if shutil.which("fluidsynth") is None or not all(Path(s).exists() for s in fonts):
        sys.exit("make_beat_data: needs FluidSynth and the soundfonts: apt-get install fluidsynth "
                 "fluid-soundfont-gm timgm6mb-soundfont (--soundfont: musescore-general-soundfont csound-soundfont)")
    args.out.mkdir(parents=True, exist_ok=True)
    pieces: list[dict] = []
    total, idx, t0 = 0.0, 0, time.time()
    with tempfile.TemporaryDirectory() as td:
        while total < args.hours * 3600:
            out = args.out / f"piece_{idx:05d}.safetensors"
            audio, beats, downbeats, meta = make_piece(idx, args.seed, args.split, Path(td), args.soundfont)
            x = features_of(audio).astype(np.float16)
            save_file({"x": x, "beats": beats, "downbeats": downbeats}, str(out),
                      metadata={"meta": json.dumps(meta)})
            if args.audio:
                import soundfile as sf

                sf.write(str(out.with_suffix(".wav")), audio, SAMPLE_RATE, subtype="PCM_16")
            meta["file"] = out.name
            pieces.append(meta)
            total += meta["seconds"]
            idx += 1
            if idx % 20 == 0:
                print(f"{idx} pieces, {total / 3600:.2f} h, {time.time() - t0:.0f} s", flush=True)
                _manifest(args, pieces, total)
    _manifest(args, pieces, total)
    print(f"done: {idx} pieces, {total / 3600:.2f} h in {time.time() - t0:.0f} s")


def _manifest(args: argparse.Namespace, pieces: list[dict], total: float) -> None:
    def count(key: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in pieces:
            out[str(p[key])] = out.get(str(p[key]), 0) + 1
        return out

    bpms = [p["bpm"] for p in pieces]
    manifest = {
        "generator": "scripts/make_beat_data.py", "seed": args.seed, "split": args.split,
        "hours": round(total / 3600, 3), "pieces": len(pieces),
        "tempos": {"min": min(bpms, default=0), "max": max(bpms, default=0), "median": float(np.median(bpms)) if bpms else 0},
        "meters": count("meter"), "styles": count("style"), "curves": count("curve"),
        "percussion_share": round(sum(p["percussion"] for p in pieces) / max(1, len(pieces)), 3),
        "soundfonts": count("soundfont"), "fps": 100, "features": "engine/audio/beatnet/features.py",
        "labels": "beats/downbeats in seconds; 6/8 counts 2 dotted-quarter beats per bar",
        "pieces_list": pieces,
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    main()
