"""The demo track: deterministic, ~60 s, and an arc the visuals can follow (soft minor → loud major)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from engine.audio.demo import demo_sections, demo_track, ensure_demo_track, write_demo_track

SR = 48_000


@pytest.fixture(scope="module")
def track() -> np.ndarray:
    return demo_track(60, SR, seed=0)


def _section(x: np.ndarray, name: str, seconds: float = 60) -> np.ndarray:
    s = next(s for s in demo_sections(seconds) if s.name == name)
    return x[int(s.start * SR) : int(s.end * SR)]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def _onsets_per_s(x: np.ndarray, n_fft: int = 1024, hop: int = 512) -> float:
    """Spectral-flux peaks per second (threshold relative to the whole track's flux)."""
    n = 1 + (len(x) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n)[:, None]
    mag = np.log1p(100 * np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft), axis=1)))
    flux = np.maximum(np.diff(mag, axis=0), 0).sum(1)
    return flux


def _pitch_class_energy(x: np.ndarray) -> np.ndarray:
    spec = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    band = (freqs > 100) & (freqs < 1500)
    pcs = np.round(12 * np.log2(freqs[band] / 440.0) + 69).astype(int) % 12
    return np.bincount(pcs, weights=spec[band], minlength=12)


def test_length_range_and_type(track: np.ndarray) -> None:
    assert track.dtype == np.float32 and track.ndim == 1
    assert len(track) == 60 * SR
    assert np.isfinite(track).all() and 0.5 < np.abs(track).max() <= 1.0


def test_deterministic_per_seed(track: np.ndarray) -> None:
    assert np.array_equal(track, demo_track(60, SR, seed=0))
    assert not np.array_equal(demo_track(10, SR, seed=1), demo_track(10, SR, seed=2))


def test_arc_intro_soft_drop_loud_with_more_onsets(track: np.ndarray) -> None:
    names = [s.name for s in demo_sections(60)]
    assert names == ["intro", "build", "drop"]
    intro, build, drop = (_section(track, n) for n in names)
    assert _rms(drop) > 2.5 * _rms(intro)  # the drop is clearly louder (> 8 dB)
    assert _rms(intro) < _rms(build) < _rms(drop)  # the build builds

    flux = _onsets_per_s(track)
    thr = np.median(flux) + 3 * np.std(flux)
    peaks = np.r_[False, (flux[1:-1] > flux[:-2]) & (flux[1:-1] >= flux[2:]), False] & (flux > thr)
    t = (np.arange(len(flux)) + 1) * 512 / SR
    rate = {}
    for s in demo_sections(60):
        m = (t >= s.start) & (t < s.end)
        rate[s.name] = peaks[m].sum() / (s.end - s.start)
    assert rate["intro"] < 0.5  # a pad: hardly any attacks
    assert rate["drop"] > 1.5  # drums at 124 BPM: at least a hit per beat
    assert rate["drop"] > 5 * rate["intro"]


def test_intro_is_minor_and_drop_is_major(track: np.ndarray) -> None:
    # A natural minor and A major differ in three notes: C F G (minor) vs C# F# G# (major).
    minor_only, major_only = [0, 5, 7], [1, 6, 8]
    intro = _pitch_class_energy(_section(track, "intro"))
    drop = _pitch_class_energy(_section(track, "drop"))
    assert intro[minor_only].sum() > 10 * intro[major_only].sum()
    assert drop[major_only].sum() > 2 * drop[minor_only].sum()  # drums add broadband energy everywhere


def test_a_feature_tracker_hears_the_arc(track: np.ndarray) -> None:
    """End to end with the audio engineer's tracker: what the procedural renderer will be fed."""
    from engine.audio.features import FeatureTracker

    tracker = FeatureTracker(SR, 480)
    by_section: dict[str, list] = {"intro": [], "build": [], "drop": []}
    sections = demo_sections(60)
    for i in range(0, len(track) - 480 + 1, 480):
        t = (i + 480) / SR
        f = tracker.process(track[i : i + 480], t)
        name = next(s.name for s in sections if s.start <= t <= s.end)
        by_section[name].append((f.valence, f.arousal))
    intro = np.array(by_section["intro"][len(by_section["intro"]) // 4 :])  # after the tracker settles
    drop = np.array(by_section["drop"][len(by_section["drop"]) // 4 :])
    assert intro[:, 0].mean() < -0.3 < 0.3 < drop[:, 0].mean()  # minor → major: cool → warm palette
    assert drop[:, 1].mean() > intro[:, 1].mean() + 0.4  # calm → energetic: slow → fast motion


def test_cached_copy_is_written_once(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BEATCANVAS_CACHE", str(tmp_path))
    path = ensure_demo_track(seconds=6)
    assert path.parent == tmp_path and path.suffix == ".wav"
    stamp = path.stat().st_mtime_ns
    assert ensure_demo_track(seconds=6) == path and path.stat().st_mtime_ns == stamp
    audio, sr = sf.read(str(path), dtype="float32")
    assert sr == SR and len(audio) == 6 * SR
    assert np.max(np.abs(audio - demo_track(6, SR))) < 1e-3  # 16-bit rounding only


def test_write_demo_track_other_rate(tmp_path) -> None:
    path = write_demo_track(tmp_path / "sub" / "demo.wav", seconds=4, sample_rate=44_100)
    info = sf.info(str(path))
    assert info.samplerate == 44_100 and abs(info.duration - 4) < 1e-3
