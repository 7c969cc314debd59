"""The MP4 and the `beatcanvas export` command: frame count, fps, audio of the same span; CLI errors."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from engine.errors import BeatcanvasError
from live.cli import main
from live.export.video import encode_video


@pytest.fixture(scope="module")
def track(tmp_path_factory) -> Path:
    """3 s of stereo at 44.1 kHz (the video's audio is resampled to 48 kHz)."""
    sr = 44_100
    t = np.arange(3 * sr) / sr
    x = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2).astype(np.float32)
    p = tmp_path_factory.mktemp("audio") / "song.wav"
    sf.write(p, np.stack([x, x[::-1]], 1), sr)
    return p


def read_back(mp4: Path) -> dict:
    with av.open(str(mp4)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        info = {
            "codec": v.codec_context.name,
            "pix_fmt": v.codec_context.pix_fmt,
            "rate": v.average_rate,
            "size": (v.codec_context.width, v.codec_context.height),
            "video_s": float(v.duration * v.time_base),
            "audio_codec": a.codec_context.name,
            "audio_rate": a.codec_context.sample_rate,
            "audio_channels": a.codec_context.channels,
        }
        info["frames"] = sum(1 for _ in c.decode(video=0))
    with av.open(str(mp4)) as c:
        info["audio_s"] = sum(f.samples for f in c.decode(audio=0)) / info["audio_rate"]
    return info


def test_cli_export_writes_frames_and_an_mp4_with_the_span_audio(track, tmp_path, capsys):
    out, mp4 = tmp_path / "frames", tmp_path / "clip.mp4"
    rc = main([
        "export", str(track), "--out", str(out), "--video", str(mp4), "--size", "64x48",
        "--renderer", "procedural", "--start", "0.5", "--end", "2.5", "--fps", "24",
    ])
    assert rc == 0, capsys.readouterr().err
    assert len(list(out.glob("frame_*.png"))) == 48
    info = read_back(mp4)
    assert info["frames"] == 48 and info["rate"] == Fraction(24)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p" and info["size"] == (64, 48)
    assert info["audio_codec"] == "aac" and info["audio_channels"] == 2
    assert info["video_s"] == pytest.approx(2.0, abs=1e-6)
    # AAC adds encoder priming (~1024 samples); within one frame of the video either way.
    assert abs(info["audio_s"] - info["video_s"]) < 1 / 24


def test_video_at_a_fractional_fps_keeps_its_rate_and_audio_span(track, tmp_path):
    frames = []

    def fake(i: int) -> Path:
        return frames[i]

    import pygame

    for i in range(10):
        s = pygame.Surface((32, 16))
        s.fill((i * 20, 100, 200 - i * 15))
        p = tmp_path / f"f{i}.png"
        pygame.image.save(s, str(p))
        frames.append(p)
    a = encode_video(fake, 10, 29.97, tmp_path / "a.mp4", track, 1.0)
    info = read_back(a)
    assert info["frames"] == 10 and info["rate"] == Fraction(2997, 100)
    assert abs(info["audio_s"] - 10 / 29.97) < 1 / 29.97


def test_video_errors(track, tmp_path):
    import pygame

    p = tmp_path / "odd.png"
    pygame.image.save(pygame.Surface((33, 16)), str(p))
    with pytest.raises(BeatcanvasError, match="even width and height"):
        encode_video([p], 1, 30, tmp_path / "x.mp4", track)
    with pytest.raises(BeatcanvasError, match=r"\.mp4"):
        encode_video([p], 1, 30, tmp_path / "x.avi", track)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--fps", "0"], "--fps must be a positive"),
        (["--start", "2", "--end", "1"], "is not after --start"),
        (["--size", "64by48"], "--size"),
        (["--size", "65x48", "--video", "x.mp4"], "even width and height"),
        (["--profile", "huge"], "--profile"),
    ],
)
def test_cli_bad_arguments_print_one_line_and_exit_1(track, tmp_path, capsys, args, message):
    rc = main(["export", str(track), "--out", str(tmp_path / "o"), "--renderer", "procedural", *args])
    err = capsys.readouterr().err
    assert rc == 1 and message in err and "Traceback" not in err


def test_cli_refuses_changed_settings_then_force(track, tmp_path, capsys):
    out = tmp_path / "o"
    base = ["export", str(track), "--out", str(out), "--size", "64x48", "--renderer", "procedural", "--end", "0.5"]
    assert main(base) == 0
    assert main([*base, "--seed", "5"]) == 1
    assert "--force" in capsys.readouterr().err
    assert main([*base, "--seed", "5", "--force"]) == 0


@pytest.mark.slow
def test_cli_tiny_profile_twice_is_byte_identical(track, tmp_path):
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        assert main([
            "export", str(track), "--out", str(out), "--size", "64x64", "--profile", "tiny",
            "--renderer", "sdxl", "--end", "1", "--fps", "4",
        ]) == 0
    a = sorted(outs[0].glob("frame_*.png"))
    assert len(a) == 4
    assert [p.read_bytes() for p in a] == [(outs[1] / p.name).read_bytes() for p in a]
