"""Head training: the loss by hand, learning on a synthetic set, bit-exact resume, the saved head in the
live app's loader, and manifest errors that name the row. Tiny profile, CPU."""

from __future__ import annotations

import math
import random

import pytest
import torch

from engine.errors import BeatcanvasError
from engine.understanding.heads.transformer import HeadConfig, TransformerHead
from engine.train.data import PromptBank, TextInputs, TrainData, stratified_split
from engine.train.loop import TrainConfig, lr_at, train
from engine.train.loss import LossConfig, NegativeSampler, head_loss
from engine.understanding.vag import vag_similarity


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny matmuls gain nothing from a second thread, and on a loaded 2-core box two threads make
    them ~15× slower (spin contention)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# --------------------------------------------------------------------------------------------- loss


def _cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.hypot(*a) / math.hypot(*b)


def _nce(logits):
    return -logits[0] + math.log(sum(math.exp(v) for v in logits))


def test_loss_equals_hand_computation():
    tau, wp, wn = 0.5, 0.7, 0.1
    tokens = torch.tensor([[[1.0, 0.0], [1.0, 2.0]]])  # mean over tokens = (1, 1)
    pooled = torch.tensor([[0.0, 3.0]])
    pos_t, negs_t = [2.0, 1.0], [[0.0, 1.0], [-1.0, 0.0]]
    pos_p, negs_p = [0.0, 1.0], [[1.0, 0.0], [0.0, -1.0]]
    out = head_loss(tokens, pooled, torch.tensor([pos_t]), torch.tensor([negs_t]), torch.tensor([pos_p]),
                    torch.tensor([negs_p]), LossConfig(temperature=tau, pooled_weight=wp, norm_weight=wn))

    m = [1.0, 1.0]
    tok = _nce([_cos(m, c) / tau for c in [pos_t, *negs_t]])
    pool = _nce([_cos([0.0, 3.0], c) / tau for c in [pos_p, *negs_p]])
    norm = ((math.sqrt(2) - math.sqrt(5)) / math.sqrt(5)) ** 2 + ((3.0 - 1.0) / 1.0) ** 2
    assert float(out.token_loss) == pytest.approx(tok, rel=1e-6)
    assert float(out.pooled_loss) == pytest.approx(pool, rel=1e-6)
    assert float(out.loss) == pytest.approx(tok + wp * pool + wn * norm, rel=1e-6)
    assert float(out.accuracy) == 1.0  # cos to the positive (0.95) beats both negatives


def test_negatives_come_from_low_vag_prompts_only():
    genres = ["techno", "house", "ambient", "jazz", "heavy metal", "folk", "techno", "pop"]
    va = torch.tensor([[0.8, 0.8], [0.7, 0.7], [-0.5, -0.8], [0.1, -0.2], [-0.8, 0.9], [0.5, -0.5],
                       [0.8, 0.8], [0.9, 0.5]])
    own = torch.arange(8)
    sampler = NegativeSampler(va, genres, own, va, genres, quantile=0.5, chunk=3)  # chunks must not matter
    allowed = sampler.mask(range(8))
    assert not allowed[own, own].any()  # never the item's own prompt
    assert not allowed[0, 6]  # same genre at the same VA point is not a "wrong" answer
    for i in range(8):
        sims = [vag_similarity(tuple(va[j].tolist()), genres[j], tuple(va[i].tolist()), genres[i]) for j in range(8)]
        ok = [sims[j] for j in range(8) if allowed[i, j]]
        banned = [sims[j] for j in range(8) if not allowed[i, j] and j != i]
        assert ok and (not banned or max(ok) <= min(banned) + 1e-6)  # allowed = the low-similarity side
        assert sampler.similarity(torch.tensor([i]))[0, (i + 1) % 8] == pytest.approx(sims[(i + 1) % 8], abs=1e-6)
    neg = sampler.sample(torch.arange(8), 20, torch.Generator().manual_seed(0))
    assert neg.shape == (8, 20) and bool(allowed.gather(1, neg).all())


def test_lr_decays_exponentially_from_1e4_to_5e6():
    cfg = TrainConfig()
    assert lr_at(0, 100, cfg) == pytest.approx(1e-4)
    assert lr_at(99, 100, cfg) == pytest.approx(5e-6)
    assert lr_at(50, 101, cfg) == pytest.approx(math.sqrt(1e-4 * 5e-6))


# ------------------------------------------------------------------------------ synthetic training

SMALL_HEAD = dict(layers=1, heads=2)
CLASSES = [("techno", 0.8, 0.9), ("ambient", 0.5, -0.9), ("heavy metal", -0.8, 0.9), ("folk", 0.6, -0.4),
           ("jazz", -0.3, -0.6), ("pop", 0.9, 0.5), ("blues", -0.7, -0.7), ("trance", 0.4, 0.8),
           ("classical", 0.2, -0.8), ("dubstep", -0.6, 0.7), ("reggae", 0.7, -0.2), ("opera", -0.2, 0.3)]


