"""`beatcanvas train --out HEAD.safetensors [--data MANIFEST.csv | --text-distill]`: train the transformer head.

The engine does the work (engine/train/); this module reads options, builds the models of the chosen
profile, and draws the progress bar (loss and retrieval accuracy per step, a line per epoch).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from engine.errors import BeatcanvasError

log = logging.getLogger(__name__)


def _device(spec: str) -> str:
    import torch

    if spec == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise BeatcanvasError(f"--device {spec}: no CUDA GPU is visible to torch — use --device cpu or install a CUDA build of torch")
    return spec


def train_cmd(
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where to write the trained head (.safetensors)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Audio manifest CSV: path, valence, energy, genre[, prompt][, tempo]."),
    text_distill: bool = typer.Option(False, "--text-distill", help="Train from CLAP text embeddings of generated music captions (no audio needed)."),
    pairs: int = typer.Option(20000, "--pairs", help="Caption/prompt pairs to generate for --text-distill."),
    epochs: int = typer.Option(10, "--epochs", min=1),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    negatives: int = typer.Option(20, "--negatives", min=1, help="VAG-chosen negative prompts per item."),
    temperature: float = typer.Option(0.07, "--temperature", help="InfoNCE temperature τ."),
    lr: float = typer.Option(1e-4, "--lr", help="Initial learning rate (decays exponentially)."),
    lr_final: float = typer.Option(5e-6, "--lr-final", help="Learning rate at the last step."),
    views: int = typer.Option(0, "--views", min=0, help="Audio: reuse K augmented views per song (epoch e uses view e mod K, embeddings kept in memory); 0 = a fresh view every epoch."),
    val_fraction: float = typer.Option(0.15, "--val-fraction", help="Share of songs/pairs held out for validation."),
    layers: int = typer.Option(4, "--layers", min=1, help="Transformer layers per branch (thesis: 4)."),
    heads: int = typer.Option(8, "--heads", min=1, help="Attention heads (thesis: 8)."),
    seed: int = typer.Option(0, "--seed"),
    bf16: bool = typer.Option(False, "--bf16", help="bfloat16 autocast for the head (recommended on GPUs with bf16)."),
    profile: str = typer.Option("real", "--profile", help="tiny | random-full | real (published weights)."),
    model: str = typer.Option("sdxl-turbo", "--model", help="Whose text encoders to target: sdxl-turbo | sdxl-lightning."),
    models_dir: Optional[Path] = typer.Option(None, "--models-dir", envvar="BEATCANVAS_MODELS", file_okay=False),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N | mps."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT's checkpoint (bit-for-bit)."),
    list_genres: bool = typer.Option(False, "--list-genres", help="Print the genres a manifest may use and exit."),
) -> None:
    """Train the transformer head (thesis §4.3): InfoNCE against CLIP text embeddings, VAG negatives."""
    console = Console()
    if list_genres:
        from engine.understanding.descriptors import GENRES

        console.print(", ".join(g.name for g in GENRES))
        return
    if out is None:
        raise BeatcanvasError("--out HEAD.safetensors is required: where to write the trained head")
    if (data is None) == (not text_distill):
        raise BeatcanvasError("give exactly one of --data MANIFEST.csv or --text-distill")
    from engine.models.profiles import as_profile

    profile_ = as_profile(profile)
    if not out.name.endswith(".safetensors"):
        raise BeatcanvasError(f"--out {out}: the head is a .safetensors file — name it e.g. {out.with_suffix('.safetensors').name}")

    from engine.understanding.clap import ClapEncoder
    from engine.understanding.heads.transformer import HeadConfig
    from engine.models.profiles import build_clap, build_text_encoders
    from engine.train.data import audio_data, read_manifest, text_data
    from engine.train.loop import EpochInfo, StepInfo, TrainConfig, train
    from engine.train.loss import LossConfig

    dev = _device(device)
    if dev.startswith("cuda"):
        import torch

        torch.set_float32_matmul_precision("high")  # TF32 matmuls for the fp32 parts
    songs = read_manifest(data) if data is not None else None  # validate before loading any model
    with console.status(f"loading {profile} CLAP and text encoders on {dev}…"):
        clap = ClapEncoder(build_clap(profile_, device=dev, models_dir=models_dir), device=dev)
        text = build_text_encoders(profile_, device=dev, models_dir=models_dir, model=model)
    if songs is not None and data is not None:
        with console.status(f"decoding {len(songs)} songs…"):
            td = audio_data(songs, clap, val_fraction, seed, views=views)
        source = f"manifest {data.name}"
    else:
        with console.status(f"embedding {pairs} captions with CLAP's text tower…"):
            td = text_data(pairs, clap, val_fraction, seed)
        source = f"text-distill ({pairs} pairs)"
    console.print(f"{source}: {len(td.train)} train / {len(td.val)} val items, {len(td.bank.texts)} prompts, "
                  f"device {dev}, chance accuracy {1 / (1 + negatives):.3f}")
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, negatives=negatives, lr=lr, lr_final=lr_final, seed=seed, bf16=bf16,
                      loss=LossConfig(temperature=temperature))
    hc = HeadConfig.for_components(clap.embed_dim, text, layers=layers, heads=heads)

    progress = Progress(
        TextColumn("epoch {task.fields[epoch]}/" + str(epochs)),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:.3f}  lr {task.fields[lr]:.2e}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    task = progress.add_task("train", total=None, epoch=0, loss=float("nan"), acc=float("nan"), lr=lr)

    def on_step(s: StepInfo) -> None:
        progress.update(task, total=s.batches, completed=s.batch, epoch=s.epoch + 1, loss=s.loss, acc=s.accuracy, lr=s.lr)

    def on_epoch(e: EpochInfo) -> None:
        val = (f"val loss {e.val_loss:.4f}  val top-1 {e.val_accuracy:.3f}" if e.val_accuracy is not None else "no validation set")
        progress.console.print(f"epoch {e.epoch}: train loss {e.train_loss:.4f}  train top-1 {e.train_accuracy:.3f}  "
                               f"{val}  (chance {e.chance:.3f})")

    with progress:
        result = train(td, text, out, cfg, hc, device=dev, resume=resume, on_step=on_step, on_epoch=on_epoch,
                       extra_meta={"data": source, "profile": profile, "clap": clap.name})
    console.print(f"[green]head written to {result.out}[/] (checkpoint {result.checkpoint.name}); "
                  f"use it with head = \"transformer\", head_path = \"{result.out}\" in a preset")


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
