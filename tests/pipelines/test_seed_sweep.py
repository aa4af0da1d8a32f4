"""Same command, same bytes; and results over training seeds (`kedro sweep`, the `seeds`
pipeline's summary)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as student_t

from adv_pipeline.cli import sweep
from adv_pipeline.errors import InputError
from adv_pipeline.lerobot.video import VideoOptions, VideoWriter
from adv_pipeline.pipelines.seeds.nodes import summarize_seed_sweep
from adv_pipeline.sweep import SweepConfig, interval, parse_seeds, summarize

from ..conftest import project_copy, use_project
from .conftest import TOY

# what a run says about when and how fast, in files that otherwise repeat byte for byte
TIMINGS = {"estimation_report.json": ("estimation", ("seconds", "frames_per_s"))}
TIMING_METRICS = ("samples_per_s",)  # lines of a training run's metrics.jsonl
SEED0 = "seeds/0/"  # seed 0's folder of a sweep, in each layer and in recorded paths


def _content(path: Path, drop: str = "") -> bytes:
    """The file's bytes, less its timings (and ``drop`` in the paths a text file records)."""
    if path.name in TIMINGS:
        report = json.loads(path.read_text())
        section, keys = TIMINGS[path.name]
        for key in keys:
            assert key in report[section], (path, key)
            del report[section][key]
        data = json.dumps(report, sort_keys=True).encode()
    elif path.name == "metrics.jsonl":
        lines = path.read_text().splitlines()
        data = "\n".join(x for x in lines if json.loads(x)["name"] not in TIMING_METRICS).encode()
    else:
        data = path.read_bytes()
    text = path.suffix in (".json", ".jsonl", ".csv")
    return data.replace(drop.encode(), b"") if drop and text else data


def _files(data: Path) -> dict[str, Path]:
    """Every visible file under ``data`` (hidden ones say when, where and how fast)."""
    return {
        p.relative_to(data).as_posix(): p
        for p in sorted(data.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(data).parts)
    }


def _sweep(project: Path, monkeypatch, *args: str) -> None:
    """``kedro sweep <args>`` in ``project``, in this process (its imports warm)."""
    use_project(project, monkeypatch)
    sweep.main(list(args), standalone_mode=False)


