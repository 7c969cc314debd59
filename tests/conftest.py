"""Shared test set-up: no network, no screen, no sound card, deterministic torch."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def tiny_components():
    """(ClapBundle, TextEncoders, SDXLComponents) of the tiny profile, built once per test run."""
    from engine.models.profiles import build_tiny_all

    return build_tiny_all()


@pytest.fixture(scope="session")
def clicks_wav(tmp_path_factory):
    """A 6 s, 120 BPM click track on disk (export and cluster tests)."""
    import soundfile as sf

    from audio_synth import SR, click_track

    path = tmp_path_factory.mktemp("clicks") / "clicks.wav"
    audio, _ = click_track(bpm=120.0, seconds=6.0)
    sf.write(path, audio, SR)
    return path
