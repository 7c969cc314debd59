"""The TensorRT path at the torch_tensorrt boundary (a fake module: no machine here has TensorRT), and
the back-end switch's selection logic."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from engine.errors import BeatcanvasError
from engine.render import backends, tensorrt


class FakeInput:
    def __init__(self, shape, dtype=torch.float32):
        self.shape, self.dtype = tuple(shape), dtype


@pytest.fixture
def fake_trt(monkeypatch):
    """A fake `torch_tensorrt` recording compile/save calls; `torch.export.load` reads its files."""
    calls = {"compile": [], "save": [], "load": []}

    def compile(module, ir=None, inputs=None, enabled_precisions=None, **kw):
        calls["compile"].append({"module": module, "ir": ir, "inputs": inputs, "precisions": enabled_precisions})
        return module

    def save(module, path, output_format=None, inputs=None, **kw):
        calls["save"].append({"path": path, "output_format": output_format, "inputs": inputs})
        with open(path, "w") as f:
            f.write("engine")

    class Loaded:
        def module(self):
            return lambda *args: args[0] * 0

    def load(path):
        calls["load"].append(path)
        return Loaded()

    fake = types.ModuleType("torch_tensorrt")
    fake.__version__ = "9.9.9-fake"
    fake.Input, fake.compile, fake.save = FakeInput, compile, save
    monkeypatch.setitem(sys.modules, "torch_tensorrt", fake)
    monkeypatch.setattr(torch.export, "load", load)
    return calls


def build(unet, tmp_path, **kw):
    args = dict(model="sdxl-turbo", batch=1, height=64, width=64, device="cpu", cache_dir=tmp_path)
    args.update(kw)
    return tensorrt.compile_unet(unet, **args)


def test_compile_gets_fp16_and_static_shapes_from_the_unet_config(fake_trt, tiny_components, tmp_path):
    unet = tiny_components[2].unet
    import copy

    unet = copy.deepcopy(unet)  # compile_unet casts to fp16 in place
    trt_unet = build(unet, tmp_path, batch=2, height=64, width=128)
    (call,) = fake_trt["compile"]
    assert call["ir"] == "dynamo"
    assert call["precisions"] == {torch.float16}
    cfg = unet.config
    assert [i.shape for i in call["inputs"]] == [
        (2, cfg.in_channels, 8, 16),
        (1,),
        (2, 77, cfg.cross_attention_dim),  # 64 on tiny, 2048 on SDXL: read from the config
        (2, 32),
        (2, 6),
    ]
    assert [i.dtype for i in call["inputs"]] == [torch.float16, torch.float32, torch.float16, torch.float16, torch.float16]
    (saved,) = fake_trt["save"]
    assert saved["output_format"] == "exported_program"
    assert [tuple(x.shape) for x in saved["inputs"]] == [i.shape for i in call["inputs"]]
    assert trt_unet.config is unet.config


def test_second_build_is_a_cache_hit_and_key_changes_rebuild(fake_trt, tiny_components, tmp_path):
    import copy

    unet = copy.deepcopy(tiny_components[2].unet)
    build(unet, tmp_path)
    messages = []
    again = build(unet, tmp_path, progress=messages.append)
    assert len(fake_trt["compile"]) == 1  # not compiled again
    assert len(fake_trt["load"]) == 1 and "cache hit" in messages[0]
    out = again(torch.ones(1, 4, 8, 8), torch.tensor(999.0), torch.zeros(1, 77, 64), {"text_embeds": torch.zeros(1, 32), "time_ids": torch.zeros(1, 6)})
    assert out[0].shape == (1, 4, 8, 8)
    build(unet, tmp_path, height=128)  # another shape → another engine
    assert len(fake_trt["compile"]) == 2
    sys.modules["torch_tensorrt"].__version__ = "10.0.0-fake"  # library upgrade → rebuild
    build(unet, tmp_path)
    assert len(fake_trt["compile"]) == 3
    assert len(list(tmp_path.glob("*.json"))) == 3  # each engine records its key


def test_missing_torch_tensorrt_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_tensorrt", None)  # import raises ImportError
    with pytest.raises(BeatcanvasError, match=r"pip install 'beatcanvas\[tensorrt\]'"):
        tensorrt.import_torch_tensorrt()


def test_backend_selection(monkeypatch):
    available = {"torch_tensorrt": False, "triton": False}
    monkeypatch.setattr(backends, "has_module", lambda name: available[name])
    assert backends.select_backend("auto", "cpu")[0] == "eager"
    assert backends.select_backend("eager", "cuda")[0] == "eager"
    assert backends.select_backend("inductor", "cpu")[0] == "inductor"
    assert backends.select_backend("auto", "cuda")[0] == "eager"
    available["triton"] = True
    name, reason = backends.select_backend("auto", "cuda")
    assert name == "inductor" and "\n" not in reason and "torch_tensorrt" in reason
    available["torch_tensorrt"] = True
    assert backends.select_backend("auto", "cuda")[0] == "tensorrt"
    assert backends.select_backend("auto", "cpu")[0] == "eager"
    with pytest.raises(BeatcanvasError, match="CUDA"):
        backends.select_backend("tensorrt", "cpu")
    available["torch_tensorrt"] = False
    with pytest.raises(BeatcanvasError, match=r"beatcanvas\[tensorrt\]"):
        backends.select_backend("tensorrt", "cuda")
    with pytest.raises(BeatcanvasError, match="unknown backend"):
        backends.select_backend("fastest", "cpu")


def test_inductor_wiring_compiles_unet_and_decoder(monkeypatch, tiny_components):
    """The inductor back-end fuses QKV, uses channels_last and torch.compile(max-autotune, fullgraph)
    (the compile itself is faked: compiling on this CPU takes minutes)."""
    import copy
    import dataclasses

    comps = dataclasses.replace(
        tiny_components[2], unet=copy.deepcopy(tiny_components[2].unet), taesd=copy.deepcopy(tiny_components[2].taesd)
    )
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: compiled.append(kw) or fn)
    prepared = backends.prepare_backend(comps, "inductor", device="cpu", dtype=torch.float32, width=64, height=64)
    assert prepared.name == "inductor"
    assert compiled == [{"mode": "max-autotune", "fullgraph": True}] * 2
    assert any(type(p).__name__ == "FusedAttnProcessor2_0" for p in comps.unet.attn_processors.values())
    assert comps.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert prepared.decoder.config is comps.taesd.config


@pytest.mark.slow
def test_inductor_matches_eager_on_cpu(tiny_components):
    """A real torch.compile of the tiny UNet and TAESD on CPU (slow) gives eager's frame."""
    import copy
    import dataclasses

    from engine.render.sdxl import SDXLRenderer
    from engine.types import Conditioning

    sdxl = tiny_components[2]
    cond = Conditioning(torch.randn(1, 77, 64), torch.randn(1, 32))
    eager = SDXLRenderer(sdxl, 64, 64, steps=1, seed=0).render(cond).image
    comps = dataclasses.replace(sdxl, unet=copy.deepcopy(sdxl.unet), taesd=copy.deepcopy(sdxl.taesd))
    compiled = SDXLRenderer(comps, 64, 64, steps=1, seed=0, backend="inductor").render(cond).image
    assert abs(compiled.astype(int) - eager.astype(int)).max() <= 2
