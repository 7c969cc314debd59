"""The training loop: Adam, exponential LR decay, cached prompt targets, resumable checkpoints.

Learning rate: the thesis's exponential decay from 1e-4 to 5e-6 over the whole run, computed from the
global step (lr_t = lr0·(lr1/lr0)^(t/(T−1))) rather than kept in a scheduler object — nothing to
save, nothing to drift on resume.

Targets: the CLIP text embeddings of every prompt are computed once, reduced to what the loss reads
(77-token mean and pooled vector), and cached in a safetensors file keyed by the text encoders'
fingerprint; a second run (or a resume) reads them back instead of running two CLIP towers again.

Checkpoints (after every epoch) are one safetensors file beside the output: head weights, Adam's
state tensors, the RNG states as uint8 tensors, and epoch/step/config/history in the metadata — no
pickle. Shuffling and negative sampling draw from one seeded generator and audio augmentation is
seeded per (epoch, song), so a resumed run continues bit for bit. The head itself is also written
after every epoch, so an interrupted run still leaves a usable head.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from engine.errors import BeatcanvasError
from engine.files import atomic_write
from engine.understanding.heads.transformer import HeadConfig, TransformerHead
from engine.train.data import PromptBank, TrainData
from engine.train.loss import LossConfig, NegativeSampler, head_loss

if TYPE_CHECKING:
    from engine.models.profiles import TextEncoders
    from engine.understanding.prompt_encoding import PromptEncoder

log = logging.getLogger(__name__)

CKPT_FORMAT = "beatcanvas-train-checkpoint"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    negatives: int = 20
    lr: float = 1e-4
    lr_final: float = 5e-6
    seed: int = 0
    negative_quantile: float = 0.5  # negatives come from the lowest-VAG half of the prompts
    bf16: bool = False  # autocast the head's forward to bfloat16 (GPU speed; the loss stays fp32)
    loss: LossConfig = field(default_factory=LossConfig)


@dataclass
class StepInfo:
    epoch: int
    step: int  # global
    batch: int  # within the epoch
    batches: int
    loss: float
    accuracy: float
    lr: float


@dataclass
class EpochInfo:
    epoch: int
    step: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    chance: float  # 1 / (1 + negatives): what a head that learned nothing scores


@dataclass
class TrainResult:
    head: TransformerHead
    history: list[EpochInfo]
    out: Path
    checkpoint: Path


# ---------------------------------------------------------------------------------- prompt targets


def text_fingerprint(text: TextEncoders) -> str:
    """Text encoders → short hash (configs + a few weights): which encoders a target cache belongs to."""
    h = hashlib.sha256()
    for enc in (text.text_encoder, text.text_encoder_2):
        h.update(enc.config.to_json_string(use_diff=False).encode())
        for name, p in sorted(enc.state_dict().items())[:4] + [("last", list(enc.parameters())[-1])]:
            h.update(name.encode())
            h.update(p.detach().float().cpu().flatten()[:4096].numpy().tobytes())
    return h.hexdigest()[:16]


def prompt_targets(texts: list[str], prompt_encoder: PromptEncoder, cache: Path | None, fingerprint: str,
                   batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """(token_mean (P, D), pooled (P, Dp)) float32 on CPU for `texts`, read from / added to `cache`."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    known: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    if cache is not None and cache.is_file():
        try:
            with safe_open(str(cache), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("fingerprint") == fingerprint:
                    tm, pp = f.get_tensor("token_mean"), f.get_tensor("pooled")
                    known = {p: (tm[i], pp[i]) for i, p in enumerate(json.loads(meta["prompts"]))}
                else:
                    log.info("prompt cache %s is for other text encoders; rebuilding", cache.name)
        except Exception as e:  # noqa: BLE001 - a broken cache is rebuilt, never fatal
            log.warning("ignoring unreadable prompt cache %s (%s)", cache, e.__class__.__name__)
    missing = [p for p in dict.fromkeys(texts) if p not in known]
    for i in range(0, len(missing), batch_size):
        chunk = missing[i : i + batch_size]
        pe, pooled = prompt_encoder.encode(chunk)
        for j, p in enumerate(chunk):
            known[p] = (pe[j].float().mean(0).cpu(), pooled[j].float().cpu())
    tm = torch.stack([known[p][0] for p in texts])
    pp = torch.stack([known[p][1] for p in texts])
    if cache is not None and missing:
        cache.parent.mkdir(parents=True, exist_ok=True)
        allp = list(known)
        with atomic_write(cache) as tmp:
            save_file({"token_mean": torch.stack([known[p][0] for p in allp]).contiguous(),
                       "pooled": torch.stack([known[p][1] for p in allp]).contiguous()},
                      str(tmp), metadata={"fingerprint": fingerprint, "prompts": json.dumps(allp)})
    log.info("prompt targets: %d prompts, %d encoded now, %d from cache", len(texts), len(missing), len(texts) - len(missing))
    return tm, pp


# ------------------------------------------------------------------------------------- checkpoints


def checkpoint_path(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".safetensors") + ".ckpt.safetensors")


