"""The `tiny` profile: every component from the real diffusers/transformers classes, tiny configs.

Tests and `--profile tiny` use it: it builds in seconds on a CPU, needs no download, and is
deterministic (fixed seeds). Tokenizers are real CLIP / RoBERTa byte-level BPE tokenizers whose vocab
and merges are learned here, at build time, from a small built-in corpus.

Shapes differ from the real models (the text width is 32 per encoder, not 768/1280), so code reads
dimensions from the components, never from constants.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

SEED = 0

# A small corpus of the words prompts are made of, to learn BPE merges from.
_CORPUS = """
a an the of and in with at by from on under over through into light dark soft loud slow fast calm
energetic happy sad melancholic euphoric dreamy aggressive peaceful tense warm cool bright gloomy
music song track beat bass drums guitar piano synth strings voice vocals choir orchestra electronic
ambient techno house trance dubstep drum jazz blues rock metal punk pop hip hop rap classical folk
country reggae soul funk disco latin salsa samba bossa nova flamenco opera baroque romantic cinematic
painting photo photograph illustration watercolor oil ink neon noir city night forest ocean mountain
desert space stars galaxy nebula sunset sunrise rain storm fire water ice glowing colorful abstract
portrait landscape detailed highly realistic style art artwork scene dance party festival crowd
minimal bauhaus anime retro cosmic ukiyo-e woodblock print impressionism surreal vivid pastel golden
"""


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP's reversible byte → printable-unicode map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def _learn_merges(words: list[tuple[str, ...]], n_merges: int) -> list[tuple[str, str]]:
    """Plain BPE: repeatedly merge the most frequent adjacent pair (ties broken by the pair)."""
    counts = Counter(words)
    merges: list[tuple[str, str]] = []
    for _ in range(n_merges):
        pairs: Counter = Counter()
        for word, c in counts.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += c
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        merged: Counter = Counter()
        for word, c in counts.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += c
        counts = merged
    return merges


def _bpe_vocab(
    decorate: Callable[[str], tuple[str, ...]], specials_first: list[str], specials_last: list[str], n_merges: int
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    alphabet = list(bytes_to_unicode().values())
    words = [decorate(w) for w in _CORPUS.split()]
    merges = _learn_merges(words, n_merges)
    tokens = list(specials_first) + alphabet
    if decorate("x")[-1].endswith("</w>"):
        tokens += [c + "</w>" for c in alphabet]
    tokens += ["".join(m) for m in merges]
    tokens = list(dict.fromkeys(tokens)) + specials_last
    return {t: i for i, t in enumerate(tokens)}, merges


@lru_cache(maxsize=None)
def _clip_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    # CLIP: lower-cased words, last symbol carries "</w>", specials at the end of the vocab.
    return _bpe_vocab(
        lambda w: tuple(w[:-1]) + (w[-1] + "</w>",),
        [],
        ["<|startoftext|>", "<|endoftext|>"],
        300,
    )


@lru_cache(maxsize=None)
def _roberta_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    # RoBERTa / GPT-2: "Ġ" marks a leading space.
    return _bpe_vocab(
        lambda w: ("Ġ",) + tuple(w), ["<s>", "<pad>", "</s>", "<unk>"], ["<mask>"], 300
    )


def clip_tokenizer(pad_token: str = "<|endoftext|>") -> Any:
    from transformers import CLIPTokenizer

    vocab, merges = _clip_vocab()
    return CLIPTokenizer(vocab=dict(vocab), merges=list(merges), pad_token=pad_token, model_max_length=77)


def roberta_tokenizer() -> Any:
    from transformers import RobertaTokenizer

    vocab, merges = _roberta_vocab()
    return RobertaTokenizer(vocab=dict(vocab), merges=list(merges), model_max_length=512)


def write_vocab_files(directory: str | Path, kind: str = "clip") -> None:
    """Write vocab.json and merges.txt as the published CLIP / RoBERTa tokenizer folders have them."""
    import json

    vocab, merges = _clip_vocab() if kind == "clip" else _roberta_vocab()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))


TEXT_WIDTH = 32  # hidden size of each tiny CLIP text encoder; prompt_embeds are 2 × 32 = 64 wide


def clip_text_config(projection: bool) -> Any:
    from transformers import CLIPTextConfig

    vocab, _ = _clip_vocab()
    return CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=TEXT_WIDTH,
        intermediate_size=37,
        num_hidden_layers=3,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=TEXT_WIDTH,
        hidden_act="gelu" if projection else "quick_gelu",
        bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )


def text_encoders() -> tuple[Any, Any]:
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(SEED)
    te = CLIPTextModel(clip_text_config(projection=False)).eval()
    torch.manual_seed(SEED + 1)
    te2 = CLIPTextModelWithProjection(clip_text_config(projection=True)).eval()
    return te, te2


def unet() -> Any:
    from diffusers import UNet2DConditionModel

    torch.manual_seed(SEED)
    return UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        transformer_layers_per_block=(1, 1),
        use_linear_projection=True,
        cross_attention_dim=2 * TEXT_WIDTH,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=6 * 8 + TEXT_WIDTH,  # 6 time ids × 8 + pooled
        norm_num_groups=8,
    ).eval()


def vae() -> Any:
    """A full AutoencoderKL with SDXL's 8× downsampling (4 blocks), tiny channels."""
    from diffusers import AutoencoderKL

    torch.manual_seed(SEED)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=64,
        scaling_factor=0.13025,
    ).eval()


def taesd() -> Any:
    from diffusers import AutoencoderTiny

    torch.manual_seed(SEED)
    return AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 1, 1, 1),
        num_decoder_blocks=(1, 1, 1, 1),
        latent_channels=4,
    ).eval()


def clap() -> Any:
    """A tiny `ClapModel` that accepts the real `ClapFeatureExtractor`'s output (64 mel × 1001 frames,
    reshaped by HTSAT to a 256² "image"), so preprocessing is exercised exactly as in production."""
    from transformers import ClapAudioConfig, ClapConfig, ClapModel, ClapTextConfig

    vocab, _ = _roberta_vocab()
    text = ClapTextConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=80,
        pad_token_id=vocab["<pad>"],
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["</s>"],
        projection_hidden_act="relu",
    )
    audio = ClapAudioConfig(
        spec_size=256,
        num_mel_bins=64,
        window_size=8,
        patch_size=4,
        patch_stride=(4, 4),
        patch_embeds_hidden_size=16,
        hidden_size=128,  # = patch_embeds_hidden_size × 2^(len(depths) − 1)
        depths=[1, 1, 1, 1],
        num_attention_heads=[2, 2, 4, 4],
        enable_fusion=False,
        projection_hidden_act="relu",
    )
    torch.manual_seed(SEED)
    return ClapModel(ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=16)).eval()

