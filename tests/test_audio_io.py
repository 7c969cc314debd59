"""Decoding, downmix, resampling and windows (engine/audio/io.py), including bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.audio.io import iter_audio_blocks, load_audio, probe, window_at
from engine.errors import BeatcanvasError


def _dominant_freq(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)])


def test_stereo_22k_sine_becomes_48k_mono_window_at_same_frequency(tmp_path: Path) -> None:
    sr = 22_050
    t = np.arange(int(3.0 * sr)) / sr
    left = 0.5 * np.sin(2 * np.pi * 440.0 * t)
    stereo = np.stack([left, left], axis=1).astype(np.float32)
    path = tmp_path / "sine.wav"
    sf.write(path, stereo, sr)

    mono = load_audio(path)
    assert mono.dtype == np.float32 and mono.ndim == 1
    assert abs(len(mono) - 3.0 * 48_000) <= 2
    w = window_at(mono, t_end=3.0, seconds=2.0)
    assert w.sample_rate == 48_000 and len(w.samples) == 96_000 and w.t_end == 3.0
    assert abs(_dominant_freq(w.samples, 48_000) - 440.0) < 2.0
    assert 0.45 < np.abs(w.samples).max() < 0.55  # downmix averages, it does not sum


def test_resampler_is_anti_aliased(tmp_path: Path) -> None:
    """A 20 kHz tone at 44.1 kHz must not fold back into the audible band when downsampled to 16 kHz."""
    sr = 44_100
    t = np.arange(sr) / sr
    sf.write(tmp_path / "hi.wav", (0.5 * np.sin(2 * np.pi * 20_000 * t)).astype(np.float32), sr)
    y = load_audio(tmp_path / "hi.wav", sample_rate=16_000)
    assert np.sqrt(np.mean(y[2000:-2000] ** 2)) < 0.01


def test_window_is_zero_padded_at_track_start() -> None:
    x = np.ones(48_000 * 2, dtype=np.float32)
    w = window_at(x, t_end=2.0)
    assert len(w.samples) == 480_000
    assert np.all(w.samples[:-96_000] == 0) and np.all(w.samples[-96_000:] == 1)


def test_blocks_stream_equals_whole_decode(tmp_path: Path) -> None:
    sr = 44_100
    x = np.random.default_rng(0).standard_normal(sr * 2).astype(np.float32) * 0.1
    sf.write(tmp_path / "n.flac", x, sr)
    blocks = list(iter_audio_blocks(tmp_path / "n.flac", 480))
    assert all(len(b) == 480 for b in blocks[:-1]) and 0 < len(blocks[-1]) <= 480
    np.testing.assert_allclose(np.concatenate(blocks), load_audio(tmp_path / "n.flac"), atol=1e-6)


@pytest.mark.parametrize("fmt", ["OGG", "MP3", "FLAC"])
def test_compressed_formats_decode(tmp_path: Path, fmt: str) -> None:
    sr = 44_100
    t = np.arange(sr) / sr
    path = tmp_path / f"s.{fmt.lower()}"
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr, format=fmt)
    y = load_audio(path)
    assert abs(len(y) / 48_000 - 1.0) < 0.1
    assert abs(_dominant_freq(y, 48_000) - 440.0) < 3.0


@pytest.mark.parametrize("sr", [8_000, 192_000])
def test_extreme_sample_rates_are_resampled(tmp_path: Path, sr: int) -> None:
    t = np.arange(sr) / sr
    sf.write(tmp_path / "s.wav", (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), sr)
    y = load_audio(tmp_path / "s.wav")
    assert abs(len(y) - 48_000) <= 2
    assert abs(_dominant_freq(y, 48_000) - 1000.0) < 2.0


def test_nan_signal_is_silenced_not_propagated(tmp_path: Path) -> None:
    x = np.full(4800, np.nan, dtype=np.float32)
    x[:100] = 0.5
    sf.write(tmp_path / "nan.wav", x, 48_000, subtype="FLOAT")
    y = load_audio(tmp_path / "nan.wav")
    assert np.all(np.isfinite(y)) and y[0] == pytest.approx(0.5)


def test_long_file_streams_without_loading(tmp_path: Path) -> None:
    """A file longer than load_audio allows is refused by load_audio but streams block by block."""
    path = tmp_path / "long.wav"
    with sf.SoundFile(path, "w", samplerate=8_000, channels=1, subtype="PCM_U8") as f:
        # 31 minutes at 8 kHz, 8-bit: 15 MB on disk, written in chunks
        chunk = np.zeros(8_000 * 60, dtype=np.float32)
        for _ in range(31):
            f.write(chunk)
    with pytest.raises(BeatcanvasError, match="too long to load"):
        load_audio(path)
    it = iter_audio_blocks(path, 48_000)
    first = next(it)
    assert len(first) == 48_000
    assert probe(path).duration == pytest.approx(31 * 60)


def _bad_inputs(tmp: Path) -> dict[str, Path]:
    (tmp / "empty.wav").write_bytes(b"")
    (tmp / "garbage.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really a wave file" * 10)
    (tmp / "notes.txt").write_text("this is not audio\n" * 50)
    (tmp / "adir").mkdir()
    good = tmp / "good.wav"
    sf.write(good, np.zeros(48_000, dtype=np.float32), 48_000)
    (tmp / "truncated.flac").write_bytes(b"fLaC" + b"\x00" * 40)
    return {
        "empty": tmp / "empty.wav",
        "corrupt": tmp / "garbage.wav",
        "unsupported": tmp / "notes.txt",
        "directory": tmp / "adir",
        "missing": tmp / "nope.wav",
        "truncated": tmp / "truncated.flac",
    }


@pytest.mark.parametrize("kind", ["empty", "corrupt", "unsupported", "directory", "missing", "truncated"])
def test_bad_files_give_one_line_error(tmp_path: Path, kind: str) -> None:
    path = _bad_inputs(tmp_path)[kind]
    with pytest.raises(BeatcanvasError) as e:
        list(iter_audio_blocks(path, 480))
    msg = str(e.value)
    assert "\n" not in msg and path.name in msg


def test_truncated_wav_decodes_what_is_there(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    sf.write(path, np.full(48_000, 0.25, dtype=np.float32), 48_000, subtype="FLOAT")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # header still claims 1 s
    y = load_audio(path)
    assert 0 < len(y) <= 48_000 and np.all(np.isfinite(y))
