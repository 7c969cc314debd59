"""Directed conditioning with the tiny profile: the shared prompt blend, schedule keys landing on
their exact export frames, and lyrics in the prompt and on the HUD."""

from __future__ import annotations

import json

import pytest
import soundfile as sf
import torch

from engine.errors import BeatcanvasError

from engine.understanding.conditioning import blend, blend_weighted, mix_prompts
from engine.directing.director import Direction, Director
from engine.directing.lyrics import parse_lrc
from engine.render.procedural import ProceduralRenderer
from engine.understanding.pipeline import build_understanding
from live.export.run import ExportSettings, frame_path, run_export
from live.screen.hud import Hud
from live.presets.library import load_preset
from live.presets.schema import Preset
from live.schedule.runtime import ShowDirection
from live.schedule.schema import parse_schedule
from live.session.show import ShowOptions, resolve
from live_fakes import FakeRenderer, FakeSource, synth_track
from test_live_session import make_session

FPS = 20  # hops every 0.5 s are frames 0, 10, 20, ...
BASE = Preset(name="base")


@pytest.fixture(scope="module")
def track(tmp_path_factory):
    path = tmp_path_factory.mktemp("directing") / "song.wav"
    sf.write(path, synth_track(3.0), 48_000)
    return path


class CachedClap:
    """The tiny CLAP encoder, remembering each window's embedding: the tests export the same track
    several times, and a tiny CLAP forward still costs about a second on a CPU."""

    def __init__(self, encoder):
        self.encoder, self.memo = encoder, {}

    def encode_audio(self, window):
        key = (window.t_end, hash(window.samples.tobytes()))
        if key not in self.memo:
            self.memo[key] = self.encoder.encode_audio(window)
        return self.memo[key]


@pytest.fixture(scope="module")
def understanding(tiny_components, tmp_path_factory):
    clap, text, _ = tiny_components
    settings = resolve(BASE, DIRECTED).understanding  # as play/export do
    u = build_understanding("tiny", settings, clap=clap, text=text, cache_dir=tmp_path_factory.mktemp("bank"))
    u.encoder = CachedClap(u.encoder)
    return u


class Recording:
    """The procedural renderer, remembering the conditioning each render got."""

    def __init__(self):
        self.inner = ProceduralRenderer(64, 64)
        self.name, self.width, self.height = "procedural", 64, 64
        self.seen: list[torch.Tensor] = []

    def render(self, cond, features, t):
        self.seen.append(cond.prompt_embeds.clone())
        return self.inner.render(cond, features, t)

    def reset(self, seed):
        self.seen.clear()
        self.inner.reset(seed)


def test_one_prompt_blend_for_the_head_schedules_and_lyrics(understanding):
    enc = understanding.prompt_encoder
    (pa, _), (pb, _) = enc.encode("misty forest"), enc.encode("city on fire")
    mixed = mix_prompts(enc, [("misty forest", 3.0), ("city on fire", 1.0)])
    torch.testing.assert_close(mixed.prompt_embeds, 0.75 * pa + 0.25 * pb, atol=1e-5, rtol=1e-5)
    assert mixed.prompt == "misty forest"
    # two prompts on the sphere: exactly blend's slerp
    a, b = mix_prompts(enc, [("misty forest", 1)]), mix_prompts(enc, [("city on fire", 1)])
    torch.testing.assert_close(blend_weighted([(a, 0.7), (b, 0.3)], slerp=True).prompt_embeds,
                               blend(a, b, 0.3, slerp=True).prompt_embeds)
    # the zero-shot head's conditioning is that blend of the prompts it heard
    emb = understanding.head.text_embeddings[:1]
    cond = understanding.head.condition(emb)
    torch.testing.assert_close(cond.prompt_embeds, mix_prompts(enc, understanding.head.last.prompts).prompt_embeds)
    # and the director's style ramp is the slerp of the two styles, mixed with the music as the preset's style is
    d = Director(enc)
    out = d.condition(cond, Direction((("misty forest", 0.6), ("city on fire", 0.4)), audio_weight=0.25))
    expect = blend(blend(a, b, 0.4, slerp=True), cond, 0.25)
    torch.testing.assert_close(out.prompt_embeds, expect.prompt_embeds)
    assert "misty forest" in out.prompt and cond.prompt in out.prompt


SCHEDULE = """
interpolate = "hold"

[[key]]
at = 0
style = "misty forest at dawn"

[[key]]
at = "0:00.75"
style = "the city on fire"

[[key]]
at = "0:01.65"
reactivity.beat_zoom = 2.0
"""


DIRECTED = ShowOptions(renderer="procedural", directed=True, size=(64, 64), live=False)


def respec(preset):  # as `beatcanvas export` resolves a scheduled preset
    return resolve(preset, DIRECTED)


def export(track, out, understanding, direction, renderer=None):
    renderer = renderer or Recording()
    understanding.reset()  # run_export replays the renderer from its seed, not a reused understanding
    settings = ExportSettings(track=track, out_dir=out, fps=FPS, width=64, height=64, end=2.5,
                              direction=direction.fingerprint())
    run_export(settings, renderer, understanding, direction=direction, respec=respec)
    records = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    return renderer, records


