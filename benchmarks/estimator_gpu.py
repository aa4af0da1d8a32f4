"""The seed's estimator at full size on a GPU: a PaliGemma-architecture estimator (pi0.5's
SigLIP So400m/14 + Gemma 2B, random weights), 224x224 images, three cameras, KAI0 pairs
(six images per sample), the state and a task prompt, bf16 autocast, AdamW: samples/s,
model FLOPs utilisation and peak GPU memory over a few hundred training steps.

    python benchmarks/estimator_gpu.py [--steps 300] [--batch-size 8] [--freeze none]
        [--gradient-checkpointing] [--peak-tflops 989]

MFU = (training FLOPs per step, counted once with torch's FlopCounterMode on the real
model) * steps/s / the GPU's dense bf16 peak (--peak-tflops; 989 for an H100 SXM, 989 for
an H200). ``--tiny`` runs a two-layer model for a few steps on CPU (checks the script).
Nothing is downloaded: the weights are random and the tokenizer is built here.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TASK = "Flatten and fold the cloth."


def build(args) -> tuple[torch.nn.Module, object]:
    from adv_pipeline.estimator.config import DataConfig, ModelConfig
    from adv_pipeline.estimator.model import AdvantageEstimator
    from tests.paligemma_fixtures import IMAGE, TINY_CONFIG, tiny_tokenizer

    tok_dir = Path(tempfile.mkdtemp(prefix="estimator_gpu_tok_"))
    tiny_tokenizer(tok_dir, TASK.lower().replace(".", "").split() + [TASK.split()[-1]])
    kwargs = {"random_init": True}
    if args.tiny:
        kwargs["paligemma_config"] = TINY_CONFIG
    size = IMAGE if args.tiny else 224
    model = ModelConfig(
        variant="KAI0",
        backbone="paligemma",
        tokenizer=str(tok_dir),
        width=256,
        state_dim=14,
        freeze=args.freeze,
        gradient_checkpointing=args.gradient_checkpointing,
        backbone_kwargs=kwargs,
    )
    data = DataConfig(image_size=(size, size))
    return AdvantageEstimator(model, data), data


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20, help="steps not timed")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--freeze", default="none", choices=["none", "vision", "backbone"])
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--tiny", action="store_true", help="a tiny model on CPU (smoke run)")
    args = parser.parse_args()
    if args.tiny:
        args.steps, args.warmup = min(args.steps, 4), 1
    device = torch.device("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    torch.manual_seed(0)
    model, data = build(args)
    model = model.to(device).train()
    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    b, (h, w) = args.batch_size, data.image_size
    images = torch.rand(b, 2, 3, 3, h, w, device=device) * 2 - 1  # KAI0 pairs, 3 cameras
    state = torch.randn(b, 2, 14, device=device)
    target = torch.rand(b, device=device) * 2 - 1
    ids, mask = model.tokenize([TASK] * b)
    text = (ids.to(device), mask.to(device))
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step() -> torch.Tensor:
        with autocast:
            loss = model(images, state, target, text)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    flops_per_step = counter.get_total_flops()
    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    loss.item()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    steps_s = args.steps / seconds
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    peak_gb = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    vc = model.backbone.vlm.config.vision_config
    tokens = 2 * 3 * (vc.image_size // vc.patch_size) ** 2
    print(f"device: {name}; parameters {n_params / 1e9:.3f} B ({n_train / 1e9:.3f} B trained)")
    print(
        f"batch {b} x (2 timesteps x 3 cameras x {h}x{w}; {tokens} image tokens + state + "
        f"{ids.shape[1]} text tokens), bf16 autocast={device.type == 'cuda'}, "
        f"freeze={args.freeze}, gradient checkpointing={args.gradient_checkpointing}"
    )
    print(f"training FLOPs per sample: {flops_per_step / b / 1e12:.2f} TFLOP")
    print(f"{args.steps} steps in {seconds:.1f} s: {steps_s * b:.1f} samples/s")
    if device.type == "cuda":
        mfu = flops_per_step * steps_s / (args.peak_tflops * 1e12)
        print(f"model FLOPs utilisation: {mfu:.1%} of {args.peak_tflops:.0f} TFLOP/s")
        print(f"peak GPU memory: {peak_gb:.1f} GiB")


if __name__ == "__main__":
    main()