def data_fingerprint(data: TrainData) -> str:
    h = hashlib.sha256(json.dumps([data.bank.texts, data.prompt_idx.tolist(), data.train, data.val]).encode())
    return h.hexdigest()[:16]


def save_checkpoint(path: Path, head: TransformerHead, opt: torch.optim.Optimizer, gen: torch.Generator,
                    epoch: int, step: int, cfg: TrainConfig, history: list[EpochInfo], data_fp: str) -> None:
    from safetensors.torch import save_file

    tensors = {f"head.{k}": v.detach().contiguous().cpu() for k, v in head.state_dict().items()}
    sd = opt.state_dict()
    for pid, st in sd["state"].items():
        for k, v in st.items():
            tensors[f"optim.{pid}.{k}"] = (v if torch.is_tensor(v) else torch.tensor(v)).detach().contiguous().cpu()
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.gen"] = gen.get_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    meta = {
        "format": CKPT_FORMAT,
        "epoch": str(epoch),
        "step": str(step),
        "train_config": json.dumps(asdict(cfg)),
        "head_config": json.dumps(asdict(head.config)),
        "param_groups": json.dumps(sd["param_groups"]),
        "history": json.dumps([asdict(h) for h in history]),
        "data": data_fp,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:  # a crash mid-write never leaves a half checkpoint
        save_file(tensors, str(tmp), metadata=meta)


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    if not path.is_file():
        raise BeatcanvasError(f"--resume: no checkpoint at {path} — start without --resume")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # noqa: BLE001
        raise BeatcanvasError(f"checkpoint {path.name} is unreadable ({e.__class__.__name__}) — delete it and start again") from e
    if meta.get("format") != CKPT_FORMAT:
        raise BeatcanvasError(f"{path.name} is not a beatcanvas training checkpoint — delete it or pick another --out")
    return tensors, meta


