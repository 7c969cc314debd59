"""Conditioning over time (blend, hop-independent smoothing, scene changes) and VAG."""

import math

import pytest
import torch

from engine.understanding.conditioning import blend
from engine.understanding.smoother import SceneDetector, Smoother
from engine.understanding.descriptors import DEFAULT_BANK, GENRES, MOODS
from engine.types import Conditioning
from engine.understanding.vag import generate_prompt, genre_similarity, va_distance_similarity, vag_similarity, vag_similarity_matrix


def _cond(value: float, t: float = 0.0, dims=(64, 32)) -> Conditioning:
    return Conditioning(torch.full((1, 77, dims[0]), value), torch.full((1, dims[1]), value), t=t)


def test_blend_endpoints_and_midpoint():
    a, b = _cond(0.0), _cond(2.0, t=1.0)
    assert torch.equal(blend(a, b, 0.0).prompt_embeds, a.prompt_embeds)
    assert torch.equal(blend(a, b, 1.0).prompt_embeds, b.prompt_embeds)
    torch.testing.assert_close(blend(a, b, 0.25).pooled_prompt_embeds, torch.full((1, 32), 0.5))


def test_slerp_keeps_magnitude_between_orthogonal_tokens():
    x = torch.zeros(1, 77, 4)
    y = torch.zeros(1, 77, 4)
    x[..., 0], y[..., 1] = 3.0, 3.0
    a = Conditioning(x, x[:, 0], t=0)
    b = Conditioning(y, y[:, 0], t=1)
    mid = blend(a, b, 0.5, slerp=True)
    torch.testing.assert_close(mid.prompt_embeds.norm(dim=-1), torch.full((1, 77), 3.0))
    assert blend(a, b, 0.5).prompt_embeds.norm(dim=-1).max() < 2.2  # lerp shrinks it (3/√2)


@pytest.mark.parametrize("hop", [0.1, 0.5, 0.25])
def test_smoothing_reaches_63_percent_at_tau_whatever_the_hop(hop):
    tau = 2.0
    s = Smoother(tau)
    s.update(_cond(0.0, t=0.0))
    out = None
    for i in range(1, round(tau / hop) + 1):
        out = s.update(_cond(1.0, t=i * hop))
    assert out.t == pytest.approx(tau)
    assert out.pooled_prompt_embeds.mean().item() == pytest.approx(1 - math.exp(-1), abs=1e-5)


def test_zero_time_constant_follows_immediately():
    s = Smoother(0.0)
    s.update(_cond(0.0, t=0.0))
    assert s.update(_cond(1.0, t=0.5)).pooled_prompt_embeds.mean().item() == 1.0


def test_scene_detector_fires_on_a_jump_not_on_drift():
    det = SceneDetector(threshold=0.35, memory_s=4.0, min_interval_s=1.0)
    base = torch.tensor([1.0, 0.0, 0.0])
    changes = []
    for i in range(40):  # slow rotation: 40 hops of 0.5 s, ~1.1° each
        ang = i * 0.02
        changes.append(det.update(torch.tensor([math.cos(ang), math.sin(ang), 0.0]), t=i * 0.5))
    assert not any(changes)
    assert det.update(torch.tensor([0.0, 0.0, 1.0]), t=20.5)  # new track
    assert not det.update(torch.tensor([0.0, 0.0, 1.0]), t=21.0)
    del base


def test_vag_similarity_formula():
    assert va_distance_similarity((0.3, -0.2), (0.3, -0.2)) == pytest.approx(1.0)
    assert va_distance_similarity((-1, -1), (1, 1)) == pytest.approx(0.0)
    assert va_distance_similarity((-1, 0), (1, 0)) == pytest.approx(1 - 1 / math.sqrt(2))
    assert genre_similarity("techno", "techno") == 1.0
    assert genre_similarity("techno", "house") == 0.5  # same family
    assert genre_similarity("techno", "bluegrass") == 0.0
    assert vag_similarity((0, 0), "techno", (0, 0), "house", alpha=0.3, beta=0.7) == pytest.approx(0.3 + 0.35)
    m = vag_similarity_matrix(torch.tensor([[0.0, 0.0]]), ["techno"], torch.tensor([[0.0, 0.0], [1.0, 1.0]]),
                              ["techno", "jazz"])
    assert m.shape == (1, 2) and m[0, 0] == pytest.approx(1.0) and m[0, 1] < m[0, 0]


def test_descriptor_tables_are_rich():
    assert len(GENRES) >= 40 and len({g.name for g in GENRES}) == len(GENRES)
    assert all(g.words and g.settings and g.family for g in GENRES)
    assert all(-1 <= v <= 1 and -1 <= a <= 1 for v, a in MOODS.values())
    assert {"genre", "mood", "energy", "instrument", "era"} <= set(DEFAULT_BANK)


def test_prompt_generator_is_deterministic_and_follows_the_music():
    a = generate_prompt(0.8, 0.8, 140, "techno", seed=7)
    assert a == generate_prompt(0.8, 0.8, 140, "techno", seed=7)
    texts = {generate_prompt(0.8, 0.8, 140, "techno", seed=s).text for s in range(10)}
    assert len(texts) > 3  # the seed varies the words
    calm_sad = generate_prompt(-0.8, -0.8, 70, "ambient", seed=1).text
    from engine.understanding.descriptors import MOOD_WORDS

    assert any(w in calm_sad for w in MOOD_WORDS["dark-calm"])
    assert any(w in calm_sad for w in ("still", "slow drifting", "suspended"))