def synthetic_data(items_per_class: int = 10, dim: int = 16, noise: float = 0.35, seed: int = 0) -> TrainData:
    """Each class: a CLAP-like direction + noise, paired with that class's own image prompt."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.nn.functional.normalize(torch.randn(len(CLASSES), dim, generator=g), dim=-1)
    prompts, va, genres, x = [], [], [], []
    for c, (genre, v, a) in enumerate(CLASSES):
        for _ in range(items_per_class):
            prompts.append(f"a painting of {genre} music, {'bright' if v > 0 else 'dark'} and {'wild' if a > 0 else 'still'}")
            va.append((v, a))
            genres.append(genre)
            x.append(centres[c] + noise * torch.randn(dim, generator=g) / math.sqrt(dim))
    bank, pidx = PromptBank.from_items(prompts, va, genres)
    train_i, val_i = stratified_split([(gn,) for gn in genres], 0.2, seed)
    return TrainData(bank, pidx, torch.tensor(va), genres, train_i, val_i,
                     TextInputs(torch.nn.functional.normalize(torch.stack(x), dim=-1)))


def _cfg(epochs: int) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=16, negatives=5, lr=3e-3, lr_final=3e-4, seed=0)


def test_training_loss_falls_and_validation_beats_chance(tiny_components, tmp_path):
    _, text, _ = tiny_components
    data = synthetic_data()
    steps = []
    res = train(data, text, tmp_path / "head.safetensors", _cfg(10),
                HeadConfig.for_components(16, text, **SMALL_HEAD), on_step=steps.append)
    first, last = res.history[0], res.history[-1]
    assert last.train_loss < 0.7 * first.train_loss
    assert last.val_accuracy >= 2 * last.chance  # 1 positive among 5 VAG negatives: chance = 1/6
    assert steps[0].lr == pytest.approx(3e-3) and steps[-1].lr == pytest.approx(3e-4)
    assert (tmp_path / "head.prompts.safetensors").is_file()  # CLIP targets cached


def test_interrupted_run_resumes_bit_exact(tiny_components, tmp_path):
    _, text, _ = tiny_components
    data = synthetic_data(items_per_class=5)
    hc = HeadConfig.for_components(16, text, **SMALL_HEAD)
    full = train(data, text, tmp_path / "a" / "head.safetensors", _cfg(3), hc)

    def crash(s):
        if s.epoch == 1 and s.batch == 2:  # mid-way through the second epoch
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(data, text, tmp_path / "b" / "head.safetensors", _cfg(3), hc, on_step=crash)
    resumed = train(data, text, tmp_path / "b" / "head.safetensors", _cfg(3), hc, resume=True)

    a, b = full.head.state_dict(), resumed.head.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h.train_loss for h in full.history] == [h.train_loss for h in resumed.history]
    loaded = TransformerHead.load(tmp_path / "b" / "head.safetensors")
    assert all(torch.equal(a[k], loaded.state_dict()[k]) for k in a)


def test_resume_refuses_other_data(tiny_components, tmp_path):
    _, text, _ = tiny_components
    hc = HeadConfig.for_components(16, text, **SMALL_HEAD)
    train(synthetic_data(items_per_class=3), text, tmp_path / "h.safetensors", _cfg(1), hc)
    with pytest.raises(BeatcanvasError, match="different data"):
        train(synthetic_data(items_per_class=4), text, tmp_path / "h.safetensors", _cfg(2), hc, resume=True)
    with pytest.raises(BeatcanvasError, match="no checkpoint"):
        train(synthetic_data(items_per_class=3), text, tmp_path / "other.safetensors", _cfg(1), hc, resume=True)


def test_saved_head_drives_the_live_understanding(tiny_components, tmp_path):
    from engine.understanding.pipeline import build_understanding

    clap, text, _ = tiny_components
    data = synthetic_data(items_per_class=3)
    res = train(data, text, tmp_path / "head.safetensors", _cfg(1), HeadConfig.for_components(16, text, **SMALL_HEAD))
    und = build_understanding("tiny", head="transformer", head_path=tmp_path / "head.safetensors", clap=clap, text=text)
    emb = data.inputs.embed([0], 0, False)
    cond = und.step_embedding(emb, t=1.0)
    assert cond.prompt_embeds.shape == (1, 77, text.prompt_dim)
    assert cond.pooled_prompt_embeds.shape == (1, text.pooled_dim)
    with torch.no_grad():
        want, _ = res.head(emb)
    assert torch.allclose(cond.prompt_embeds, want, atol=1e-6)


# --------------------------------------------------------------------------------------- the splits


def test_split_is_by_song_and_stratified():
    rng = random.Random(1)
    keys = [(rng.randrange(3), rng.randrange(3), rng.choice(["techno", "jazz"])) for _ in range(200)]
    tr, va = stratified_split(keys, 0.2, seed=3)
    assert sorted(tr + va) == list(range(200)) and not set(tr) & set(va)
    assert len(va) == pytest.approx(40, abs=1)
    for k in set(keys):  # every well-populated stratum is represented in validation
        members = [i for i, kk in enumerate(keys) if kk == k]
        if len(members) >= 10:
            assert any(i in va for i in members)
    assert stratified_split(keys, 0.2, seed=3) == (tr, va)


def test_bf16_autocast_trains_and_saves_fp32(tiny_components, tmp_path):
    from dataclasses import replace

    _, text, _ = tiny_components
    res = train(synthetic_data(items_per_class=5), text, tmp_path / "h.safetensors", replace(_cfg(3), bf16=True),
                HeadConfig.for_components(16, text, **SMALL_HEAD))
    assert all(math.isfinite(h.train_loss) for h in res.history)
    assert res.history[-1].train_loss < res.history[0].train_loss
    assert TransformerHead.load(tmp_path / "h.safetensors").pool.weight.dtype == torch.float32
