"""The GPU speed features, checked for correctness where CI can run them (tiny profile, CPU), and on
CUDA where only a GPU can (marked `gpu`): static-buffer frames, CUDA graphs, asynchronous readback,
stream batch, transition batches, the similarity filter, and a hot path without host syncs."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

from engine.understanding.conditioning import blend
from engine.models.profiles import _scheduler
from engine.render.sdxl import SDXLRenderer
from engine.render.similarity import SimilarityFilter
from engine.types import Conditioning

SIZE = 64
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here (torch.cuda.is_available() is False)")


def cond(text, seed: int) -> Conditioning:
    g = torch.Generator().manual_seed(seed)
    return Conditioning(torch.randn(1, 77, text.prompt_dim, generator=g), torch.randn(1, text.pooled_dim, generator=g))


def comps_for(sdxl, model: str):
    return dataclasses.replace(sdxl, scheduler=_scheduler(model), model=model)


# ------------------------------------------------------------------------------ stream batch


@pytest.mark.parametrize("model,steps", [("sdxl-lightning", 2), ("sdxl-turbo", 3)])
def test_stream_batch_equals_sequential_renders(tiny_components, model, steps):
    """Frame i of the stream (entered with conditioning i) is the sequential render of conditioning i."""
    _, text, sdxl = tiny_components
    comps = comps_for(sdxl, model)
    conds = [cond(text, 10 + i) for i in range(steps + 2)]
    stream = SDXLRenderer(comps, SIZE, SIZE, steps=steps, seed=4, stream_batch=True)
    assert stream._stream is not None
    streamed = [stream.render(c).image for c in conds]
    for i, c in enumerate(conds[: len(conds) - (steps - 1)]):
        expected = SDXLRenderer(comps, SIZE, SIZE, steps=steps, seed=4).render(c).image
        np.testing.assert_allclose(streamed[i + steps - 1].astype(int), expected.astype(int), atol=1)


def test_stream_batch_finished_latents_match_sequential(tiny_components):
    _, text, sdxl = tiny_components
    comps = comps_for(sdxl, "sdxl-lightning")
    a, b, c = cond(text, 1), cond(text, 2), cond(text, 3)
    stream = SDXLRenderer(comps, SIZE, SIZE, steps=2, seed=7, stream_batch=True)
    stream.render(a)
    first = stream._stream.finished.clone()
    stream.render(b)
    stream.render(c)
    second = stream._stream.finished.clone()
    seq = SDXLRenderer(comps, SIZE, SIZE, steps=2, seed=7)
    torch.testing.assert_close(first, seq.render_latents(a), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(second, seq.render_latents(b), rtol=1e-4, atol=1e-5)


def test_stream_batch_falls_back_with_guidance_or_changing_ancestral_noise(tiny_components):
    _, _, sdxl = tiny_components
    assert SDXLRenderer(comps_for(sdxl, "sdxl-lightning"), SIZE, SIZE, steps=2, guidance_scale=3.0, stream_batch=True)._stream is None
    assert SDXLRenderer(comps_for(sdxl, "sdxl-turbo"), SIZE, SIZE, steps=2, seed_policy="drift", stream_batch=True)._stream is None
    assert SDXLRenderer(comps_for(sdxl, "sdxl-lightning"), SIZE, SIZE, steps=2, seed_policy="drift", stream_batch=True)._stream is not None


def test_stream_batch_with_feedback_is_deterministic_and_moves(tiny_components):
    _, text, sdxl = tiny_components
    comps = comps_for(sdxl, "sdxl-lightning")
    runs = []
    for _ in range(2):
        r = SDXLRenderer(comps, SIZE, SIZE, steps=2, seed=3, feedback=0.5, stream_batch=True)
        runs.append([r.render(cond(text, i % 2)).image for i in range(6)])
    for x, y in zip(*runs):
        np.testing.assert_array_equal(x, y)
    plain = SDXLRenderer(comps, SIZE, SIZE, steps=2, seed=3, stream_batch=True)
    no_feedback = [plain.render(cond(text, i % 2)).image for i in range(6)]
    assert any(not np.array_equal(x, y) for x, y in zip(runs[0][3:], no_feedback[3:]))


# ------------------------------------------------------------------------------ transitions


@pytest.mark.parametrize("feedback", [0.0, 0.5])
def test_transition_batch_equals_sequential_blended_frames(tiny_components, feedback):
    """A conditioning change renders B in-between frames in one call; each equals the single render of
    its blended conditioning from the same start."""
    _, text, sdxl = tiny_components
    comps = comps_for(sdxl, "sdxl-turbo")
    a, b = cond(text, 1), cond(text, 2)
    batched = SDXLRenderer(comps, SIZE, SIZE, steps=1, seed=5, feedback=feedback, transition_frames=4)
    first = batched.render(a).image
    frames = [batched.render(b).image for _ in range(4)]
    start = batched.frame_index
    assert start == 5

    for j, frame in enumerate(frames):
        seq = SDXLRenderer(comps, SIZE, SIZE, steps=1, seed=5, feedback=feedback)
        np.testing.assert_array_equal(seq.render(a).image, first)
        seq.frame_index = 1 + j  # the frame index the batch gave this frame (its seed, with drift)
        seq_frame = seq.render(blend(a, b, (j + 1) / 4, slerp=True)).image
        np.testing.assert_allclose(frame.astype(int), seq_frame.astype(int), atol=1)
    assert batched.render(b).image.shape == (SIZE, SIZE, 3)  # then single frames again
    assert batched.frame_index == start + 1


def test_transition_ends_on_the_new_conditioning_and_a_new_change_restarts(tiny_components):
    _, text, sdxl = tiny_components
    comps = comps_for(sdxl, "sdxl-turbo")
    a, b, c = cond(text, 1), cond(text, 2), cond(text, 3)
    r = SDXLRenderer(comps, SIZE, SIZE, steps=1, seed=5, transition_frames=3)
    r.render(a)
    frames = [r.render(b).image for _ in range(3)]
    np.testing.assert_array_equal(frames[-1], SDXLRenderer(comps, SIZE, SIZE, steps=1, seed=5).render(b).image)
    r.render(b)
    r.render(c)  # a change mid-way starts a new transition from b
    assert len(r._queue) == 2


class BatchRecorder:
    """Wraps a UNet and records the batch size of every call (what a static-shape engine must match)."""

    def __init__(self, unet):
        self.unet, self.config, self.batches = unet, unet.config, []

    def __call__(self, sample, *args, **kwargs):
        self.batches.append(sample.shape[0])
        return self.unet(sample, *args, **kwargs)


@pytest.mark.parametrize("model,steps,kw,batches", [
    ("sdxl-turbo", 1, {"transition_frames": 3}, {1, 3}),
    ("sdxl-lightning", 2, {"stream_batch": True}, {2}),  # only the batch a TensorRT engine is built for
    ("sdxl-turbo", 4, {"stream_batch": True}, {4}),
])
def test_warm_up_builds_only_the_programs_the_show_uses_and_leaves_no_trace(tiny_components, model, steps, kw, batches):
    _, text, sdxl = tiny_components
    comps = comps_for(sdxl, model)
    warmed = SDXLRenderer(comps, SIZE, SIZE, steps=steps, seed=2, feedback=0.5, **kw)
    warmed.unet = recorder = BatchRecorder(warmed.unet)
    warmed.warm_up()
    assert set(recorder.batches) == batches
    if warmed._stream is not None:
        assert warmed._programs == {} and warmed._stream._program is not None
    else:  # text-to-image and every feedback program the knob can reach, per batch
        assert set(warmed._programs) == {(b, k) for b in batches for k in range(1, steps + 1)}
    fresh = SDXLRenderer(comps, SIZE, SIZE, steps=steps, seed=2, feedback=0.5, **kw)
    c = cond(text, 1)
    for _ in range(3):
        np.testing.assert_array_equal(warmed.render(c).image, fresh.render(c).image)
    assert warmed.frame_index == fresh.frame_index
    assert set(recorder.batches) == batches


def test_one_program_per_call_count_serves_every_feedback_value(tiny_components):
    """Sweeping the feedback knob (as MIDI does) never builds a new frame program: the schedule is
    device data in a step table, and the programs are keyed by batch and UNet calls only."""
    _, text, sdxl = tiny_components
    c = cond(text, 1)
    r = SDXLRenderer(comps_for(sdxl, "sdxl-turbo"), SIZE, SIZE, steps=2, seed=1, feedback=0.3)
    r.warm_up()
    programs = dict(r._programs)
    tables = dict(r._tables)
    for f in np.linspace(0.0, 0.95, 39):
        r.feedback = float(f)
        r.render(c)
    assert r._programs == programs and r._tables == tables  # the same objects: no capture, no new table
    stream = SDXLRenderer(comps_for(sdxl, "sdxl-lightning"), SIZE, SIZE, steps=4, seed=1, feedback=0.3, stream_batch=True)
    stream.warm_up()
    program = stream._stream.program()
    for f in np.linspace(0.0, 0.95, 39):
        stream.feedback = float(f)
        stream.render(c)
    assert stream._stream.program() is program


@pytest.mark.parametrize("model,steps", [("sdxl-lightning", 2), ("sdxl-turbo", 3), ("sdxl-lightning", 4)])
def test_stream_batch_every_feedback_value_equals_sequential_from_the_same_start(tiny_components, model, steps):
    """Every (steps, feedback) pair works through the stream batch, also when the frame runs fewer grid
    steps than there are slots: each finished frame equals the sequential render of its conditioning
    from the latent it entered with."""
    _, text, sdxl = tiny_components
    comps = comps_for(sdxl, model)
    conds = [cond(text, 20 + i) for i in range(steps + 3)]
    seq = SDXLRenderer(comps, SIZE, SIZE, steps=steps, seed=4)
    for f in (0.1, 0.3, 0.5, 0.7, 0.9):
        stream = SDXLRenderer(comps, SIZE, SIZE, steps=steps, seed=4, feedback=f, stream_batch=True)
        st = stream._stream
        starts, finished = [], []
        for c in conds:
            starts.append(st.finished.clone())
            stream.render(c)
            finished.append(st.finished.clone())
        k = len(stream.feedback_schedule(f).steps)
        assert 1 <= k <= steps
        for i in range(steps + 1, len(conds)):  # frames that entered with feedback on (after the fill)
            out = i + steps - 1
            if out >= len(conds):
                break
            seq.reset(4)
            seq.feedback = f
            single = seq.inputs(1)
            single.prev.copy_(starts[i])
            single.has_prev = True
            expected = seq.render_latents(conds[i])
            torch.testing.assert_close(finished[out], expected, rtol=1e-4, atol=1e-4, msg=f"steps {steps} feedback {f}")


def test_stream_batch_frames_in_flight_keep_their_schedule_when_feedback_turns_on(tiny_components):
    """The frames already in the conveyor when the knob moves finish with the schedule they entered
    with (text-to-image here), not the new one."""
    _, text, sdxl = tiny_components
    comps = comps_for(sdxl, "sdxl-lightning")
    steps = 4
    conds = [cond(text, 30 + i) for i in range(steps + 4)]
    stream = SDXLRenderer(comps, SIZE, SIZE, steps=steps, seed=6, stream_batch=True)
    outputs = []
    for i, c in enumerate(conds):
        if i == steps + 1:
            stream.feedback = 0.6  # frames i − 3 … i − 1 are in flight
        stream.render(c)
        outputs.append(stream._stream.finished.clone())
    seq = SDXLRenderer(comps, SIZE, SIZE, steps=steps, seed=6)
    for i in range(2, steps + 1):  # entered before the change, finished after it
        torch.testing.assert_close(outputs[i + steps - 1], seq.render_latents(conds[i]), rtol=1e-4, atol=1e-4)


def test_pipelined_readback_keeps_one_frame_in_flight_and_returns_them_in_order(tiny_components):
    """`render` returns the previous frame while this one is still being copied (the first frame is
    shown twice); with more frames in flight, never an older frame after a newer one."""
    from engine.render.readback import Readback

    _, text, sdxl = tiny_components
    comps = comps_for(sdxl, "sdxl-turbo")
    conds = [dataclasses.replace(cond(text, i), t=float(i)) for i in range(5)]
    sequential = [SDXLRenderer(comps, SIZE, SIZE, steps=1, seed=2).render(c).image for c in conds]
    piped = SDXLRenderer(comps, SIZE, SIZE, steps=1, seed=2, pipelined=True)
    frames = [piped.render(c) for c in conds]
    assert [f.t for f in frames] == [0.0, 0.0, 1.0, 2.0, 3.0]
    for frame in frames:
        np.testing.assert_array_equal(frame.image, sequential[int(frame.t)])
    assert piped._readback.in_flight == 1  # the newest frame is still in flight

    rb: Readback[int] = Readback(torch.device("cpu"), slots=3)
    taken = []
    for i in range(6):
        rb.submit(torch.full((1, 2, 2, 3), i, dtype=torch.uint8), i)
        if i % 2:  # two submitted per take: more than one frame in flight
            got = rb.take()
            assert got is not None
            taken.append(got[1])
            assert int(got[0][0, 0, 0, 0]) == got[1]
    assert taken == [0, 2, 4] and rb.in_flight == 1
    final = rb.wait_all()
    assert final is not None and final[1] == 5 and rb.in_flight == 0


# ------------------------------------------------------------------------------ similarity filter


def test_similarity_filter_skips_steady_input_but_never_a_change(tiny_components):
    _, text, _ = tiny_components
    a, b = cond(text, 1), cond(text, 2)
    f = SimilarityFilter(threshold=0.95, max_skip=3, seed=0)
    assert not f.should_skip(a)  # nothing rendered yet
    f.rendered_with(a)
    decisions = [f.should_skip(a) for _ in range(4)]
    assert decisions == [True, True, True, False]  # identical input: skipped, at most 3 in a row
    f.rendered_with(a)
    assert not any(f.should_skip(b) for _ in range(20))  # a different conditioning is never skipped
    assert 0 < f.skip_rate < 1


def test_renderer_repeats_its_frame_when_skipping(tiny_components):
    _, text, sdxl = tiny_components
    a = cond(text, 1)
    r = SDXLRenderer(comps_for(sdxl, "sdxl-turbo"), SIZE, SIZE, steps=1, seed=0, similarity_threshold=0.9)
    first = r.render(a)
    again = r.render(a)
    assert not first.reused and again.reused
    np.testing.assert_array_equal(first.image, again.image)
    assert r.frame_index == 1  # no second render happened


def test_export_renders_every_frame(tiny_components, tmp_path):
    """Export never skips: its renderer has no similarity filter and every frame is rendered."""
    from live.session.factory import build_stages
    from live.presets.library import load_preset
    from live.session.show import ShowOptions, resolve

    opts = ShowOptions(renderer="sdxl", profile="tiny", size=(64, 64), allow_cpu_diffusion=True, device="cpu")
    renderer = build_stages(resolve(load_preset("lightning-hd"), opts)).render.renderer
    assert renderer.similarity is None
    text = tiny_components[1]
    a = cond(text, 1)
    frames = [renderer.render(a) for _ in range(3)]
    assert not any(f.reused for f in frames) and renderer.frame_index == 3


# ------------------------------------------------------------------------------ host syncs


class SyncCounter(TorchFunctionMode):
    """Counts the calls that make the host wait for the device (or build tensors from host values)."""

    SYNCING = {"item", "cpu", "tolist", "numpy", "__bool__", "__float__", "__int__", "nonzero", "tensor", "as_tensor"}

    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", str(func))
        if name in self.SYNCING:
            self.calls.append(name)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("model,steps,feedback", [("sdxl-turbo", 1, 0.0), ("sdxl-turbo", 2, 0.5), ("sdxl-lightning", 2, 0.0)])
def test_steady_frames_make_no_host_sync(tiny_components, model, steps, feedback):
    """After the first frame, a frame with unchanged conditioning and seed calls nothing that syncs."""
    _, text, sdxl = tiny_components
    r = SDXLRenderer(comps_for(sdxl, model), SIZE, SIZE, steps=steps, seed=1, feedback=feedback)
    c = cond(text, 1)
    r.run([c])
    r.run([c])
    with SyncCounter() as counter:
        for _ in range(3):
            r.run([c])
    assert counter.calls == []
    with SyncCounter() as counter:  # the counter does see a sync: reading the frame back to the host
        r.render(c)
    assert "cpu" in counter.calls


# ------------------------------------------------------------------------------ CUDA only


@cuda
@pytest.mark.gpu
def test_graphed_frame_equals_eager_frame_and_pipelined_readback_keeps_order(tiny_components):
    _, text, sdxl = tiny_components
    comps = comps_for(sdxl, "sdxl-turbo")
    gpu = dataclasses.replace(comps, unet=copy.deepcopy(comps.unet).to("cuda"), taesd=copy.deepcopy(comps.taesd).to("cuda"))
    conds = [cond(text, i) for i in range(5)]
    eager = SDXLRenderer(gpu, SIZE, SIZE, steps=1, seed=2, device="cuda", cuda_graphs=False)
    graphed = SDXLRenderer(gpu, SIZE, SIZE, steps=1, seed=2, device="cuda")
    piped = SDXLRenderer(gpu, SIZE, SIZE, steps=1, seed=2, device="cuda", pipelined=True)
    e = [eager.render(c).image for c in conds]
    g = [graphed.render(c).image for c in conds]
    assert all(p.graphed for p in graphed._programs.values())
    for x, y in zip(e, g):
        np.testing.assert_array_equal(x, y)
    p = [piped.render(c).image for c in conds]
    matches = [next(i for i, x in enumerate(e) if np.array_equal(x, y)) for y in p]
    assert matches == sorted(matches)  # newest completed frame each time, never an older one after a newer
    torch.cuda.set_sync_debug_mode("error")
    try:
        with torch.inference_mode():
            graphed.run([conds[-1]])
    finally:
        torch.cuda.set_sync_debug_mode("default")


@cuda
@pytest.mark.gpu
def test_graphed_feedback_and_stream_batch_equal_eager_without_host_syncs(tiny_components):
    """On CUDA: one captured graph per call count serves text-to-image and feedback (device step
    tables), the stream batch's graph equals its eager run, and a steady frame never syncs the host."""
    _, text, sdxl = tiny_components
    comps = comps_for(sdxl, "sdxl-lightning")
    gpu = dataclasses.replace(comps, unet=copy.deepcopy(comps.unet).to("cuda"), taesd=copy.deepcopy(comps.taesd).to("cuda"))
    conds = [cond(text, i) for i in range(6)]
    for kw in ({}, {"stream_batch": True}):
        eager = SDXLRenderer(gpu, SIZE, SIZE, steps=4, seed=2, feedback=0.4, device="cuda", cuda_graphs=False, **kw)
        graphed = SDXLRenderer(gpu, SIZE, SIZE, steps=4, seed=2, feedback=0.4, device="cuda", **kw)
        graphed.warm_up()
        for c in conds:
            np.testing.assert_allclose(eager.render(c).image.astype(int), graphed.render(c).image.astype(int), atol=1)
        torch.cuda.set_sync_debug_mode("error")
        try:
            with torch.inference_mode():
                graphed.feedback = 0.7  # another grid start: a table copy, no capture, no sync
                graphed._stream.tick(conds[0], 2) if graphed._stream is not None else graphed.run([conds[0]])
        finally:
            torch.cuda.set_sync_debug_mode("default")
