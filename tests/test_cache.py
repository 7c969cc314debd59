"""Every stage keeps regenerable files in one folder, chosen the same way."""

from pathlib import Path

from engine.models.cache import cache_dir


def test_cache_dir_order(monkeypatch, tmp_path):
    monkeypatch.delenv("BEATCANVAS_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_dir() == Path.home() / ".cache" / "beatcanvas"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "beatcanvas"
    monkeypatch.setenv("BEATCANVAS_CACHE", "~/bc-cache")
    assert cache_dir() == Path.home() / "bc-cache"  # wins, with ~ expanded
