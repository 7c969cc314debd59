"""The TensorRT path at the torch_tensorrt boundary (a fake module: no machine here has TensorRT), and
the back-end switch's selection logic."""

from __future__ import annotations

import copy
import itertools
import json
import os
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
        assert file_path.endswith(".pt2"), "exported programs are .pt2 files"
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
    engines = [p.name for p in tmp_path.glob("*.pt2")]
    assert len(engines) == 1 and engines[0].startswith("unet-sdxl-turbo-2x4x8x16-fp16-")
    assert Path(saved["path"]).name.endswith(".tmp.pt2")  # saved under a temporary name, then renamed
    assert not list(tmp_path.glob(".*.tmp.pt2"))


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
    monkeypatch.setattr(backends, "device_kind", lambda device: "GPU X")
    assert backends.select_backend("auto", "cuda")[0] == "eager"
    available["triton"] = True
    name, reason = backends.select_backend("auto", "cuda")
    assert name == "eager" and "\n" not in reason and "CUDA graphs" in reason  # inductor is opt-in (compile time)
    available["torch_tensorrt"] = True
    monkeypatch.setattr(backends, "device_kind", lambda device: "GPU X")
    verified = {"tensorrt": False, "inductor": False}
    monkeypatch.setattr(backends, "verified", lambda name, kind: verified[name] and kind == "GPU X")
    assert backends.select_backend("auto", "cuda")[0] == "eager"  # installed is not enough: not verified here
    verified["inductor"] = True
    assert backends.select_backend("auto", "cuda")[0] == "inductor"
    verified["tensorrt"] = True
    name, reason = backends.select_backend("auto", "cuda")
    assert name == "tensorrt" and "verified on GPU X" in reason
    assert backends.select_backend("auto", "cpu")[0] == "eager"
    with pytest.raises(BeatcanvasError, match="CUDA"):
        backends.select_backend("tensorrt", "cpu")
    available["torch_tensorrt"] = False
    with pytest.raises(BeatcanvasError, match=r"beatcanvas\[tensorrt\]"):
        backends.select_backend("tensorrt", "cuda")
    with pytest.raises(BeatcanvasError, match="unknown backend"):
        backends.select_backend("fastest", "cpu")


def test_inductor_compiles_the_repeated_blocks_of_a_weight_sharing_copy(monkeypatch, tiny_components, tmp_path):
    """Regional compilation: each transformer block is compiled (default mode, fullgraph, static
    shapes) on a copy of the UNet that shares its weights; the UNet a running renderer uses is not
    touched; the compiled code goes to a persistent cache (the compile itself is faked: minutes here)."""
    import copy
    import dataclasses

    comps = dataclasses.replace(
        tiny_components[2], unet=copy.deepcopy(tiny_components[2].unet), taesd=copy.deepcopy(tiny_components[2].taesd)
    )
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: compiled.append(kw) or fn)
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("BEATCANVAS_CACHE", str(tmp_path))
    prepared = backends.prepare_backend(comps, "inductor", device="cpu", dtype=torch.float32, width=64, height=64)
    assert prepared.name == "inductor"
    blocks = [m for m in comps.unet.modules() if type(m).__name__ == "BasicTransformerBlock"]
    assert blocks and len(compiled) == len(blocks) + 1  # every block, and the decoder
    assert all(kw == {"mode": "default", "fullgraph": True, "dynamic": False} for kw in compiled)
    assert prepared.unet is not comps.unet
    assert not any(getattr(b, "_compiled_call_impl", None) for b in blocks)  # the shared UNet is unchanged
    assert all(a is b for a, b in zip(prepared.unet.parameters(), comps.unet.parameters()))  # weights shared
    assert prepared.decoder.config is comps.taesd.config
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "inductor")


def test_cuda_preparation_is_idempotent_and_moves_no_storage_the_second_time(tiny_components):
    """channels_last + fused q/k/v happen once per set of components: a second renderer (an inductor
    switch) finds nothing to convert, so no graph of the running renderer loses its storage."""
    import copy

    unet, dec = copy.deepcopy(tiny_components[2].unet), copy.deepcopy(tiny_components[2].taesd)
    backends.prepare_modules(unet, dec, torch.device("cuda"))  # the flags only; the tensors stay on the CPU
    assert unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert any(type(p).__name__ == "FusedAttnProcessor2_0" for p in unet.attn_processors.values())
    assert torch.backends.cudnn.benchmark
    pointers = [p.data_ptr() for p in itertools.chain(unet.parameters(), dec.parameters())]
    backends.prepare_modules(unet, dec, torch.device("cuda"))
    assert [p.data_ptr() for p in itertools.chain(unet.parameters(), dec.parameters())] == pointers


def test_auto_picks_only_verified_back_ends(tmp_path):
    path = tmp_path / "verified.json"
    path.write_text(json.dumps({"GPU X": {"inductor": {"verified": True}, "tensorrt": {"verified": False}}}))
    assert backends.verified("inductor", "GPU X", path)
    assert not backends.verified("tensorrt", "GPU X", path)
    assert not backends.verified("inductor", "GPU Y", path)
    assert not backends.verified("inductor", "GPU X", tmp_path / "missing.json")
    shipped = json.loads(backends.VERIFIED_FILE.read_text())
    assert all(isinstance(v, dict) for k, v in shipped.items() if not k.startswith("_"))


def test_checkpoint_files_key_the_engine_without_reading_weights(tmp_path):
    from engine.models.cache import files_fingerprint

    ckpt = tmp_path / "unet.safetensors"
    ckpt.write_bytes(b"x" * 100)
    key = files_fingerprint([ckpt])
    assert files_fingerprint([ckpt]) == key == files_fingerprint([tmp_path])
    ckpt.write_bytes(b"y" * 101)  # another checkpoint in its place
    assert files_fingerprint([ckpt]) != key


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


def test_fp8_without_torchao_or_a_gpu_is_a_one_line_error(monkeypatch, tiny_components):
    monkeypatch.setitem(sys.modules, "torchao", None)
    monkeypatch.setitem(sys.modules, "torchao.quantization", None)
    with pytest.raises(BeatcanvasError, match=r"beatcanvas\[fp8\]"):
        backends.to_fp8(tiny_components[2].unet)
    with pytest.raises(BeatcanvasError, match="CUDA GPU"):
        backends.prepare_backend(tiny_components[2], "eager", device="cpu", dtype=torch.float32, width=64, height=64, fp8=True)
