"""Pretrained PaliGemma weights from local files: the architecture, the key map and the
tokenizer (no download; ``transformers`` is imported only here and in the backbones that
use it).

Two checkpoint kinds are read:

- a Hugging Face PaliGemma directory: ``config.json`` (``model_type: paligemma``), one or
  several ``*.safetensors`` (with ``model.safetensors.index.json``), tokenizer files;
- a pi0.5 (or pi0) PyTorch checkpoint as openpi's JAX-to-PyTorch converter and
  LeRobot's ``pi05`` policy write it: ``model.safetensors`` whose PaliGemma weights sit
  under ``paligemma_with_expert.paligemma.*`` (LeRobot adds ``model.`` in front), beside
  the action expert's weights, which are not used here. Its ``config.json`` names the
  PaliGemma size (``paligemma_variant: gemma_2b``); it ships no tokenizer.

Keys are mapped explicitly onto ``transformers.PaliGemmaModel``'s layout (the names of
transformers 4.4x, 4.5x and 5.x are all accepted); any weight the model expects but the
checkpoint lacks, any checkpoint key that has no place and any shape mismatch is an
error that lists them.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from adv_pipeline.errors import InputError

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
TOKENIZER_DIR = "tokenizer"  # in a checkpoint's assets
BACKBONE_CONFIG_FILE = "backbone_config.json"  # in a checkpoint's assets

# The PaliGemma of pi0 / pi0.5 (openpi ``paligemma_variant: gemma_2b``): SigLIP So400m/14
# at 224 px (256 tokens per image) and Gemma 2B with openpi's vocabulary.
PALIGEMMA_VARIANTS: dict[str, dict] = {
    "gemma_2b": {
        "model_type": "paligemma",
        "projection_dim": 2048,
        "image_token_index": 257152,
        "vocab_size": 257152,
        "text_config": {
            "model_type": "gemma",
            "hidden_size": 2048,
            "intermediate_size": 16384,
            "num_hidden_layers": 18,
            "num_attention_heads": 8,
            "num_key_value_heads": 1,
            "head_dim": 256,
            "vocab_size": 257152,
            "hidden_activation": "gelu_pytorch_tanh",
        },
        "vision_config": {
            "model_type": "siglip_vision_model",
            "hidden_size": 1152,
            "intermediate_size": 4304,
            "num_hidden_layers": 27,
            "num_attention_heads": 16,
            "patch_size": 14,
            "image_size": 224,
            "projection_dim": 2048,
            "vision_use_head": False,
        },
    }
}

# top-level modules of a pi0 / pi0.5 checkpoint that are not part of the PaliGemma
_ACTION_EXPERT_PREFIXES = (
    "paligemma_with_expert.gemma_expert.",
    "action_in_proj.",
    "action_out_proj.",
    "action_time_mlp_in.",
    "action_time_mlp_out.",
    "time_mlp_in.",
    "time_mlp_out.",
    "state_proj.",
)
_PI0_PREFIX = "paligemma_with_expert.paligemma."
# older transformers names -> PaliGemmaModel's (5.x) names, applied in order
_RENAMES = (
    ("language_model.model.", "language_model."),
    ("vision_tower.vision_model.", "vision_tower."),
)
_TIED = ("lm_head.weight", "language_model.lm_head.weight")
_EMBED = "language_model.embed_tokens.weight"


def _deep_update(base: dict, over: Mapping) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_update(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_config(path: Path) -> dict:
    file = path / CONFIG_FILE
    if not file.is_file():
        return {}
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{file}: not valid JSON ({exc})") from exc


def check_pretrained_dir(path: str | Path | None, what: str = "estimator.model.pretrained") -> Path:
    """``path`` as a directory holding safetensors weights, or a clear error."""
    if path is None:
        raise InputError(
            f"{what} is null; this backbone starts from pretrained weights. Fix: set {what} to "
            f"a local Hugging Face PaliGemma directory or a pi0.5 PyTorch checkpoint directory"
        )
    p = Path(path).expanduser()
    if not p.is_dir():
        raise InputError(
            f"{what}={path}: no such directory (nothing is downloaded). Fix: download the "
            f"checkpoint first and give its local directory"
        )
    if not sorted(p.glob("*.safetensors")):
        raise InputError(
            f"{what}={p}: no *.safetensors file in it. Fix: point at the directory holding "
            f"model.safetensors (a pi0.5 checkpoint converted to PyTorch, or a Hugging Face "
            f"PaliGemma directory)"
        )
    return p


def paligemma_config(path: str | Path | None, overrides: Mapping | None = None):
    """The ``transformers.PaliGemmaConfig`` of a checkpoint directory: its own
    ``config.json`` when it is a Hugging Face PaliGemma config, else the size named by
    openpi's / LeRobot's ``paligemma_variant`` (``gemma_2b``, also for ``path=None``);
    ``overrides`` (nested dicts, e.g. ``{"text_config": {"num_hidden_layers": 2}}``) are
    applied on top."""
    from transformers import PaliGemmaConfig

    path = Path(path) if path is not None else None
    raw = _read_config(path) if path is not None else {}
    if raw.get("model_type") == "paligemma":
        base = raw
    elif "paligemma_variant" in raw or not raw:
        variant = raw.get("paligemma_variant", "gemma_2b")
        if variant not in PALIGEMMA_VARIANTS:
            raise InputError(
                f"{path / CONFIG_FILE}: paligemma_variant={variant!r} is not one this project "
                f"knows ({sorted(PALIGEMMA_VARIANTS)}). Fix: give the architecture in "
                f"estimator.model.backbone_kwargs.paligemma_config"
            )
        base = PALIGEMMA_VARIANTS[variant]
    else:
        raise InputError(
            f"{path / CONFIG_FILE}: neither a Hugging Face PaliGemma config (model_type "
            f"paligemma, found {raw.get('model_type')!r}) nor an openpi / LeRobot pi0.5 config "
            f"(paligemma_variant). Fix: point estimator.model.pretrained at a PaliGemma or pi0.5 "
            f"checkpoint directory"
        )
    return PaliGemmaConfig(**_deep_update(base, overrides or {}))


def _safetensors_files(path: Path) -> list[Path]:
    index = path / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [path / n for n in names]
    return sorted(path.glob("*.safetensors"))


@dataclass
class KeyReport:
    """How a checkpoint's keys were placed.

    Attributes:
        placed: number of model weights loaded.
        ignored: checkpoint keys deliberately unused (pi0.5's action expert, other parts).
        missing: model weights the checkpoint lacks.
        unexpected: checkpoint keys with no place in the model.
        mismatched: ``(key, checkpoint shape, model shape)`` of wrong-shaped weights.
    """

    placed: int = 0
    ignored: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)


def map_key(key: str) -> str | None:
    """A checkpoint key -> ``PaliGemmaModel`` state-dict key; None for keys that belong
    to pi0.5's action expert (never loaded). The tied ``lm_head.weight`` maps to itself."""
    if any(key.startswith(p) or key.startswith("model." + p) for p in _ACTION_EXPERT_PREFIXES):
        return None
    if _PI0_PREFIX in key:
        key = key.split(_PI0_PREFIX, 1)[1]
    if key.startswith("model.") and not key.startswith("model.lm_head"):
        key = key[len("model.") :]
    for old, new in _RENAMES:
        if key.startswith(old):
            key = new + key[len(old) :]
    return key


def load_paligemma_weights(
    module: torch.nn.Module,
    path: str | Path,
    part: str = "",
    what: str = "estimator.model.pretrained",
) -> KeyReport:
    """Load the weights under ``path`` into ``module`` (a ``PaliGemmaModel``, or with
    ``part="vision_tower."`` a ``SiglipVisionModel``: only that part is placed, the rest
    ignored). Raises :class:`InputError` listing every missing, unplaceable or
    wrong-shaped key; on success logs the counts."""
    from safetensors import safe_open

    path = Path(path)
    target = module.state_dict()
    report = KeyReport()
    found: dict[str, torch.Tensor] = {}
    tied: torch.Tensor | None = None
    for file in _safetensors_files(path):
        with safe_open(str(file), framework="pt") as f:
            for raw in f.keys():
                key = map_key(raw)
                if key is None:
                    report.ignored.append(raw)
                    continue
                if key in _TIED:
                    tied = f.get_tensor(raw)
                    continue
                if part:
                    if not key.startswith(part):
                        report.ignored.append(raw)
                        continue
                    key = key[len(part) :]
                if key not in target:
                    report.unexpected.append(raw)
                    continue
                found[key] = f.get_tensor(raw)
    embed = _EMBED[len(part) :] if part and _EMBED.startswith(part) else _EMBED
    if embed in target and embed not in found and tied is not None:
        found[embed] = tied  # the output projection is tied to the input embedding
    for key, tensor in found.items():
        if tuple(tensor.shape) != tuple(target[key].shape):
            report.mismatched.append((key, tuple(tensor.shape), tuple(target[key].shape)))
    report.missing = sorted(set(target) - set(found))
    if report.missing or report.unexpected or report.mismatched:
        raise InputError(_key_error(path, report, what))
    module.load_state_dict(found, strict=True)
    report.placed = len(found)
    logger.info(
        "%s: loaded %d weights (%d keys of other parts ignored)",
        path,
        report.placed,
        len(report.ignored),
    )
    return report


def compress_keys(keys: list[str]) -> list[str]:
    """Keys with their layer numbers folded: ``a.layers.{0-17}.b`` stands for 18 keys
    (so that a list of hundreds of keys stays readable, and complete)."""
    groups: dict[str, list[int]] = {}
    for key in keys:
        m = re.search(r"\.(\d+)\.", key)
        if m is None:
            groups.setdefault(key, [])
            continue
        pattern = key[: m.start(1)] + "{}" + key[m.end(1) :]
        groups.setdefault(pattern, []).append(int(m.group(1)))
    out = []
    for pattern, numbers in groups.items():
        if not numbers:
            out.append(pattern)
            continue
        numbers = sorted(set(numbers))
        spans, start = [], numbers[0]
        for a, b in zip(numbers, numbers[1:] + [None]):
            if b != a + 1:
                spans.append(str(a) if a == start else f"{start}-{a}")
                start = b
        label = spans[0] if len(spans) == 1 and "-" not in spans[0] else "{" + ",".join(spans) + "}"
        out.append(pattern.replace("{}", label))
    return out


def _key_error(path: Path, report: KeyReport, what: str, show: int = 60) -> str:
    def listed(items: list) -> str:
        items = compress_keys(items) if items and isinstance(items[0], str) else items
        more = f" ... and {len(items) - show} more" if len(items) > show else ""
        return ", ".join(str(i) for i in items[:show]) + more

    parts = [f"{what}={path}: the checkpoint's keys do not fit the PaliGemma model"]
    if report.unexpected:
        parts.append(
            f"{len(report.unexpected)} keys could not be placed: {listed(report.unexpected)}"
        )
    if report.missing:
        parts.append(f"{len(report.missing)} model weights are missing: {listed(report.missing)}")
    if report.mismatched:
        rows = [f"{k} {tuple(a)} in the checkpoint vs {tuple(b)}" for k, a, b in report.mismatched]
        parts.append(f"{len(rows)} shapes differ: {listed(rows)}")
    parts.append(
        "Fix: give a Hugging Face PaliGemma directory or a pi0.5 PyTorch checkpoint "
        "(keys paligemma_with_expert.paligemma.*); if the sizes differ, check config.json "
        "or estimator.model.backbone_kwargs.paligemma_config"
    )
    return "; ".join(parts)


def load_tokenizer(*candidates: str | Path | None, what: str = "estimator.model.tokenizer"):
    """The first of ``candidates`` that holds tokenizer files, loaded with
    ``transformers.AutoTokenizer`` from local files only."""
    from transformers import AutoTokenizer

    tried = []
    for c in candidates:
        if c is None:
            continue
        p = Path(c).expanduser()
        tried.append(str(p))
        if (p / "tokenizer.json").is_file() or (p / "tokenizer.model").is_file():
            return AutoTokenizer.from_pretrained(str(p), local_files_only=True)
    raise InputError(
        f"no tokenizer files (tokenizer.json or tokenizer.model) in {tried}; pi0.5 checkpoints "
        f"ship none. Fix: set {what} to a directory with the PaliGemma tokenizer (e.g. a "
        f"downloaded google/paligemma-3b-pt-224)"
    )
