"""Stage 0 formulas with hand-computed expectations (docs/semantics.md, "Stage 0")."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from adv_pipeline import labeling as lab
from adv_pipeline.configs import from_params
from adv_pipeline.lerobot import DatasetFormatError

from ..conftest import write_column_dataset


def offsets(*lengths):
    return np.concatenate([[0], np.cumsum(lengths)])


def test_progress_advantage_with_end_extrapolation():
    p = np.array([0.0, 0.1, 0.3, 0.6, 1.0])
    adv = lab.progress_advantage(p, offsets(5), chunk_size=2)
    # i + c < n: p[i+2] - p[i];  else (p[4] - p[i]) / (5 - i) * 2;  last frame 0
    np.testing.assert_allclose(adv, [0.3, 0.5, 0.7, 0.4, 0.0])


def test_episode_shorter_than_chunk_and_no_crossing_between_episodes():
    p = np.array([0.0, 0.5, 0.8, 0.2, 0.2, 0.9])  # episodes of 3 frames each
    adv = lab.progress_advantage(p, offsets(3, 3), chunk_size=5)
    np.testing.assert_allclose(adv, [0.8 / 3 * 5, 0.3 / 2 * 5, 0.0, 0.7 / 3 * 5, 0.7 / 2 * 5, 0.0])


def one_group(n: int) -> lab.LabelGroups:
    return lab.LabelGroups(np.zeros(n, dtype=np.int64), ((None, 0),))


def by_stage(stage: np.ndarray, stages: int) -> lab.LabelGroups:
    return lab.LabelGroups(stage, tuple((None, s) for s in range(stages)))


def test_binary_threshold_ties_go_positive():
    adv = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2], dtype=np.float32)
    groups = one_group(10)
    cfg = lab.LabelingConfig(threshold=30)
    cuts = lab.group_cuts(adv, groups, cfg)
    assert cuts[0][0] == 2.0  # percentile 70 of the sorted values: position 6.3 -> 2
    labels = lab.assign_labels(adv, groups, cuts, cfg)
    np.testing.assert_array_equal(labels, [0] * 6 + [1] * 4)  # 40% positive: ties at the threshold
    cfg50 = lab.LabelingConfig(threshold=50)
    cuts50 = lab.group_cuts(adv, groups, cfg50)
    assert cuts50[0][0] == 1.0
    assert lab.assign_labels(adv, groups, cuts50, cfg50).sum() == 7


def test_n_slices_boundaries_with_repeated_values():
    adv = np.array([0, 0, 0, 0, 1, 2, 3, 4], dtype=np.float32)
    groups = one_group(8)
    cfg = lab.LabelingConfig(discretization="n_slices", n_slices=4)
    cuts = lab.group_cuts(adv, groups, cfg)
    # percentiles 0, 25, 50, 75 at positions 0, 1.75, 3.5, 5.25
    np.testing.assert_allclose(cuts[0], [0.0, 0.0, 0.5, 2.25])
    labels = lab.assign_labels(adv, groups, cuts, cfg)
    np.testing.assert_array_equal(
        labels, [1, 1, 1, 1, 2, 2, 3, 3]
    )  # the bin [b_j, b_j+1) holding adv
    assert cfg.labels() == ("0", "1", "2", "3")


def test_stage_index_at_boundaries_and_one():
    sp = np.array([0.0, 0.4999, 0.5, 0.99, 1.0])
    np.testing.assert_array_equal(lab.stage_index(sp, 2, 5), [0, 0, 1, 1, 1])
    sp3 = np.array([0.0, 1 / 3, 2 / 3, 1.0], dtype=np.float32)
    np.testing.assert_array_equal(lab.stage_index(sp3, 3, 4), [0, 1, 2, 2])
    np.testing.assert_array_equal(lab.stage_index(sp, 1, 5), [0] * 5)


def test_empty_stage_gets_zero_threshold_with_warning(caplog):
    adv = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    groups = by_stage(lab.stage_index(np.array([0.1, 0.2, 0.3]), 2, 3), 2)
    with caplog.at_level(logging.WARNING):
        cuts = lab.group_cuts(adv, groups, lab.LabelingConfig(stage_nums=2))
    assert cuts[1][0] == 0.0 and "stage 1 has no frames" in caplog.text
    cuts_n = lab.group_cuts(
        adv, groups, lab.LabelingConfig(stage_nums=2, discretization="n_slices", n_slices=3)
    )
    np.testing.assert_array_equal(cuts_n[1], [0.0, 0.0, 0.0])


@pytest.mark.parametrize("discretization,top", [("binary", 1), ("n_slices", 4)])
def test_intervention_forcing_both_modes(discretization, top):
    adv = np.linspace(-1, 1, 10).astype(np.float32)
    groups = one_group(10)
    intervention = np.zeros(10, dtype=bool)
    intervention[[0, 1]] = True  # the two worst frames were human corrections
    on = lab.LabelingConfig(discretization=discretization, n_slices=5, force_intervention=True)
    off = lab.LabelingConfig(discretization=discretization, n_slices=5, force_intervention=False)
    cuts = lab.group_cuts(adv, groups, on)
    forced = lab.assign_labels(adv, groups, cuts, on, intervention)
    seed = lab.assign_labels(adv, groups, cuts, off, intervention)
    assert (forced[:2] == top).all() and (seed[:2] == 0).all()
    np.testing.assert_array_equal(forced[2:], seed[2:])
    inputs = lab.LabelInputs(
        np.array([0]), np.array([0, 10]), adv, None, intervention, np.zeros(10, np.int64), ("t",)
    )
    stats = lab.label_statistics(adv, groups, cuts, forced, on, inputs)
    assert stats["forced_frames"] == 2 and stats["stages"][0]["forced_frames"] == 2


@pytest.mark.parametrize(
    "params,match",
    [
        ({"threshold": 0}, r"threshold must be in \(0, 100\]"),
        ({"threshold": 101}, r"threshold must be in \(0, 100\]"),
        ({"n_slices": 1}, "n_slices must be >= 2"),
        ({"stage_nums": 0}, "stage_nums must be >= 1"),
        ({"discretization": "ternary"}, "discretization must be one of"),
        ({"advantage_source": "reward"}, "advantage_source must be one of"),
        ({"thresold": 30}, r"unknown key gt_labeling.thresold; did you mean 'threshold'\?"),
    ],
)
def test_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        from_params(lab.LabelingConfig, params, "gt_labeling")


def _episode(n, progress=None, stage=None, intervention=None):
    t = np.arange(n) / max(n - 1, 1)
    return {
        "progress": np.asarray(progress if progress is not None else t, dtype=np.float32),
        "stage_progress_gt": np.asarray(stage if stage is not None else t, dtype=np.float32),
        "intervention": np.asarray(
            intervention if intervention is not None else np.zeros(n), dtype=np.int64
        ),
    }


def test_missing_source_column_names_column_and_option(tmp_path):
    ds = write_column_dataset(tmp_path / "d", [_episode(10), _episode(12)])
    with pytest.raises(
        DatasetFormatError,
        match=r"episode 0 has no column absolute_advantage .*needed because "
        r"advantage_source=absolute_advantage",
    ):
        lab.read_label_inputs(ds, lab.LabelingConfig(advantage_source="absolute_advantage"))


def test_missing_stage_column_only_matters_with_stages(tmp_path):
    ep = _episode(10)
    del ep["stage_progress_gt"]
    ds = write_column_dataset(tmp_path / "d", [ep])
    assert lab.read_label_inputs(ds, lab.LabelingConfig(stage_nums=1)).stage_progress is None
    with pytest.raises(
        DatasetFormatError, match=r"no column stage_progress_gt, needed because stage_nums=2"
    ):
        lab.read_label_inputs(ds, lab.LabelingConfig(stage_nums=2))


def test_nan_and_out_of_range_values(tmp_path):
    bad_p = _episode(10, progress=[0, 0.1, np.nan] + [0.5] * 7)
    ds = write_column_dataset(tmp_path / "a", [_episode(5), bad_p])
    with pytest.raises(
        DatasetFormatError,
        match=r"episode_000001.parquet: episode 1, column progress: NaN/inf at frame 2 \(value "
        r"nan\), needed because advantage_source=progress; 1 bad frame in 1 episode in all. "
        r"Fix:",
    ):
        lab.read_label_inputs(ds, lab.LabelingConfig())
    bad_s = _episode(4, stage=[0, 0.5, 1.2, np.inf])
    ds = write_column_dataset(tmp_path / "b", [bad_s])
    with pytest.raises(
        DatasetFormatError,
        match=r"episode 0, column stage_progress_gt: NaN/inf at frame 3 \(value inf\), needed "
        r"because stage_nums=2",
    ):
        lab.read_label_inputs(ds, lab.LabelingConfig(stage_nums=2))
    ds = write_column_dataset(tmp_path / "c", [_episode(4, stage=[0, 0.5, 1.2, 0.9])])
    with pytest.raises(
        DatasetFormatError,
        match=r"episode 0, column stage_progress_gt: values outside \[0.0, 1.0\] at frame 2 "
        r"\(value 1.2",
    ):
        lab.read_label_inputs(ds, lab.LabelingConfig(stage_nums=2))
    # checked whenever present, not only with stages: the estimator trains on it
    with pytest.raises(
        DatasetFormatError,
        match=r"values outside \[0.0, 1.0\] at frame 2 \(value 1.2.*read by the estimator",
    ):
        lab.read_label_inputs(ds, lab.LabelingConfig(stage_nums=1))


def test_empty_dataset(tmp_path):
    ds = write_column_dataset(tmp_path / "e", [])
    with pytest.raises(DatasetFormatError, match="has no frames"):
        lab.read_label_inputs(ds, lab.LabelingConfig())


def test_whole_dataset_labelling_matches_per_episode_formula(tmp_path):
    rng = np.random.default_rng(0)
    eps = [
        _episode(n, progress=np.cumsum(rng.normal(0.01, 0.02, n)), intervention=rng.random(n) < 0.1)
        for n in (30, 70, 5)
    ]
    ds = write_column_dataset(tmp_path / "d", eps)
    cfg = lab.LabelingConfig(chunk_size=10, threshold=30, stage_nums=2)
    inputs = lab.read_label_inputs(ds, cfg)
    adv = lab.frame_advantage(inputs, cfg)
    for k, ep in enumerate(eps):
        p = ep["progress"].astype(np.float64)
        n = len(p)
        ref = [p[i + 10] - p[i] if i + 10 < n else (p[-1] - p[i]) / (n - i) * 10 for i in range(n)]
        np.testing.assert_allclose(adv[inputs.offsets[k] : inputs.offsets[k + 1]], ref, atol=1e-6)
    assert inputs.intervention.sum() == sum(int(e["intervention"].sum()) for e in eps)


def test_column_missing_in_a_later_episode_names_that_episode(tmp_path):
    ds = write_column_dataset(tmp_path / "d", [_episode(10), _episode(10)])
    import pyarrow.parquet as pq

    path = ds.data_path(1)
    pq.write_table(pq.read_table(path).drop_columns(["stage_progress_gt"]), path)
    with pytest.raises(
        DatasetFormatError,
        match=r"episode_000001.parquet: episode 1 has no column\(s\) "
        r"\['stage_progress_gt'\].*needed because stage_nums=2",
    ):
        lab.read_label_inputs(ds, lab.LabelingConfig(stage_nums=2))


@pytest.mark.parametrize(
    "column, options",
    [("intervention", {"force_intervention": True}), ("success", {"failed_episodes": "negative"})],
)
def test_a_flag_other_than_0_or_1_is_refused(tmp_path, column, options):
    from adv_pipeline.labeling.labels import read_label_inputs
    from adv_pipeline.lerobot import LeRobotDatasetReader

    t = np.linspace(0, 1, 10, dtype=np.float32)[:, None]
    flag = np.zeros((10, 1), np.int64)
    episodes = [{"progress": t, column: flag}, {"progress": t, column: flag + 7}]
    ds = write_column_dataset(tmp_path / "ds", episodes)
    config = lab.LabelingConfig(stage_nums=1, **options)
    with pytest.raises(
        DatasetFormatError,
        match=rf"episode 1, column {column}: values outside \[0, 1\] at frame 0 \(value 7\) "
        rf"\(a 0/1 flag\), needed because .*Fix:",
    ):
        read_label_inputs(LeRobotDatasetReader(ds.root), config)
