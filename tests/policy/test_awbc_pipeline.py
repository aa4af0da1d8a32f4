"""The awbc Kedro pipeline runs end to end on a tiny dataset (nodes wired, outputs typed)."""

from __future__ import annotations

import pandas as pd
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from matplotlib.figure import Figure

from adv_pipeline.checkpoints import Runs, load_checkpoint
from adv_pipeline.pipelines.awbc import create_pipeline

from .conftest import REPO


def tiny_params(run_root) -> dict:
    params = yaml.safe_load((REPO / "conf" / "base" / "parameters_awbc.yml").read_text())["awbc"]
    params["data"].update(
        cameras=["top_head"], state_key=["observation.state"], image_size=16, horizon=4
    )
    params["model"].update(
        conv_channels=[8], image_features=16, text_dim=16, width=32, depth=1, flow_steps=2
    )
    params["train"].update(
        seed=0,  # conf reads the shared training seed (globals.yml), which Kedro resolves
        steps=3,
        batch_size=8,
        warmup_steps=1,
        save_interval=3,
        log_interval=1,
        progress_bar=False,
    )
    params["eval"].update(n_episodes=2, replan_every=2, max_steps=4, image_size=32)
    return params


def test_awbc_pipeline_runs(labeled_dataset, run_root):
    catalog = DataCatalog(
        {
            "awbc_dataset": MemoryDataset(labeled_dataset),
            "awbc_runs": MemoryDataset(Runs(run_root / "awbc")),
            "bc_runs": MemoryDataset(Runs(run_root / "bc")),
            "params:awbc": MemoryDataset(tiny_params(run_root)),
            "params:overwrite": MemoryDataset(False),
            "curated_bc_runs": MemoryDataset(Runs(run_root / "curated")),
            "params:metaworld": MemoryDataset({}),
        }
    )
    pipeline = create_pipeline()
    assert pipeline.inputs() == {
        "awbc_dataset",
        "awbc_runs",
        "bc_runs",
        "curated_bc_runs",
        "params:awbc",
        "params:metaworld",
        "params:overwrite",
    }
    out = SequentialRunner().run(pipeline, catalog)
    assert set(out) == {
        "awbc_eval_table",
        "awbc_eval_metrics",
        "awbc_eval_plot",
        "awbc_offline_table",
        "awbc_offline_metrics",
        "awbc_offline_plot",
        "awbc_train_metrics",
        "bc_train_metrics",
        "curated_bc_train_metrics",
    }
    awbc, bc = load_checkpoint(run_root / "awbc"), load_checkpoint(run_root / "bc")
    assert awbc.step == 3 and awbc.metadata["policy_config"]["data"]["prompt_from_task"] is True
    assert bc.step == 3 and bc.metadata["policy_config"]["data"]["prompt_from_task"] is False
    table = out["awbc_eval_table"].load()
    assert isinstance(table, pd.DataFrame) and len(table) == 5  # 4 conditions + expert
    assert isinstance(out["awbc_eval_plot"].load(), Figure)
    assert [e["step"] for e in out["awbc_train_metrics"].load()["loss"]] == [1, 2, 3]
    assert all(set(v) == {"value", "step"} for v in out["awbc_eval_metrics"].load().values())
    # recorded in the simulator: rolled out (auto), and scored offline on the held-out episode
    offline = out["awbc_offline_table"].load()
    assert set(offline["condition"]) >= {"awbc_positive", "awbc_negative", "bc"}
    assert out["awbc_offline_metrics"].load()["held_out_episodes"]["value"] == 1
    assert awbc.metadata["val_episodes"] == bc.metadata["val_episodes"]  # the same split
    assert {n.name: (n.inputs, n.outputs) for n in pipeline.nodes}["train_awbc_policy"] == (
        ["awbc_dataset", "awbc_runs", "params:awbc", "params:overwrite"],
        ["awbc_policy", "awbc_train_metrics"],
    )
