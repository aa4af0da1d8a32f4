"""Behavioural tests of the numpy demo simulator (adv_pipeline.sim)."""

from __future__ import annotations

import inspect
import time

import numpy as np
import pytest

from adv_pipeline.sim import (
    ACTION_DIM,
    ACTION_NAMES,
    CAMERA_KEYS,
    ENV_STATE_KEY,
    PROPRIO_DIM,
    QUALITIES,
    STATE_DIM,
    STATE_KEY,
    STATE_NAMES,
    TASK_TEXT,
    DemoEpisode,
    DemoTask,
    DemoTaskConfig,
    Observation,
    expert_action,
    generate_episode,
    generate_mix,
    make_policy,
    render,
    rollout,
    stage_progress,
)
from adv_pipeline.sim.render import BLOCK

CFG = DemoTaskConfig()
N = CFG.image_size


@pytest.fixture(scope="module")
def episodes() -> dict[str, list[DemoEpisode]]:
    return {q: [generate_episode(CFG, seed, q) for seed in range(12)] for q in QUALITIES}


def _adv50(ep: DemoEpisode) -> np.ndarray:
    p = ep.columns["progress"].astype(np.float64)
    return p[50:] - p[:-50]


def _red_mask(img: np.ndarray) -> np.ndarray:
    return np.abs(img.astype(int) - np.array(BLOCK, dtype=int)).sum(-1) < 60


def test_constants() -> None:
    assert CAMERA_KEYS == ("top_head", "hand_left", "hand_right")
    assert len(STATE_NAMES) == STATE_DIM and len(ACTION_NAMES) == ACTION_DIM
    assert isinstance(TASK_TEXT, str) and TASK_TEXT
    assert CFG.image_size == 96 and CFG.fps == 30


def test_observation_shapes_and_step_determinism() -> None:
    a, b = DemoTask(CFG), DemoTask(CFG)
    oa, ob = a.reset(7), b.reset(7)
    assert isinstance(oa, Observation)
    assert set(oa.images) == set(CAMERA_KEYS)
    for k in CAMERA_KEYS:
        assert oa.images[k].shape == (N, N, 3) and oa.images[k].dtype == np.uint8
    # a robot's own state; where the block and goal are is privileged, kept apart
    assert oa.state.shape == (PROPRIO_DIM,) and oa.state.dtype == np.float32
    assert oa.environment_state.shape == (STATE_DIM - PROPRIO_DIM,)
    both = oa.vector([STATE_KEY, ENV_STATE_KEY])
    np.testing.assert_array_equal(both, np.concatenate([oa.state, oa.environment_state]))
    with pytest.raises(KeyError, match="the demo simulator has no"):
        oa.vector(["observation.image_features"])
    rng = np.random.default_rng(0)
    for _ in range(30):
        act = rng.uniform(-1.5, 1.5, ACTION_DIM).astype(np.float32)  # also exercises clipping
        oa, ob = a.step(act), b.step(act)
    np.testing.assert_array_equal(oa.state, ob.state)
    for k in CAMERA_KEYS:
        np.testing.assert_array_equal(oa.images[k], ob.images[k])
    assert a.steps == 30 and 0.0 <= a.progress <= 1.0 and a.stage in (0, 1)
    assert not DemoTask(CFG).reset(8).state.tolist() == a.reset(7).state.tolist()