@pytest.mark.xdist_group("default_run")  # one worker runs the shared toy run once
@pytest.mark.slow
def test_a_sweep_repeats_the_default_run_byte_for_byte_and_summarises_its_seeds(
    default_run, tmp_path, monkeypatch
):
    a = project_copy(tmp_path / "elsewhere" / "a")
    _sweep(a, monkeypatch, "--seeds", "2", "--params", TOY)  # seeds 0 and 1

    # seed 0 of the sweep is the default run (training seed 0), in another folder: the
    # recording (videos included), Stage 0, the estimator's and policies' checkpoints,
    # Stage 2's dataset and the tables, all the same bytes (recorded paths name seeds/0/)
    fa, fd = _files(a / "data"), _files(default_run / "data")
    mine = {k.replace(SEED0, ""): p for k, p in fa.items() if "seeds/1/" not in k}
    mine = {k: p for k, p in mine.items() if not k.startswith("08_reporting/seeds/")}
    assert set(mine) <= set(fd), sorted(set(mine) - set(fd))
    differ = [k for k in sorted(mine) if _content(mine[k], SEED0) != _content(fd[k])]
    assert differ == []
    kinds = {Path(k).suffix for k in mine}
    assert {".mp4", ".parquet", ".safetensors", ".pt", ".csv"} <= kinds
    assert any(k.startswith("06_models/awbc/seed0-") for k in mine)

    # the summary: each condition's mean over the seeds and the paired differences
    reporting = a / "data/08_reporting/seeds"
    tables = [pd.read_csv(reporting / f"{s}/awbc_eval.csv") for s in (0, 1)]
    summary = pd.read_csv(reporting / "sweep_summary.csv").set_index("condition")
    for condition in tables[0]["condition"]:
        rates = [t.set_index("condition").loc[condition, "success_rate"] for t in tables]
        assert summary.loc[condition, "mean"] == pytest.approx(np.mean(rates))
        assert summary.loc[condition, "seeds"] == "0 1"
    diffs = pd.read_csv(reporting / "sweep_differences.csv").set_index("difference")
    assert list(diffs.index) == [
        "awbc_positive - bc",
        "awbc_positive - awbc_negative",
        "awbc_guided_w2 - awbc_positive",
    ]
    pos_bc = [
        t.set_index("condition").loc["awbc_positive", "success_rate"]
        - t.set_index("condition").loc["bc", "success_rate"]
        for t in tables
    ]
    assert diffs.loc["awbc_positive - bc", "mean"] == pytest.approx(np.mean(pos_bc))
    assert (reporting / "sweep.png").stat().st_size > 10_000

    # MLflow: a run per seed, named by its seed, and the summary's run with each mean
    # beside its spread
    mlflow.set_tracking_uri(f"sqlite:///{a / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["adv_pipeline"], output_format="list")
    names = sorted(r.info.run_name for r in runs)
    assert len(runs) == 3 and sum("seed=0 " in n for n in names) == 1, names
    (summary_run,) = [r for r in runs if r.info.run_name.startswith("seeds ")]
    metrics = summary_run.data.metrics
    for stat in ("mean", "ci_low", "ci_high", "sd"):
        assert f"seed_sweep.diff.awbc_positive-bc.{stat}" in metrics
    assert metrics["seed_sweep.awbc_positive.mean"] == pytest.approx(
        summary.loc["awbc_positive", "mean"]
    )


def test_x264_gives_the_same_bytes_for_the_same_frames(tmp_path):
    """Several encoders open at once, as the recording's three cameras are, repeated."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 40, 48, 48, 3), dtype=np.uint8)
    frames[..., 10:30, 10:30, 0] = 220  # some structure for the motion search
    digests = []
    for rep in range(3):
        writers = [VideoWriter(tmp_path / f"{rep}_{c}.mp4", 30, VideoOptions()) for c in range(3)]
        for t in range(frames.shape[1]):
            for c, w in enumerate(writers):
                w.write(frames[c, t])
        for w in writers:
            w.close()
        digests.append([(tmp_path / f"{rep}_{c}.mp4").read_bytes() for c in range(3)])
    assert digests[0] == digests[1] == digests[2]


def test_the_interval_is_students_t_over_the_seeds():
    values = [0.5, 0.6, 0.7, 0.9]
    mean, lo, hi, sd = interval(values)
    half = student_t.ppf(0.975, 3) * np.std(values, ddof=1) / 2
    assert (mean, lo, hi, sd) == pytest.approx(
        (0.675, 0.675 - half, 0.675 + half, np.std(values, ddof=1))
    )
    assert np.isnan(interval([0.4])[1])


def test_differences_are_paired_by_seed_and_missing_seeds_are_named():
    per_seed = pd.DataFrame(
        {
            "seed": [0, 0, 0, 1, 1, 1, 2, 2, 2],
            "task": ["t"] * 9,
            "condition": ["awbc_positive", "bc", "awbc_guided_w1.5"] * 3,
            "success_rate": [0.6, 0.4, 0.7, 0.9, 0.75, 0.8, 0.5, 0.25, 0.6],
        }
    )
    summary, diffs = summarize(per_seed, SweepConfig(seeds=3))
    assert summary["condition"].tolist() == ["awbc_positive", "bc", "awbc_guided_w1.5"]
    row = diffs.set_index("difference").loc["awbc_positive - bc"]
    assert row["per_seed"] == "0.200 / 0.150 / 0.250"
    assert row["mean"] == pytest.approx(0.2)
    assert row["ci_low"] > 0  # paired: the seeds' common swings cancel
    unpaired = interval([0.6, 0.9, 0.5])[1] - interval([0.4, 0.75, 0.25])[2]
    assert unpaired < 0
    assert "awbc_guided_w1.5 - awbc_positive" in set(diffs["difference"])

    tables = {
        str(s): (lambda s=s: per_seed[per_seed.seed == s].drop(columns="seed")) for s in (0, 2)
    }
    with pytest.raises(InputError, match=r"training seed\(s\) \[1\].*seeds with one: \[0, 2\]"):
        summarize_seed_sweep(tables, {"seeds": 3})
    assert parse_seeds("3") == [0, 1, 2] and parse_seeds("0, 3,7") == [0, 3, 7]
    with pytest.raises(ValueError, match="distinct"):
        parse_seeds("1,1")
