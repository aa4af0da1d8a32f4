"""Tiny random-weight PaliGemma checkpoints, written in the two formats a user has:

- a Hugging Face directory (``save_pretrained``: config.json, model.safetensors,
  tokenizer files);
- a pi0.5 PyTorch checkpoint as openpi's converter writes it: ``model.safetensors``
  with ``paligemma_with_expert.paligemma.*`` keys in transformers 4.5x's names
  (``model.vision_tower.vision_model.*``; the tied embedding stored only as
  ``lm_head.weight``), the action expert's weights beside them, and a ``config.json``
  naming ``paligemma_variant``; no tokenizer (it is written to its own directory).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

IMAGE = 32  # px: 4x4 patches of 8 px -> 16 tokens per image
# sizes of the tiny model, as overrides of the pi0.5 (gemma_2b) architecture
TINY_CONFIG = {
    "projection_dim": 32,
    "image_token_index": 95,
    "vocab_size": 96,
    "text_config": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "vocab_size": 96,
    },
    "vision_config": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "patch_size": 8,
        "image_size": IMAGE,
        "projection_dim": 32,
    },
}
SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]


def tiny_tokenizer(directory: Path, words: list[str]):
    """A word-level tokenizer (``<bos>`` first, as Gemma's) saved with transformers."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIALS + sorted(set(words)))}
    assert len(vocab) <= TINY_CONFIG["vocab_size"] - 1
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", vocab["<bos>"])]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
        pad_token="<pad>",
    )
    fast.save_pretrained(str(directory))
    return fast


def tiny_model(seed: int = 0):
    """A random-weight ``PaliGemmaForConditionalGeneration`` of the tiny size."""
    from transformers import PaliGemmaForConditionalGeneration

    from adv_pipeline.estimator.pretrained import paligemma_config

    torch.manual_seed(seed)
    config = paligemma_config(None, TINY_CONFIG)
    return PaliGemmaForConditionalGeneration(config).eval()


def write_hf_paligemma(directory: Path, words: list[str], seed: int = 0):
    """A Hugging Face PaliGemma directory; returns the model."""
    model = tiny_model(seed)
    model.save_pretrained(str(directory))
    tiny_tokenizer(directory, words)
    return model


def pi05_keys(model) -> dict[str, torch.Tensor]:
    """The model's weights under the names openpi's pi0.5 PyTorch checkpoint uses."""
    out = {}
    for key, value in model.state_dict().items():
        if key == "model.language_model.embed_tokens.weight":
            continue  # tied: the converter stores only lm_head.weight
        key = key.replace("model.vision_tower.", "model.vision_tower.vision_model.")
        out[f"paligemma_with_expert.paligemma.{key}"] = value.clone().contiguous()
    # parts of pi0.5 that are not the PaliGemma
    out["paligemma_with_expert.gemma_expert.model.layers.0.mlp.up_proj.weight"] = torch.zeros(8, 4)
    out["action_in_proj.weight"] = torch.zeros(4, 14)
    out["time_mlp_in.weight"] = torch.zeros(4, 4)
    return out


def write_pi05_checkpoint(directory: Path, seed: int = 0, keys: dict | None = None):
    """A pi0.5 PyTorch checkpoint directory (``keys`` replaces the weights, e.g. to write
    a wrong layout); returns the model."""
    from safetensors.torch import save_file

    model = tiny_model(seed)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(keys if keys is not None else pi05_keys(model), str(directory / "model.safetensors"))
    (directory / "config.json").write_text(
        json.dumps(
            {
                "type": "pi05",
                "paligemma_variant": "gemma_2b",
                "action_expert_variant": "gemma_300m",
                "precision": "float32",
            }
        )
    )
    return model
