"""A rendered thumbnail per preset for the studio's library: a small frame drawn by the shader
renderer with the preset's own look (or, where no GL context can be made, the numpy renderer),
after a couple of seconds of a synthetic groove so the motifs have developed. Cached by the
preset's settings hash, in memory and as JPEGs in the cache folder; rendered on the caller's
thread (the server's worker), never on the show's.
"""

from __future__ import annotations

import io
import logging
import math
import threading
from pathlib import Path

import numpy as np

from engine.types import BeatGrid, Conditioning, Features
from live.presets.schema import Preset, preset_hash

log = logging.getLogger(__name__)

THUMB_SIZE = (192, 108)
FRAMES = 48  # 2 s at 24 fps
VERSION = 2  # part of the cache key: bump when the thumbnail's recipe changes


def groove(i: int, fps: float = 24.0) -> Features:
    """A steady 120 BPM groove with a kick on every beat, for thumbnails."""
    t = i / fps
    phase = (t * 2.0) % 1.0
    kick = math.exp(-phase * 8.0)
    spectrum = tuple(1.0 + 0.8 * kick * math.exp(-k / 8.0) for k in range(32))
    return Features(t=t, rms=0.2 + 0.2 * kick, onset=kick, low=1.0 + kick, mid=1.1, high=0.9 + 0.3 * kick,
                    beat=phase < 1.0 / (fps * 0.5), beat_phase=phase, tempo_bpm=120.0, valence=0.3, arousal=0.0,
                    spectrum=spectrum, wave=tuple(math.sin(k / 3.0 + t * 9.0) * 0.5 for k in range(64)),
                    grid=BeatGrid(anchor=0.0, period=0.5, confidence=1.0))


class Thumbnails:
    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir
        self._memory: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._gl_failed = False

    def jpeg(self, preset: Preset) -> bytes:
        key = f"v{VERSION}-{preset_hash(preset)[:16]}"
        with self._lock:
            if key in self._memory:
                return self._memory[key]
            path = self.cache_dir / f"{key}.jpg" if self.cache_dir is not None else None
            if path is not None and path.is_file():
                data = path.read_bytes()
            else:
                data = encode_jpeg(self.render(preset), quality=80)
                if path is not None:
                    try:
                        from engine.files import write_bytes

                        path.parent.mkdir(parents=True, exist_ok=True)
                        write_bytes(path, data)
                    except OSError as e:
                        log.info("thumbnail cache %s: %s", path, e)
            self._memory[key] = data
            return data

    def render(self, preset: Preset) -> np.ndarray:
        """HxWx3 uint8 at THUMB_SIZE."""
        from live.session.show import ShowOptions, resolve

        w, h = THUMB_SIZE
        spec = resolve(preset, ShowOptions(renderer="procedural", canvas=THUMB_SIZE, size=THUMB_SIZE, live=False))
        cond = style_labels(preset)
        if not self._gl_failed:
            try:
                from engine.render.shader.renderer import ShaderRenderer

                shader = ShaderRenderer(w, h, spec.render.seed, look=spec.render.look)
                image = None
                for i in range(FRAMES):
                    image = shader.render(cond, groove(i), i / 24.0).image
                assert image is not None
                return np.ascontiguousarray(image[:h, :w, :3])
            except Exception as e:  # noqa: BLE001 - no GL here: the numpy renderer draws them all
                self._gl_failed = True
                log.info("thumbnails: the shader renderer is unavailable (%s); using the numpy renderer", e)
        from engine.render.procedural import ProceduralRenderer

        numpy_renderer = ProceduralRenderer(w, h, spec.render.seed)
        frame = None
        for i in range(FRAMES // 4):
            frame = numpy_renderer.render(cond, groove(i * 4), i * 4 / 24.0)
        assert frame is not None
        return np.ascontiguousarray(frame.image[:h, :w, :3])


def style_labels(preset: Preset) -> Conditioning:
    """The preset's style text as the head's label, as CLAP's labels reach the renderer in a show:
    its words pick the motifs (a "watercolor" style draws ink, "cosmic" a star field)."""
    import torch

    empty = torch.zeros(0)
    style = preset.conditioning.style or preset.description or preset.name
    return Conditioning(prompt_embeds=empty, pooled_prompt_embeds=empty, labels={style: 1.0}, prompt=style)


def encode_jpeg(rgb: np.ndarray, quality: int = 70) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()