def test_generate_episode_deterministic() -> None:
    for q in QUALITIES:
        e1, e2 = generate_episode(CFG, 123, q), generate_episode(CFG, 123, q)
        assert e1.length == e2.length
        for name in e1.columns:
            np.testing.assert_array_equal(e1.columns[name], e2.columns[name])
        for t in (0, e1.length // 2, e1.length - 1):
            f1, f2 = e1.frame(t), e2.frame(t)
            for k in CAMERA_KEYS:
                np.testing.assert_array_equal(f1[k], f2[k])


def test_columns(episodes: dict[str, list[DemoEpisode]]) -> None:
    for q, eps in episodes.items():
        for ep in eps:
            T, c = ep.length, ep.columns
            assert ep.success and ep.quality == q
            assert set(c) == {
                "observation.state",
                "observation.environment_state",
                "action",
                "progress",
                "progress_gt",
                "stage_progress_gt",
                "intervention",
                "success",
                "quality",
            }
            assert (
                c["observation.state"].shape == (T, PROPRIO_DIM)
                and c["observation.state"].dtype == np.float32
            )
            assert c["observation.environment_state"].shape == (T, STATE_DIM - PROPRIO_DIM)
            assert c["action"].shape == (T, ACTION_DIM) and c["action"].dtype == np.float32
            for name in ("progress", "progress_gt", "stage_progress_gt"):
                assert c[name].shape == (T,) and c[name].dtype == np.float32
                assert np.all(c[name] >= 0.0) and np.all(c[name] <= 1.0)
            assert c["intervention"].shape == (T,) and c["intervention"].dtype == np.int64
            assert set(np.unique(c["intervention"])) <= {0, 1}
            assert c["success"].dtype == np.int64 and (c["success"] == 1).all()
            assert (c["quality"] == QUALITIES.index(q)).all()
            assert np.all(np.abs(c["action"]) <= 1.0)
            assert c["progress_gt"][0] == 0.0 and c["progress_gt"][-1] == pytest.approx(1.0)
            np.testing.assert_allclose(np.diff(c["progress_gt"]), 1.0 / (T - 1), atol=1e-6)
            assert c["progress"][-1] == pytest.approx(1.0) and c["progress"][0] < 0.1
            assert T <= CFG.episode_cap


def test_lengths_and_interventions(episodes: dict[str, list[DemoEpisode]]) -> None:
    mean_len = {q: np.mean([e.length for e in eps]) for q, eps in episodes.items()}
    assert 100 <= mean_len["expert"] <= 200
    assert mean_len["suboptimal"] > 1.3 * mean_len["expert"]
    assert mean_len["dagger"] > 1.3 * mean_len["expert"]
    assert max(e.length for e in episodes["expert"]) < CFG.max_steps
    for q in ("expert", "suboptimal"):
        assert all(e.columns["intervention"].sum() == 0 for e in episodes[q])
    for e in episodes["dagger"]:
        assert set(np.unique(e.columns["intervention"])) == {0, 1}


def test_stage_progress_formula(episodes: dict[str, list[DemoEpisode]]) -> None:
    # synthetic: stage 0 is *finally* completed at index 6 despite the early excursion.
    st = np.array([0, 0, 1, 1, 0, 0, 1, 1, 1, 1])
    sp = stage_progress(st, 2)
    expected = np.r_[0.5 * np.arange(6) / 6, 0.5 + 0.5 * np.arange(4) / 4]
    np.testing.assert_allclose(sp, expected, atol=1e-6)
    for eps in episodes.values():
        for ep in eps:
            sp = ep.columns["stage_progress_gt"]
            assert sp[0] == 0.0 and sp[-1] > 0.97 and np.all(sp < 1.0)
            d = np.diff(sp)
            assert np.all(d > 0)  # linear inside stages, continuous at the boundary
            boundary = int(np.argmax(sp >= 0.5))
            assert 0 < boundary < ep.length
            L0, L1 = boundary, ep.length - boundary
            np.testing.assert_allclose(sp[:boundary], 0.5 * np.arange(L0) / L0, atol=1e-6)
            np.testing.assert_allclose(sp[boundary:], 0.5 + 0.5 * np.arange(L1) / L1, atol=1e-6)
            assert d.max() <= 0.5 / min(L0, L1) + 1e-6


def test_frames_show_progress(episodes: dict[str, list[DemoEpisode]]) -> None:
    ep = episodes["expert"][0]
    frames = list(ep.iter_frames())
    assert len(frames) == ep.length
    assert inspect.isgenerator(ep.iter_frames(2, 5)) and len(list(ep.iter_frames(2, 5))) == 3
    np.testing.assert_array_equal(
        list(ep.iter_frames(3, 4))[0]["hand_left"], ep.frame(3)["hand_left"]
    )
    early, late = frames[0], frames[-1]
    for k in CAMERA_KEYS:
        assert np.abs(early[k].astype(int) - late[k].astype(int)).mean() > 2.0
    # the block is visible in the top view and sits where the state says it is
    for t in (0, ep.length // 3, 2 * ep.length // 3, ep.length - 1):
        mask = _red_mask(frames[t]["top_head"])
        assert mask.sum() >= 9
        ys, xs = np.nonzero(mask)
        bx, by = ep.columns["observation.environment_state"][t, 0:2]
        assert abs(xs.mean() + 0.5 - bx * N) < 1.5 and abs(ys.mean() + 0.5 - by * N) < 1.5
    # held block shows up in the holding gripper's wrist camera
    assert _red_mask(frames[-1]["hand_right"]).sum() > 100
    assert _red_mask(frames[0]["hand_right"]).sum() == 0


def test_gripper_opening_visible() -> None:
    task = DemoTask(CFG)
    task.reset(3)
    s = task.snapshot
    s[2] = 0.15
    closed = render(s, CFG)["hand_left"]
    s[2] = 0.85
    opened = render(s, CFG)["hand_left"]
    assert np.abs(closed.astype(int) - opened.astype(int)).sum(-1).astype(bool).sum() > 100


def test_progress_goes_down_in_suboptimal(episodes: dict[str, list[DemoEpisode]]) -> None:
    undone = [
        float(np.max(np.maximum.accumulate(e.columns["progress"]) - e.columns["progress"]))
        for e in episodes["suboptimal"]
    ]
    assert sum(u > 0.03 for u in undone) >= 3
    expert_undone = [
        float(np.max(np.maximum.accumulate(e.columns["progress"]) - e.columns["progress"]))
        for e in episodes["expert"]
    ]
    assert max(expert_undone) < 0.03


def test_advantage_signal(episodes: dict[str, list[DemoEpisode]]) -> None:
    adv = {q: np.concatenate([_adv50(e) for e in eps]) for q, eps in episodes.items()}
    assert adv["expert"].mean() > adv["suboptimal"].mean() + 0.1
    assert adv["expert"].mean() > adv["dagger"].mean() + 0.1
    assert (adv["suboptimal"] <= 0).mean() > 0.03
    # in dagger episodes the expert's (intervention) frames make more progress
    iv = np.concatenate([e.columns["intervention"][:-50] for e in episodes["dagger"]])
    assert adv["dagger"][iv == 1].mean() > adv["dagger"][iv == 0].mean()


def test_actions_not_clipped(episodes: dict[str, list[DemoEpisode]]) -> None:
    acts = np.concatenate([e.columns["action"] for eps in episodes.values() for e in eps])
    lo, hi = acts.min(0), acts.max(0)
    at_bound = (np.isclose(acts, lo) | np.isclose(acts, hi)).mean(0)
    assert np.all(at_bound < 0.5)
    assert np.all(acts.std(0) > 0.05)


def test_expert_closed_loop_success() -> None:
    task = DemoTask(CFG, render_images=False)
    res = [rollout(task, make_policy("expert", 100 + s, CFG), s) for s in range(40)]
    assert np.mean([r.success for r in res]) >= 0.95
    # the image path too, with a plain function policy
    rng = np.random.default_rng(0)
    seen: list[Observation] = []

    def policy(obs: Observation) -> np.ndarray:
        seen.append(obs)
        return expert_action(obs, rng, CFG)

    r = rollout(DemoTask(CFG), policy, seed=1)
    assert r.success and r.final_progress == 1.0 and r.steps < CFG.max_steps
    assert set(seen[0].images) == set(CAMERA_KEYS)


def test_suboptimal_closed_loop_worse() -> None:
    task = DemoTask(CFG, render_images=False)
    res = [rollout(task, make_policy("suboptimal", 100 + s, CFG), s) for s in range(60)]
    rate = np.mean([r.success for r in res])
    assert rate <= 0.6
    assert np.mean([r.final_progress for r in res]) < 0.95


def test_all_generated_episodes_succeed() -> None:
    for q in ("suboptimal", "dagger"):
        for seed in range(100, 140):
            ep = generate_episode(CFG, seed, q)
            assert ep.success and ep.columns["progress"][-1] == pytest.approx(1.0)


def test_generate_mix() -> None:
    mix = {"expert": 0.4, "suboptimal": 0.3, "dagger": 0.3}
    plan = generate_mix(CFG, 20, mix, seed=5)
    assert plan == generate_mix(CFG, 20, mix, seed=5)
    assert plan != generate_mix(CFG, 20, mix, seed=6)
    assert len(plan) == 20 and len({s for s, _ in plan}) == 20
    qs = [q for _, q in plan]
    assert (qs.count("expert"), qs.count("suboptimal"), qs.count("dagger")) == (8, 6, 6)
    assert len(generate_mix(CFG, 7, {"expert": 1.0}, seed=0)) == 7
    with pytest.raises(ValueError):
        generate_mix(CFG, 3, {"bogus": 1.0}, seed=0)


def test_render_speed_smoke(episodes: dict[str, list[DemoEpisode]]) -> None:
    ep = episodes["suboptimal"][0]
    t0 = time.perf_counter()
    n = sum(1 for _ in ep.iter_frames())
    fps = n / (time.perf_counter() - t0)
    print(f"rendered {n} 3-camera frames at {fps:.0f} frames/s")
    assert n == ep.length
