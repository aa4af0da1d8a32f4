"""Episode stats: the vectorised per-episode stats and their aggregation."""

import numpy as np
import pytest

from adv_pipeline.lerobot.stats import (
    aggregate_stats,
    column_stats,
    segment_stats,
    stats_from_json,
    stats_to_json,
)


def test_segment_stats_equal_per_episode_stats():
    rng = np.random.default_rng(0)
    lengths = [1, 7, 30, 2]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    for values in (
        rng.normal(size=(sum(lengths), 3)).astype(np.float32),
        rng.integers(0, 5, sum(lengths)),
    ):
        got = segment_stats(values, offsets)
        for e, stats in enumerate(got):
            want = column_stats(values[offsets[e] : offsets[e + 1]])
            assert set(stats) == set(want)
            for name in want:
                np.testing.assert_allclose(stats[name], want[name], rtol=1e-12, atol=1e-12)
    # a one-frame episode has std 0 and its own value as min = max = mean
    first, second = segment_stats(np.array([4.0, 1.0, 3.0]), np.array([0, 1, 3]))
    quantiles = ("q01", "q10", "q50", "q90", "q99")
    assert stats_to_json({"x": first})["x"] == {
        "min": [4.0],
        "max": [4.0],
        "mean": [4.0],
        "std": [0.0],
        "count": [1],
        **{q: [4.0] for q in quantiles},
    }
    # LeRobot 0.4+'s quantiles (linear interpolation between the two frames)
    assert stats_to_json({"x": second})["x"] == {
        "min": [1.0],
        "max": [3.0],
        "mean": [2.0],
        "std": [1.0],
        "count": [2],
        **{q: [1.0 + 2.0 * p] for q, p in zip(quantiles, (0.01, 0.1, 0.5, 0.9, 0.99))},
    }


def test_segment_stats_rejects_empty_episode_and_bad_offsets():
    with pytest.raises(ValueError, match="episode 1 has no rows"):
        segment_stats(np.zeros(3), np.array([0, 3, 3]))
    with pytest.raises(ValueError, match="offsets end at 2 but the column has 3 rows"):
        segment_stats(np.zeros(3), np.array([0, 2]))


def test_aggregate_of_episodes_equals_stats_of_all_frames_from_arrays_or_json():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(50, 2))
    offsets = np.array([0, 10, 11, 50])
    per_episode = [{"x": s} for s in segment_stats(values, offsets)]
    want = column_stats(values)
    as_json = [stats_to_json(s) for s in per_episode]  # what episodes_stats.jsonl carries over
    mixed = [per_episode[0], as_json[1], as_json[2]]
    for episodes in (per_episode, as_json, mixed):
        got = aggregate_stats(episodes)["x"]
        for name in ("min", "max", "mean", "std"):
            np.testing.assert_allclose(got[name], want[name], rtol=1e-12)
        assert got["count"].tolist() == [50]
    assert stats_to_json(stats_from_json(as_json[0])) == as_json[0]
