"""Stage 0's labels equal the reference scripts' (``gt_label.py`` / ``discretize_advantage.py``)
frame for frame, ties included, in every mode: binary and n_slices, 1 to 3 stages, the
three advantage sources. The oracle below restates the reference's arithmetic frame by
frame (its float32 rewards, python float or float32 percentile inputs, its bin loops);
the data is quantised so that many frames tie at the thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from adv_pipeline import labeling as lab

from ..conftest import write_column_dataset

SOURCES = ("progress", "absolute_advantage", "relative_advantage")


def quantised_episodes(seed: int = 0, n_episodes: int = 12) -> list[dict[str, np.ndarray]]:
    """Progress on a 1/40 grid with plateaus (many equal differences), stage progress
    hitting the stage boundaries exactly, advantages on a 1/20 grid."""
    rng = np.random.default_rng(seed)
    episodes = []
    for _ in range(n_episodes):
        n = int(rng.integers(60, 260))
        steps = rng.choice([0.0, 0.0, 1.0, 2.0], n)  # plateaus: zero steps
        progress = np.round(np.cumsum(steps) / steps.sum() * 40) / 40
        sp = np.round(np.linspace(0, 1, n) * 12) / 12  # 1/3, 1/2, 2/3 ... exactly on the grid
        episodes.append(
            {
                "progress": progress.astype(np.float32),
                "stage_progress_gt": sp.astype(np.float32),
                "absolute_advantage": (np.round(rng.normal(0, 0.2, n) * 20) / 20).astype(
                    np.float32
                ),
                "relative_advantage": (np.round(rng.normal(0, 0.2, n) * 20) / 20).astype(
                    np.float32
                ),
            }
        )
    return episodes


def reference_labels(episodes, source, chunk, disc, threshold, n_slices, stages) -> np.ndarray:
    """The reference's labels, frame by frame, with its dtypes."""
    rewards, stage_of = [], []
    for ep in episodes:
        n = len(ep[source])
        r = np.zeros(n, dtype=np.float32)
        for i in range(n):
            if source != "progress":
                r[i] = ep[source][i]
            elif i + chunk < n:
                r[i] = ep["progress"][i + chunk] - ep["progress"][i]
            else:
                r[i] = (ep["progress"][-1] - ep["progress"][i]) / (n - i) * chunk
        rewards.append(r)
        stage_of.append(
            [
                0
                if stages == 1
                else min(int(ep["stage_progress_gt"][i] / (1.0 / stages)), stages - 1)
                for i in range(n)
            ]
        )
    by_stage = {s: [] for s in range(stages)}
    for r, st in zip(rewards, stage_of):
        if stages == 1:
            by_stage[0].extend(r.tolist())  # python floats: a float64 percentile
        else:
            for i in range(len(r)):
                by_stage[st[i]].append(r[i])  # float32 scalars: a float32 percentile
    cut = {}
    for s, values in by_stage.items():
        if not values:
            cut[s] = 0.0 if disc == "binary" else [0.0] * n_slices
        elif disc == "binary":
            cut[s] = np.percentile(values, 100 - threshold)
        else:
            cut[s] = [np.percentile(values, 100 / n_slices * j) for j in range(n_slices)]
    out = []
    for r, st in zip(rewards, stage_of):
        if stages == 1 and disc == "binary":
            out.append((r >= cut[0]).astype(np.int32))
        elif stages == 1:
            t = np.zeros(len(r), dtype=np.int32)
            b = cut[0]
            for j in range(len(b) - 1):
                t[(r >= b[j]) & (r < b[j + 1])] = j
            t[r >= b[-1]] = n_slices - 1
            out.append(t)
        else:
            t = np.zeros(len(r), dtype=np.int32)
            for i in range(len(r)):
                if disc == "binary":
                    t[i] = 1 if r[i] >= cut[st[i]] else 0
                    continue
                b = cut[st[i]]
                k = 0
                for j in range(len(b) - 1):
                    if r[i] >= b[j] and r[i] < b[j + 1]:
                        k = j
                        break
                if r[i] >= b[-1]:
                    k = n_slices - 1
                t[i] = k
            out.append(t)
    return np.concatenate(out)


@pytest.fixture(scope="module")
def quantised(tmp_path_factory):
    episodes = quantised_episodes()
    return episodes, write_column_dataset(tmp_path_factory.mktemp("parity") / "ds", episodes)


MODES = [("binary", 30, 10), ("binary", 70, 10), ("n_slices", 70, 3), ("n_slices", 70, 10)]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("stages", [1, 2, 3])
@pytest.mark.parametrize("disc,threshold,n_slices", MODES)
def test_labels_equal_the_reference(quantised, source, stages, disc, threshold, n_slices):
    episodes, ds = quantised
    config = lab.LabelingConfig(
        threshold=threshold, chunk_size=7, discretization=disc, n_slices=n_slices,
        advantage_source=source, stage_nums=stages, task_text="fold the cloth",
        force_intervention=False,
    )  # fmt: skip
    inputs = lab.read_label_inputs(ds, config)
    adv = lab.frame_advantage(inputs, config)
    stage = lab.stage_index(inputs.stage_progress, stages, len(adv))
    groups = lab.label_groups(inputs, stage, config)
    ours = lab.assign_labels(adv, groups, lab.group_cuts(adv, groups, config), config)
    ref = reference_labels(episodes, source, 7, disc, threshold, n_slices, stages)
    assert len(ref) == len(ours)
    np.testing.assert_array_equal(ours, ref)
    assert lab.output_tasks(inputs, config)[-1] == (
        "fold the cloth, Advantage: positive"
        if disc == "binary"
        else f"fold the cloth, Advantage: {n_slices - 1}"
    )


def test_the_data_ties_at_the_thresholds(quantised):
    """The parity above is meaningful: many frames sit exactly on a threshold."""
    episodes, _ = quantised
    r = np.concatenate([np.diff(ep["progress"], append=ep["progress"][-1]) for ep in episodes])
    assert (r == np.percentile(r.astype(np.float64), 30)).sum() > 50
