"""The beat network's training pipeline as a user runs it: the generator's scores, then
`scripts/train_beats.py` and `scripts/val_beats.py` (offline and `--live`) as commands, on a few
pieces written in `make_beat_data.py`'s format from synthesized drums (the generator's FluidSynth
rendering is not on CI machines; its scores and labels are checked here without it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf
from safetensors.numpy import save_file

from engine.audio.beatnet.features import features_of
from engine.audio.beatnet.net import load_net
from engine.audio.rhythms import SR, clicks, drums

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import make_beat_data  # noqa: E402


def test_generator_scores_are_reproducible_and_keep_the_held_out_styles_out(tmp_path):
    def score(seed: int, idx: int) -> bytes:
        rng = np.random.default_rng([seed, idx, 0])
        piece = make_beat_data.compose(rng, "train")
        times, _ = make_beat_data.beat_times(rng, piece.n_bars * piece.beats_per_bar, 100.0, piece.beats_per_bar)
        path = tmp_path / f"{seed}-{idx}.mid"
        make_beat_data.render_midi(piece, times, rng, path, lead=0.5)
        return path.read_bytes()

    assert score(4, 7) == score(4, 7)  # a seed makes the same piece
    assert score(4, 7) != score(5, 7)
    held = set(make_beat_data.DRUM_STYLES_HELDOUT + make_beat_data.ENSEMBLES_HELDOUT)
    seen_meters = set()
    for idx in range(300):
        piece = make_beat_data.compose(np.random.default_rng([1, idx, 0]), "train")
        assert piece.style not in held, piece.style
        seen_meters.add((piece.meter, piece.beats_per_bar, piece.sub))
    assert seen_meters == {("4/4", 4, 2), ("4/4", 4, 4), ("3/4", 3, 2), ("6/8", 2, 3), ("swing", 4, 2)}


def test_generator_notes_land_on_the_labelled_beats(tmp_path):
    """Every note of a piece starts on its score position mapped through the tempo curve (± the
    piece's timing jitter): the labels are the beats the music plays."""
    rng = np.random.default_rng([3, 11, 0])
    piece = make_beat_data.compose(rng, "train")
    n_beats = piece.n_bars * piece.beats_per_bar
    times, _ = make_beat_data.beat_times(rng, n_beats, 96.0, piece.beats_per_bar)
    path = tmp_path / "p.mid"
    make_beat_data.render_midi(piece, times, rng, path, lead=0.25)
    on = []
    now = 0.0
    for msg in mido.MidiFile(str(path)).tracks[0]:
        now += msg.time / make_beat_data.TICKS_PER_S
        if msg.type == "note_on":
            on.append(now)
    expected = sorted(0.25 + float(np.interp(n.start, np.arange(len(times)), times)) for n in piece.notes)
    assert len(on) == len(expected)
    assert np.median(np.abs(np.sort(on) - np.array(expected))) < 0.03  # jitter: σ ≤ 20 ms


def _write_pieces(folder: Path) -> None:
    """Six pieces in make_beat_data.py's format (features, labels, metadata, audio)."""
    folder.mkdir()
    tracks = [drums("four", 100.0, 14.0), drums("four", 128.0, 14.0, seed=1), clicks(90.0, 14.0),
              drums("four", 112.0, 14.0, seed=2), clicks(140.0, 14.0), drums("four", 84.0, 14.0, seed=3)]
    for i, r in enumerate(tracks):
        out = folder / f"piece_{i:05d}.safetensors"
        meta = {"meter": "4/4", "beats_per_bar": 4, "bpm": float(60.0 / np.median(np.diff(r.beats))), "style": r.name,
                "percussion": True, "curve": "constant", "seconds": len(r.samples) / SR}
        save_file({"x": features_of(r.samples).astype(np.float16), "beats": np.asarray(r.beats, np.float64),
                   "downbeats": np.ascontiguousarray(r.downbeats, np.float64)}, str(out),
                  metadata={"meta": json.dumps(meta)})
        sf.write(str(out.with_suffix(".wav")), r.samples, SR, subtype="PCM_16")


def _run(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_train_then_validate_offline_and_live(tmp_path):
    data = tmp_path / "data"
    _write_pieces(data)
    for variant in ("offline", "causal"):
        out = tmp_path / f"{variant}.safetensors"
        log = _run("scripts/train_beats.py", "--data", str(data), "--variant", variant, "--channels", "8", "--layers", "3",
                   "--minutes", "0.03", "--seed", "3", "--out", str(out))
        assert "4 pieces" in log and "1 for validation" in log and "\"epoch\": 1" in log  # the newest file waits for its writer
        net = load_net(out)  # the weights load as the show loads them
        assert net.cfg.variant == variant and net.cfg.channels == 8
        report = tmp_path / f"{variant}.json"
        args = ["scripts/val_beats.py", "--weights", str(out), "--data", str(data), "--every", "1", "--out", str(report)]
        _run(*args, *(["--live"] if variant == "causal" else []))
        result = json.loads(report.read_text())
        assert result["pieces"] == 6 and len(result["rows"]) == 6 and result["live"] == (variant == "causal")
        assert all(0.0 <= result["mean"][k] <= 1.0 for k in ("beat_f", "cmlt", "amlt", "tempo_ok"))
        assert result["command"].startswith("python scripts/val_beats.py --weights")
        if variant == "causal":
            assert "pulse_err_ms" in result["mean"]
        else:
            assert "meter_ok" in result["mean"]


def test_long_training_excerpts_take_a_short_piece_whole_played_faster_or_slower():
    """`--crop-seconds` longer than a piece: the piece comes whole, from its first frame, stretched as
    any excerpt is, its labels moved with it, then silence."""
    import train_beats

    n = 700
    x = np.tile(np.arange(n, dtype=np.float16)[:, None], (1, 80))  # a feature row holds its frame index
    beats = np.arange(10.0, n, 50.0)
    piece = train_beats.Piece(x, train_beats.targets(n, beats, beats[::4]), beats, beats[::4], 90.0)
    seen = set()
    for seed in range(12):
        feats, y = train_beats.crop(piece, np.random.default_rng(seed), stretch=0.2, size=1000)
        assert feats.shape == (1000, 80) and y.shape == (1000, 2)
        used = int(np.count_nonzero(feats[:, 0])) + 1  # frame 0's row is 0
        f = (n - 1) / max(1, used - 1) if used < 1000 else 1.0
        assert feats[0, 0] == 0 and np.all(feats[used:] == 0)  # from the first frame; silence after
        np.testing.assert_allclose(feats[:used, 0], np.arange(used) * f, atol=0.02 * n)
        on = np.nonzero(y[:, 0] == 1.0)[0]
        np.testing.assert_allclose(on, np.round(beats[: len(on)] / f), atol=1)  # the labels moved with it
        seen.add(round(f, 2))
    assert len(seen) > 3  # most excerpts are played at another tempo
