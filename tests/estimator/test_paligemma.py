"""Stage 1 and 2 with the seed's pretrained backbone: tiny random-weight PaliGemma
checkpoints written with transformers in the Hugging Face and the pi0.5 format, loaded
by key map, trained and used for labelling through the real Kedro pipelines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adv_pipeline.checkpoints import load_checkpoint
from adv_pipeline.errors import InputError
from adv_pipeline.estimation.inference import predict_episode
from adv_pipeline.estimator.config import DataConfig, ModelConfig
from adv_pipeline.estimator.evaluate import load_estimator
from adv_pipeline.estimator.model import AdvantageEstimator, TaskPrompts, to_model_input
from adv_pipeline.estimator.pretrained import map_key
from adv_pipeline.lerobot import LeRobotDatasetReader

from ..conftest import doctor_failures, mlflow_runs, stage0_labelled
from ..paligemma_fixtures import (
    IMAGE,
    TINY_CONFIG,
    pi05_keys,
    tiny_tokenizer,
    write_hf_paligemma,
    write_pi05_checkpoint,
)
from ..robot_fixtures import TASKS

WORDS = " ".join(TASKS).split()
DATA = DataConfig(image_size=(IMAGE, IMAGE))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """{"hf": dir, "pi05": dir, "tokenizer": dir, "model": the source model}: both
    formats hold the same weights."""
    root = tmp_path_factory.mktemp("paligemma")
    model = write_hf_paligemma(root / "hf", WORDS)
    write_pi05_checkpoint(root / "pi05")
    tiny_tokenizer(root / "tokenizer", WORDS)
    return {
        "hf": root / "hf",
        "pi05": root / "pi05",
        "tokenizer": root / "tokenizer",
        "model": model,
    }


def _estimator(ckpt, fmt: str, **model) -> AdvantageEstimator:
    extra = {"backbone_kwargs": {"paligemma_config": TINY_CONFIG}} if fmt == "pi05" else {}
    tokenizer = str(ckpt["tokenizer"]) if fmt == "pi05" else None
    config = ModelConfig(
        backbone=model.pop("backbone", "paligemma"),
        pretrained=str(ckpt[fmt]),
        tokenizer=tokenizer,
        width=32,
        state_dim=14,
        **extra,
        **model,
    )
    return AdvantageEstimator(config, DATA)


def test_both_checkpoint_formats_load_the_same_weights(checkpoints):
    source = {k.removeprefix("model."): v for k, v in checkpoints["model"].state_dict().items()}
    for fmt in ("hf", "pi05"):
        loaded = _estimator(checkpoints, fmt).backbone.vlm.state_dict()
        assert set(loaded) <= set(source) and len(loaded) == len(source) - 1  # lm_head: tied
        for key, value in loaded.items():
            assert torch.equal(value, source[key]), (fmt, key)
        tower = _estimator(checkpoints, fmt, backbone="siglip").backbone.tower.state_dict()
        for key, value in tower.items():
            assert torch.equal(value, source[f"vision_tower.{key}"]), (fmt, key)


def test_key_names_of_every_transformers_generation_map_to_one_layout():
    layer = "language_model.layers.0.mlp.up_proj.weight"
    for old in (
        f"paligemma_with_expert.paligemma.model.{layer}",  # openpi converter (4.53)
        f"model.paligemma_with_expert.paligemma.model.{layer}",  # LeRobot pi05
        "language_model.model.layers.0.mlp.up_proj.weight",  # HF hub files (4.4x)
        f"model.{layer}",  # transformers 5 save_pretrained
    ):
        assert map_key(old) == layer, old
    assert (
        map_key(
            "paligemma_with_expert.paligemma.model.vision_tower.vision_model.post_layernorm.bias"
        )
        == "vision_tower.post_layernorm.bias"
    )
    assert map_key("paligemma_with_expert.gemma_expert.model.norm.weight") is None
    assert map_key("model.action_out_proj.bias") is None


def test_a_wrong_key_layout_fails_listing_the_keys_it_could_not_place(checkpoints, tmp_path):
    keys = {
        k.replace("paligemma.model.language_model.", "paligemma.lm.").replace("fc1", "ffn_in"): v
        for k, v in pi05_keys(checkpoints["model"]).items()
    }
    write_pi05_checkpoint(tmp_path / "bad", keys=keys)
    with pytest.raises(InputError) as err:
        _estimator({**checkpoints, "pi05": tmp_path / "bad"}, "pi05")
    msg = str(err.value)
    assert (
        "could not be placed" in msg
        and "paligemma_with_expert.paligemma.lm.layers.{0-1}.mlp.up_proj.weight" in msg
    )
    assert "missing" in msg and "language_model.layers.{0-1}.self_attn.q_proj.weight" in msg
    assert "vision_tower.vision_model.encoder.layers.{0-1}.mlp.ffn_in.weight" in msg
    # a smaller model than the checkpoint's: the shapes are named
    small = {**TINY_CONFIG, "text_config": {**TINY_CONFIG["text_config"], "intermediate_size": 48}}
    with pytest.raises(
        InputError, match=r"shapes differ: .*mlp.*\(64, 32\) in the checkpoint vs \(48, 32\)"
    ):
        AdvantageEstimator(
            ModelConfig(
                backbone="paligemma",
                pretrained=str(checkpoints["pi05"]),
                tokenizer=str(checkpoints["tokenizer"]),
                backbone_kwargs={"paligemma_config": small},
            ),
            DATA,
        )


def test_clear_errors_before_any_work(checkpoints, tmp_path):
    with pytest.raises(
        InputError, match=r"image_size=\[64, 64\].*Fix: set estimator.data.image_size: 32"
    ):
        AdvantageEstimator(
            ModelConfig(backbone="paligemma", pretrained=str(checkpoints["hf"])),
            DataConfig(image_size=(64, 64)),
        )
    with pytest.raises(InputError, match="ship none. Fix: set estimator.model.tokenizer"):
        AdvantageEstimator(
            ModelConfig(
                backbone="paligemma",
                pretrained=str(checkpoints["pi05"]),
                backbone_kwargs={"paligemma_config": TINY_CONFIG},
            ),
            DATA,
        )
    with pytest.raises(InputError, match="no such directory"):
        AdvantageEstimator(ModelConfig(backbone="paligemma", pretrained=str(tmp_path / "x")), DATA)
    with pytest.raises(InputError, match=r"no such encoder.*kedro run --env pi05"):
        AdvantageEstimator(  # refused before the weights are read
            ModelConfig(backbone="paligemma", pretrained=str(tmp_path / "x"), action_dim=14), DATA
        )
    with pytest.raises(InputError, match="trains from scratch"):
        AdvantageEstimator(ModelConfig(pretrained=str(checkpoints["hf"])), DATA)


def test_the_value_reads_the_task_text_and_ignores_padding(checkpoints):
    torch.manual_seed(0)
    model = _estimator(checkpoints, "hf").eval()
    x = torch.rand(2, 2, 3, 3, IMAGE, IMAGE) * 2 - 1
    s = torch.randn(2, 2, 14)
    both = TaskPrompts(model, dict(enumerate(TASKS)))  # pads the shorter task
    alone = TaskPrompts(model, {0: TASKS[0]})
    with torch.no_grad():
        v_short = model(x, s, text=both(torch.tensor([0, 0])))
        v_long = model(x, s, text=both(torch.tensor([1, 1])))
        v_alone = model(x, s, text=alone(torch.tensor([0, 0])))
    assert torch.allclose(v_short, v_alone, atol=1e-6)
    assert (v_short - v_long).abs().min() > 1e-5


def test_freeze_options_leave_the_pretrained_weights_untrained(checkpoints):
    vision = _estimator(checkpoints, "hf", freeze="vision").backbone
    assert not any(p.requires_grad for p in vision.vlm.vision_tower.parameters())
    assert all(p.requires_grad for p in vision.vlm.language_model.parameters())
    whole = _estimator(checkpoints, "hf", freeze="backbone").backbone
    assert not any(p.requires_grad for p in whole.vlm.parameters())
    assert whole.summary.requires_grad and whole.out.weight.requires_grad


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["hf", "pi05"])
def test_paligemma_trains_and_labels_through_the_pipelines(
    fmt, checkpoints, robot_source, session_run, kedro_project
):
    labeled = stage0_labelled(session_run, robot_source, kedro_project)
    model = {"backbone": "paligemma", "pretrained": str(checkpoints[fmt]), "width": 32}
    if fmt == "pi05":
        model |= {
            "tokenizer": str(checkpoints["tokenizer"]),
            "value_head": "distributional",
            "freeze": "vision",
            "backbone_kwargs": {"paligemma_config": TINY_CONFIG},
        }
    estimator = {
        "model": model,
        "data": {
            "image_size": IMAGE,
            "samples_per_episode": 8,
            "num_workers": 0,
            "val_fraction": 0.25,
            "val_frame_stride": 6,
        },
        "train": {
            "steps": 4,
            "batch_size": 4,
            "warmup_steps": 1,
            "save_interval": 4,
            "eval_interval": 4,
            "log_interval": 2,
        },
    }
    # conf/pi05 sets what goes with the backbone (no action head, no image features, ...)
    session_run("estimator", "pi05", gt_labeled_dataset_path=str(labeled), estimator=estimator)
    out = kedro_project / "estimated"
    session_run(
        "estimation",
        "pi05",
        target_dataset_path=str(robot_source),
        estimated_dataset_path=str(out),
        awbc_dataset_path=str(kedro_project / "awbc"),
        estimator=estimator,
        estimation={"batch_size": 16},
    )
    assert doctor_failures(out) == []
    ds = LeRobotDatasetReader(out)
    cols = ds.read_columns(["absolute_value", "absolute_advantage", "task_index"])
    assert np.isfinite(cols["absolute_value"]).all() and np.ptp(cols["absolute_value"]) > 0
    if fmt == "pi05":
        assert "absolute_value_spread" in ds.features
    assert "observation.image_features" not in ds.features  # conf/pi05: none to write

    # the checkpoint is self-contained (architecture + tokenizer in its assets), and
    # Stage 2's streamed values equal the model's on the episode's own task text
    ckpt = load_checkpoint(kedro_project / "data" / "06_models" / "estimator")
    assert (ckpt.path / "assets" / "tokenizer" / "tokenizer.json").is_file()
    est, config = load_estimator(ckpt)
    assert config.model.backbone == "paligemma" and est.takes_text
    episode = 1  # the second task
    values = predict_episode(est, config, ds, episode, interval=50, batch_size=16)
    frames = ds.get_frames(episode, [0, 5], cameras=config.data.cameras, size=(IMAGE, IMAGE))
    imgs = np.stack([frames[k] for k in frames], axis=1)  # (2, K, H, W, 3)
    state = ds.read_episode(episode, ["observation.state"])["observation.state"][[0, 5]]
    with torch.no_grad():
        v = est(
            to_model_input(torch.from_numpy(imgs[None])),
            torch.from_numpy(np.asarray(state, np.float32)[None]),
            text=TaskPrompts(est, {1: TASKS[1]})(torch.tensor([1])),
        )
    assert ds.episodes[episode].tasks == (TASKS[1],)
    assert abs(float(v) - values.absolute[5]) < 1e-5

    (run,) = [r for r in mlflow_runs(kedro_project) if r.info.run_name.startswith("estimator ")]
    assert run.data.params["estimator.model.backbone"] == "paligemma"
    assert "estimator_metrics.val_spearman" in run.data.metrics
