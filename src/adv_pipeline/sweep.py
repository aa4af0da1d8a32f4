"""Results over training seeds: the closed-loop tables of N training seeds (estimator and
policies retrained on the same data, rolled out from the same start states) summarised as
means with 95% intervals, and the paired differences between conditions (no Kedro
imports; ``kedro sweep`` runs the seeds, the ``seeds`` pipeline summarises them).

A seed's outputs live under ``<layer>/<world>/seeds/<seed>/`` (:data:`SEED_DIR`, the
runtime parameter ``seed_dir``); the recording and Stage 0 are shared.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

SEED_DIR = "seeds/{seed}/"  # a seed's folder under each data layer (runtime param seed_dir)
GUIDED = "awbc_guided"  # the guided condition's name starts so (awbc_guided_w<scale>)

# the columns of the summary and differences tables
SUMMARY_COLUMNS = [
    "task", "condition", "seeds", "mean", "ci_low", "ci_high", "sd", "per_seed",
]  # fmt: skip
DIFFERENCE_COLUMNS = [
    "task", "difference", "seeds", "mean", "ci_low", "ci_high", "sd", "per_seed",
]  # fmt: skip


@dataclass(frozen=True)
class SweepConfig:
    """How a sweep is summarised.

    Attributes:
        seeds: the training seeds, or their number n (seeds 0 .. n - 1).
        confidence: of the intervals (Student's t over the seeds' values).
        differences: ``[a, b]`` pairs of condition names reported as ``a - b``, paired
            by seed; ``awbc_guided`` stands for the guided condition whatever its scale.
        metric: the closed-loop table's column summarised.
    """

    seeds: int | tuple[int, ...] = 5
    confidence: float = 0.95
    differences: tuple[tuple[str, str], ...] = (
        ("awbc_positive", "bc"),
        ("awbc_positive", "awbc_negative"),
        (GUIDED, "awbc_positive"),
        ("weighted", "bc"),  # awbc.method: weighted
        ("filtered", "bc"),  # awbc.method: filtered
    )
    metric: str = "success_rate"

    def __post_init__(self) -> None:
        object.__setattr__(self, "differences", tuple(tuple(p) for p in self.differences))
        if not 0 < self.confidence < 1:
            raise ValueError(f"sweep.confidence must lie in (0, 1), got {self.confidence}")
        for pair in self.differences:
            if len(pair) != 2:
                raise ValueError(f"sweep.differences: {list(pair)} is not a pair [a, b]")

    def seed_list(self) -> list[int]:
        """The seeds, in order (validated: distinct, non-negative)."""
        seeds = (
            list(range(self.seeds)) if isinstance(self.seeds, int) else [int(s) for s in self.seeds]
        )
        if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
            raise ValueError(
                f"sweep.seeds must be a count >= 1 or distinct seeds >= 0, got {self.seeds}"
            )
        return seeds


def parse_seeds(text: str) -> list[int]:
    """``"5"`` -> [0, 1, 2, 3, 4]; ``"0,3,7"`` or ``"0 3 7"`` -> [0, 3, 7]."""
    parts = text.replace(",", " ").split()
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        return SweepConfig(seeds=values[0]).seed_list()
    if not values:
        raise ValueError(f"--seeds: {text!r} is neither a count nor a list of seeds (0,1,2)")
    return SweepConfig(seeds=tuple(values)).seed_list()


def interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, ...]:
    """(mean, low, high, sd) of ``values`` (one per seed): the Student-t interval of the
    mean, mean +- t(1 - (1 - confidence) / 2, n - 1) sd / sqrt(n); NaN bounds for n < 2."""
    x = np.asarray(values, np.float64)
    n = len(x)
    if n == 0:
        return (math.nan,) * 4
    mean = float(x.mean())
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    sd = float(x.std(ddof=1))
    # imported here: scipy.stats takes about half a second to import, and every run
    # imports this module (the parameters check parses sweep:)
    from scipy.stats import t as student_t

    half = float(student_t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return mean, mean - half, mean + half, sd


def _condition(names: Sequence[str], wanted: str) -> str | None:
    if wanted in names:
        return wanted
    if wanted == GUIDED:
        guided = [n for n in names if n.startswith(GUIDED)]
        return guided[0] if len(guided) == 1 else None
    return None


def _row(task: str, name: str, seeds: Sequence[int], values: Sequence[float], conf: float):
    mean, lo, hi, sd = interval(values, conf)
    per_seed = " / ".join(f"{v:.3f}" for v in values)
    return [task, name, " ".join(map(str, seeds)), mean, lo, hi, sd, per_seed]


def summarize(per_seed: pd.DataFrame, config: SweepConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The summary (one row per task and condition) and the paired differences (one row per
    task and pair of ``config.differences``) of the closed-loop tables of several seeds.

    Args:
        per_seed: the closed-loop tables stacked, with a ``seed`` column (``task``,
            ``condition`` and ``config.metric`` columns as in ``awbc_eval.csv``).
    """
    missing = {"seed", "task", "condition", config.metric} - set(per_seed.columns)
    if missing:
        raise ValueError(f"the seeds' tables lack the columns {sorted(missing)}")
    summary, differences = [], []
    conf = config.confidence
    for task, table in per_seed.groupby("task", sort=False):
        wide = table.pivot(index="seed", columns="condition", values=config.metric)
        wide = wide.loc[sorted(wide.index)]
        names = list(dict.fromkeys(table["condition"]))
        for name in names:
            col = wide[name].dropna()
            summary.append(_row(task, name, list(col.index), col.to_numpy(), conf))
        for a, b in config.differences:
            ca, cb = _condition(names, a), _condition(names, b)
            if ca is None or cb is None:
                continue
            d = (wide[ca] - wide[cb]).dropna()
            differences.append(_row(task, f"{ca} - {cb}", list(d.index), d.to_numpy(), conf))
    return (
        pd.DataFrame(summary, columns=SUMMARY_COLUMNS),
        pd.DataFrame(differences, columns=DIFFERENCE_COLUMNS),
    )


def sweep_metrics(summary: pd.DataFrame, differences: pd.DataFrame) -> dict[str, dict[str, float]]:
    """kedro-mlflow metrics: ``<condition>.mean|ci_low|ci_high|sd`` and
    ``diff.<a>-<b>.mean|...`` (prefixed ``<task>.`` when the world has several tasks), so
    that two sweeps compared in MLflow show each difference beside its seed spread."""
    several = summary["task"].nunique() > 1
    out = {}
    for frame, key, prefix in ((summary, "condition", ""), (differences, "difference", "diff.")):
        for row in frame.to_dict("records"):
            name = prefix + str(row[key]).replace(" - ", "-")
            name = f"{row['task']}.{name}" if several else name
            for stat in ("mean", "ci_low", "ci_high", "sd"):
                if not math.isnan(row[stat]):
                    out[f"{name}.{stat}"] = {"value": float(row[stat]), "step": 0}
    return out


def stack_tables(tables: Mapping[int, pd.DataFrame]) -> pd.DataFrame:
    """Each seed's closed-loop table with a ``seed`` column, stacked (seed order)."""
    return pd.concat([t.assign(seed=s) for s, t in sorted(tables.items())], ignore_index=True)