def test_export_with_a_schedule_changes_the_conditioning_exactly_at_its_key_frames(track, tmp_path, understanding):
    schedule = parse_schedule(SCHEDULE, "show.toml", load_preset)
    first, records = export(track, tmp_path / "a", understanding, ShowDirection(BASE, schedule))
    seen = first.seen
    # the director took over the style share: the directed show's head hears the music only
    assert understanding.settings.audio_weight == 1.0 and understanding.settings.style == ""
    changes = [i for i in range(1, len(seen)) if not torch.equal(seen[i], seen[i - 1])]
    # every hop (frames 10, 20, ...) brings new music; the style key at 0.75 s is frame 15, nothing else
    assert changes == [10, 15, 20, 30, 40]
    assert "misty forest" in records[14]["prompt"] and "city on fire" in records[15]["prompt"]
    # the compositor knob at 1.65 s (frame 33) changes the picture's motion, not the conditioning
    assert (tmp_path / "a" / "manifest.json").read_text().count(ShowDirection(BASE, schedule).fingerprint()) == 1
    # deterministic: a second run gives the same conditionings and the same bytes
    second, _ = export(track, tmp_path / "b", understanding, ShowDirection(BASE, schedule))
    assert all(torch.equal(x, y) for x, y in zip(seen, second.seen)) and len(seen) == len(second.seen)
    for i in (0, 15, 33, 49):
        assert frame_path(tmp_path / "a", i).read_bytes() == frame_path(tmp_path / "b", i).read_bytes()
    # and the knob mattered: without the beat_zoom key the frames after 1.65 s differ
    calm = parse_schedule(SCHEDULE.split("[[key]]\nat = \"0:01.65\"")[0], "show.toml", load_preset)
    export(track, tmp_path / "c", understanding, ShowDirection(BASE, calm))
    assert frame_path(tmp_path / "a", 32).read_bytes() == frame_path(tmp_path / "c", 32).read_bytes()
    assert any(frame_path(tmp_path / "a", i).read_bytes() != frame_path(tmp_path / "c", i).read_bytes()
               for i in range(33, 50))


LYRICS = """[00:00.40]Neon river
[00:01.00]Burning city lights
[00:01.60]<00:01.60>Golden <00:01.90>horizon
[00:02.20]
"""


def test_lyrics_change_the_prompt_during_each_line_and_the_hud_shows_it(track, tmp_path, understanding):
    lyrics = parse_lrc(LYRICS)
    _, records = export(track, tmp_path / "out", understanding, ShowDirection(BASE, lyrics=lyrics))
    spans = {"neon river": (0.4, 1.0), "burning city lights": (1.0, 1.6), "golden horizon": (1.6, 2.2)}
    for rec in records:
        t = rec["t"]
        for words, (a, b) in spans.items():
            assert (words in rec["prompt"]) == (a <= t < b), (t, rec["prompt"])
    assert records[36]["lyric"] == "Golden" and records[40]["lyric"] == "Golden horizon"
    assert records[46]["lyric"] == "" and records[4]["lyric"] == ""

    # The HUD, through the session's own hook, at the playback clock.
    source = FakeSource(synth_track(3.0))
    session, _ = make_session(tmp_path, FakeRenderer(), source, preset=BASE)
    session.attach_direction(ShowDirection(BASE, lyrics=lyrics))
    hud = Hud()
    for t, line in ((0.2, None), (0.5, "Neon river"), (1.2, "Burning city lights"), (2.0, "Golden horizon"), (2.5, None)):
        source.clock = lambda t=t: t
        session.display_loop._direct()
        shown = [text for text, _ in hud.lines(session.state) if text.startswith("lyric: ")]
        assert shown == ([f"lyric: {line}"] if line else []), t


def test_scheduled_motion_and_conditioning_knobs_reach_their_stages_in_export(track, tmp_path, understanding):
    from engine.render.stage import ProceduralStage

    def stage():
        return ProceduralStage(ProceduralRenderer(64, 64), respec(BASE).render)

    plain = '[[key]]\nat = "0:01.5"\ninterpolate = "hold"\nconditioning.smoothing_s = 0.5\n'
    keyed = plain + 'motion.seed = 7\n'
    for name, text in (("keyed", keyed), ("plain", plain)):
        export(track, tmp_path / name, understanding, ShowDirection(BASE, parse_schedule(text, "s.toml", load_preset)),
               renderer=stage())
        if name == "keyed":  # the understanding took the scheduled smoothing in place
            assert understanding.smoother.tau == 0.5
    same = [frame_path(tmp_path / "keyed", i).read_bytes() == frame_path(tmp_path / "plain", i).read_bytes()
            for i in range(50)]
    assert all(same[:30]) and not any(same[31:])  # the seed key at 1.5 s (frame 30) reseeds the renderer


def test_a_schedule_that_needs_other_weights_is_refused_by_export_in_one_line(track, tmp_path, understanding):
    text = '[[key]]\nat = 1\nconditioning.head = "transformer"\n'
    with pytest.raises(BeatcanvasError, match="needs other weights"):
        export(track, tmp_path / "o", understanding, ShowDirection(BASE, parse_schedule(text, "s.toml", load_preset)))


def test_play_routes_scheduled_knobs_to_the_stages_that_own_them(tmp_path):
    source = FakeSource(synth_track(3.0))
    session, _ = make_session(tmp_path, FakeRenderer(), source, preset=BASE)
    text = '[[key]]\nat = 1\ninterpolate = "hold"\nmotion.feedback = 0.4\nconditioning.smoothing_s = 0.5\nreactivity.warp = 1.7\n'
    session.attach_direction(ShowDirection(BASE, parse_schedule(text, "s.toml", load_preset)))
    seen = session.board.specs.version
    source.clock = lambda: 0.5
    session.display_loop._direct()
    assert session.board.specs.version == seen  # before the key nothing changed for the stages
    source.clock = lambda: 1.2
    session.display_loop._direct()
    spec = session.board.specs.get()[1]
    assert spec.render.feedback == 0.4 and spec.understanding.smoothing_s == 0.5
    assert session.compositor.reactivity.warp == 1.7
    assert session.report.presets_applied == 0  # a scheduled knob is not a preset change
