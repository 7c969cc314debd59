"""The TensorRT path at the torch_tensorrt boundary (a fake module: no machine here has TensorRT), and
the back-end switch's selection logic."""

from __future__ import annotations

import copy
import sys
import types
from pathlib import Path

import pytest
import torch

from engine.errors import BeatcanvasError
from engine.render import backends, tensorrt


class FakeInput:
    def __init__(self, shape, dtype=torch.float32):
        self.shape, self.dtype = tuple(shape), dtype


@pytest.fixture
def fake_trt(monkeypatch):
    """A fake `torch_tensorrt` with torch-tensorrt 2.x's documented signatures, recording its calls."""
    calls = {"compile": [], "save": [], "load": []}

    def compile(module, ir="default", inputs=None, arg_inputs=None, kwarg_inputs=None, enabled_precisions=None):
        assert inputs is None, "current docs name the inputs arg_inputs"
        calls["compile"].append({"module": module, "ir": ir, "inputs": arg_inputs, "precisions": enabled_precisions})
        return module

    def save(module, file_path, output_format="exported_program", inputs=None, arg_inputs=None, kwarg_inputs=None):
        assert inputs is None, "current docs name the example inputs arg_inputs"
        assert file_path.endswith(".ep"), "the exported-program format is chosen by the .ep suffix"
        calls["save"].append({"path": file_path, "output_format": output_format, "inputs": arg_inputs})
        with open(file_path, "w") as f:
            f.write("engine")

    class Loaded:
        def module(self):
            return lambda *args: args[0] * 0

    def load(path):
        calls["load"].append(path)
        return Loaded()

    fake = types.ModuleType("torch_tensorrt")
    fake.__version__ = "9.9.9-fake"
    fake.Input, fake.compile, fake.save, fake.load = FakeInput, compile, save, load
    monkeypatch.setitem(sys.modules, "torch_tensorrt", fake)
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
        (2,),  # one timestep per row: the stream batch runs rows at different steps
        (2, 77, cfg.cross_attention_dim),  # 64 on tiny, 2048 on SDXL: read from the config
        (2, 32),
        (2, 6),
    ]
    assert [i.dtype for i in call["inputs"]] == [torch.float16, torch.float32, torch.float16, torch.float16, torch.float16]
    (saved,) = fake_trt["save"]
    assert saved["output_format"] == "exported_program"
    assert [tuple(x.shape) for x in saved["inputs"]] == [i.shape for i in call["inputs"]]
    assert trt_unet.config is unet.config
    engines = [p.name for p in tmp_path.glob("*.ep")]
    assert len(engines) == 1 and engines[0].startswith("unet-sdxl-turbo-2x4x8x16-fp16-")
    assert Path(saved["path"]).name.endswith(".tmp.ep")  # saved under a temporary name, then renamed
    assert not list(tmp_path.glob(".*.tmp.ep"))


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
    assert name == "eager" and "\n" not in reason and "CUDA graphs" in reason  # inductor is opt-in (compile time)
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
    """The inductor back-end fuses QKV, uses channels_last and torch.compile(default mode, fullgraph, static shapes)
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
    assert compiled == [{"mode": "default", "fullgraph": True, "dynamic": False}] * 2
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


def test_fingerprint_covers_every_weight(tiny_components):
    """One changed value anywhere (here in a middle tensor) gives another engine key."""
    unet = copy.deepcopy(tiny_components[2].unet)
    before = tensorrt.weights_fingerprint(unet)
    assert tensorrt.weights_fingerprint(unet) == before
    params = list(unet.parameters())
    with torch.no_grad():
        params[len(params) // 2].view(-1)[-1] += 0.5
    assert tensorrt.weights_fingerprint(unet) != before
    assert tensorrt.weights_fingerprint(unet.half()) == tensorrt.weights_fingerprint(unet.float())  # cast-invariant


def test_decoder_engine_has_the_latent_shape_and_decodes_like_taesd(fake_trt, tiny_components, tmp_path):
    taesd = copy.deepcopy(tiny_components[2].taesd)
    dec = tensorrt.compile_decoder(taesd, name="taesdxl", height=64, width=128, device="cpu", cache_dir=tmp_path)
    (call,) = fake_trt["compile"]
    assert [i.shape for i in call["inputs"]] == [(1, taesd.config.latent_channels, 8, 16)]
    assert dec.config is taesd.config
    out = dec.decode(torch.zeros(1, taesd.config.latent_channels, 8, 16).half())[0]
    assert out.shape == (1, 3, 64, 128)
