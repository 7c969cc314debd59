"""What an export renders with, as plain data: a `Recipe` travels to Ray workers (live/export/cluster.py)
and `build` turns it into stages with `play`'s one builder (live/session/factory.py), in whichever process
renders the chunks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.audio.features import FeatureTracker
from engine.render.select import RendererKind
from live.export.frames import Stages
from live.export.plan import ExportSettings
from live.presets.schema import Preset
from live.session.show import ShowOptions, ShowSpec


@dataclass(frozen=True)
class Recipe:
    """How a process builds an export's stages: plain data (settings and the resolved spec, never
    models), so it travels to Ray workers, and `play`'s one builder (live/session/factory.py) does the rest."""

    settings: ExportSettings
    spec: ShowSpec  # resolved at the export size
    preset: Preset | None = None  # for --schedule / --lyrics
    schedule: Path | None = None
    lyrics: Path | None = None
    options: ShowOptions | None = None  # how a scheduled preset is resolved (directed)
    kind: tuple[RendererKind, str] | None = None


@dataclass
class Built:
    stages: Stages
    renderer: str  # the renderer's name ("sdxl-turbo/eager", "shader"): in the export's fingerprint
    model_ids: dict[str, str] = field(default_factory=dict)


def build(recipe: Recipe) -> Built:
    """The stages one process renders every chunk it gets with (models load here, once)."""
    from live.session import factory
    from live.screen.compositor import Compositor

    s, spec = recipe.settings, recipe.spec
    built = factory.build_stages(spec)
    make_compositor: Callable[[], Any] = lambda: Compositor(s.width, s.height, s.reactivity, s.crossfade_ms,  # noqa: E731
                                                            s.max_flashes_per_s)
    if spec.render.kind == "shader":  # composed on the GPU, in the shader renderer's context
        from live.screen.gl_compositor import GLCompositor

        context = built.render.renderer.context  # type: ignore[union-attr]
        make_compositor = lambda: GLCompositor(s.width, s.height, s.reactivity, s.crossfade_ms,  # noqa: E731
                                               s.max_flashes_per_s, context=context)
    direction, respec = None, None
    if recipe.preset is not None and (recipe.schedule or recipe.lyrics):
        from live.schedule.runtime import direction_for_track
        from live.session.show import resolve

        direction = direction_for_track(s.track, recipe.preset, recipe.schedule, recipe.lyrics, say=lambda _m: None)
        opts, kind = recipe.options, recipe.kind
        assert opts is not None, "a directed recipe carries the options its presets resolve with"

        def respec(p: Preset) -> ShowSpec:
            return resolve(p, opts, kind)

    stages = Stages(built.render, built.understanding, FeatureTracker, make_compositor, direction, respec)
    return Built(stages, built.render.name, {**factory.published_ids(spec), **built.model_ids})