def _restore(tensors: dict[str, torch.Tensor], meta: dict[str, str], head: TransformerHead, opt: torch.optim.Optimizer,
             gen: torch.Generator) -> tuple[int, int, list[EpochInfo]]:
    head.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("head.")}, strict=True)
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    torch.set_rng_state(tensors["rng.torch"])
    gen.set_state(tensors["rng.gen"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    history = [EpochInfo(**h) for h in json.loads(meta["history"])]
    return int(meta["epoch"]), int(meta["step"]), history


# ------------------------------------------------------------------------------------------ the loop


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    if total <= 1:
        return cfg.lr
    return cfg.lr * (cfg.lr_final / cfg.lr) ** (step / (total - 1))


def _batches(n: int, batch_size: int) -> int:
    return max(1, math.ceil(n / batch_size))


@torch.no_grad()
def evaluate(head: TransformerHead, data: TrainData, targets: tuple[torch.Tensor, torch.Tensor],
             sampler: NegativeSampler, cfg: TrainConfig, device: torch.device) -> tuple[float, float]:
    """Validation loss and top-1 retrieval accuracy of the positive among `negatives` VAG negatives.
    Negatives come from a fixed generator, so every epoch is scored on the same candidates."""
    if not data.val:
        return float("nan"), float("nan")
    tm, pp = targets
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    was = head.training
    head.eval()
    tot_loss = tot_acc = 0.0
    for b in range(0, len(data.val), cfg.batch_size):
        idx = data.val[b : b + cfg.batch_size]
        x = data.inputs.embed(idx, 0, False).to(device)
        pos = data.prompt_idx[idx]
        neg = sampler.sample(idx, cfg.negatives, gen)
        pe, pooled = head(x)
        out = head_loss(pe, pooled, tm[pos], tm[neg], pp[pos], pp[neg], cfg.loss)
        tot_loss += float(out.loss) * len(idx)
        tot_acc += float(out.accuracy) * len(idx)
    head.train(was)
    return tot_loss / len(data.val), tot_acc / len(data.val)


def train(
    data: TrainData,
    text: TextEncoders,
    out: str | Path,
    cfg: TrainConfig = TrainConfig(),
    head_config: HeadConfig | None = None,
    device: str | torch.device = "cpu",
    resume: bool = False,
    target_cache: str | Path | None = None,
    on_step: Callable[[StepInfo], None] | None = None,
    on_epoch: Callable[[EpochInfo], None] | None = None,
    extra_meta: dict[str, str] | None = None,
) -> TrainResult:
    """Train a transformer head on `data` against the CLIP text encoders `text`; write it to `out`."""
    from engine.understanding.prompt_encoding import PromptEncoder

    out = Path(out).expanduser()
    ckpt = checkpoint_path(out)
    device = torch.device(device)
    if not data.train:
        raise BeatcanvasError("no training items after the validation split — add data or lower --val-fraction")
    if cfg.negatives < 1 or cfg.batch_size < 1 or cfg.epochs < 1:
        raise BeatcanvasError("--epochs, --batch-size and --negatives must all be ≥ 1")

    fp = text_fingerprint(text)
    cache = Path(target_cache) if target_cache else out.with_name(out.name.removesuffix(".safetensors") + ".prompts.safetensors")
    tm, pp = prompt_targets(data.bank.texts, PromptEncoder(text), cache, fp)
    targets = (tm.to(device), pp.to(device))
    bank: PromptBank = data.bank
    sampler = NegativeSampler(data.va, data.genres, data.prompt_idx, bank.va, bank.genres, cfg.negative_quantile)

    hc = head_config or HeadConfig.for_components(data.inputs.dim, text)
    if hc.audio_dim != data.inputs.dim:
        raise BeatcanvasError(f"head expects {hc.audio_dim}-d CLAP embeddings but the data has {data.inputs.dim}-d — use the same CLAP for both")
    torch.manual_seed(cfg.seed)
    head = TransformerHead(hc).to(device).train()
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    data_fp = data_fingerprint(data)

    start_epoch, step = 0, 0
    history: list[EpochInfo] = []
    if resume:
        tensors, meta = load_checkpoint(ckpt)
        if meta.get("data") != data_fp:
            raise BeatcanvasError(f"{ckpt.name} was trained on different data or --seed — resume with the same "
                                  "--data/--text-distill/--pairs/--seed, or start without --resume")
        saved = json.loads(meta["train_config"])
        now = json.loads(json.dumps(asdict(cfg)))
        if {k: v for k, v in saved.items() if k != "epochs"} != {k: v for k, v in now.items() if k != "epochs"}:
            raise BeatcanvasError(f"{ckpt.name} used other training settings ({saved}) — resume with the same options")
        if json.loads(meta["head_config"]) != json.loads(json.dumps(asdict(hc))):
            raise BeatcanvasError(f"{ckpt.name} holds a head of another shape — resume with the same --profile/--layers")
        if saved["epochs"] != cfg.epochs:
            log.warning("resuming with --epochs %d (was %d): the LR schedule stretches from here on", cfg.epochs, saved["epochs"])
        start_epoch, step, history = _restore(tensors, meta, head, opt, gen)
        log.info("resumed from %s at epoch %d, step %d", ckpt.name, start_epoch, step)

    n_batches = _batches(len(data.train), cfg.batch_size)
    total = cfg.epochs * n_batches
    train_idx = torch.tensor(data.train, dtype=torch.long)
    chance = 1.0 / (1 + cfg.negatives)
    for epoch in range(start_epoch, cfg.epochs):
        head.train()
        perm = train_idx[torch.randperm(len(train_idx), generator=gen)]
        sum_loss = sum_acc = 0.0
        for b in range(n_batches):
            idx = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            lr = lr_at(step, total, cfg)
            for g in opt.param_groups:
                g["lr"] = lr
            x = data.inputs.embed(idx.tolist(), epoch, True).to(device)
            pos = data.prompt_idx[idx]
            neg = sampler.sample(idx, cfg.negatives, gen)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                pe, pooled = head(x)
            res = head_loss(pe, pooled, targets[0][pos], targets[0][neg], targets[1][pos], targets[1][neg], cfg.loss)
            opt.zero_grad(set_to_none=True)
            res.loss.backward()
            opt.step()
            step += 1
            loss_v, acc_v = float(res.loss.detach()), float(res.accuracy)
            sum_loss += loss_v * len(idx)
            sum_acc += acc_v * len(idx)
            if on_step:
                on_step(StepInfo(epoch, step, b + 1, n_batches, loss_v, acc_v, lr))
        val_loss, val_acc = evaluate(head, data, targets, sampler, cfg, device)
        info = EpochInfo(epoch + 1, step, sum_loss / len(train_idx), sum_acc / len(train_idx),
                         None if math.isnan(val_loss) else val_loss, None if math.isnan(val_acc) else val_acc, chance)
        history.append(info)
        save_checkpoint(ckpt, head, opt, gen, epoch + 1, step, cfg, history, data_fp)
        _save_head(head, out, history, cfg, extra_meta)
        if on_epoch:
            on_epoch(info)
    if not history or start_epoch >= cfg.epochs:
        _save_head(head, out, history, cfg, extra_meta)
    return TrainResult(head.eval(), history, out, ckpt)


def _save_head(head: TransformerHead, out: Path, history: list[EpochInfo], cfg: TrainConfig, extra: dict | None) -> None:
    meta = {"trained_epochs": str(len(history)), "train_config": json.dumps(asdict(cfg))}
    if history and history[-1].val_accuracy is not None:
        meta["val_accuracy"] = f"{history[-1].val_accuracy:.4f}"
    meta.update(extra or {})
    head.save(out, extra=meta)
