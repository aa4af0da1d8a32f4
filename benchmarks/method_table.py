"""The advantage-source x policy-method table of issue 32 from finished runs.

Each ``SOURCE=FOLDER`` names the advantage source of a set of runs and a folder holding one
sub-folder per training seed with that seed's closed-loop table (``<seed>/awbc_eval.csv``,
as ``data/08_reporting/<world>/seeds/<seed>/`` after ``kedro sweep`` or ``kedro run
--params "seed=<s>,seed_dir=seeds/<s>/"``). Several folders may share a source (one per
``awbc.method``). Prints, per condition: the mean success over the training seeds with its
95% Student-t interval, the pooled rollouts' 95% Wilson interval, each seed's rate, and
the difference from plain BC paired by seed. Conditions that do not depend on the advantage
(plain BC, curated BC, the expert) are printed once, and must agree between runs of the
same seed (they are the same training). ``--shared`` names those conditions instead: on
the demo, whose policies see the cameras through each source's Stage 1 encoder, plain BC
differs between sources (``--shared bc_curated,expert``), and each cell is then compared
with its own source's plain BC::

    python benchmarks/method_table.py progress=results/progress returns=results/returns \\
        progress=results/progress_filtered --task all \\
        --diff returns/awbc_positive,progress/awbc_positive
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from adv_pipeline.policy import wilson_interval
from adv_pipeline.sweep import interval

SHARED = ("bc", "bc_curated", "expert")  # conditions that ignore the advantage labels


def read_runs(specs: list[str], shared_conditions: tuple[str, ...] = SHARED) -> pd.DataFrame:
    """The closed-loop tables of every seed of every ``SOURCE=FOLDER``, stacked, with the
    columns ``source``, ``seed`` and ``cell`` (``<source>/<condition>``, or the condition
    alone for ``shared_conditions``)."""
    frames = []
    for spec in specs:
        source, sep, folder = spec.partition("=")
        if not sep:
            sys.exit(f"{spec!r}: expected SOURCE=FOLDER, e.g. returns=results/returns")
        seeds = sorted(p for p in Path(folder).iterdir() if (p / "awbc_eval.csv").is_file())
        if not seeds:
            sys.exit(f"{folder}: no <seed>/awbc_eval.csv")
        for seed_dir in seeds:
            table = pd.read_csv(seed_dir / "awbc_eval.csv")
            table["source"], table["seed"] = source, int(seed_dir.name)
            frames.append(table)
    runs = pd.concat(frames, ignore_index=True)
    shared = runs["condition"].isin(shared_conditions)
    runs["cell"] = runs["condition"].where(shared, runs["source"] + "/" + runs["condition"])
    return runs


def check_shared(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, cell, seed): shared conditions must agree between runs."""
    keys = ["task", "cell", "seed"]
    spread = runs.groupby(keys)["successes"].agg(["min", "max"])
    differ = spread[spread["min"] != spread["max"]]
    if len(differ):
        print(f"warning: runs of the same seed disagree on\n{differ}", file=sys.stderr)
    return runs.drop_duplicates(keys)


def _task(runs: pd.DataFrame, task: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of ``task`` and its success rates as a seed x cell table."""
    rows = runs[runs["task"] == task]
    return rows, rows.pivot(index="seed", columns="cell", values="success_rate")


def _paired(wide: pd.DataFrame, a: str, b: str) -> tuple[pd.Series, tuple[float, ...]]:
    """Cell ``a`` - cell ``b`` per seed, in points, and its (mean, low, high, sd)."""
    d = (wide[a] - wide[b]).dropna() * 100
    return d, interval(d.to_numpy())


def _plain_bc(cell: str, wide: pd.DataFrame) -> str | None:
    """The plain-BC cell that ``cell`` is compared with: its source's when plain BC is
    per source, else the shared one (None for plain BC itself)."""
    source, _, condition = cell.rpartition("/")
    if condition == "bc":
        return None
    return next((bc for bc in (f"{source}/bc", "bc") if bc in wide), None)


def table(runs: pd.DataFrame, task: str) -> str:
    """Markdown: one row per cell of ``task``."""
    rows, wide = _task(runs, task)
    lines = [
        "| cell | mean success [95% t, seeds] | pooled rollouts [95% Wilson] | per seed "
        f"({' / '.join(map(str, wide.index))}) | - plain BC, points [95% t] |",
        "| --- | --- | --- | --- | --- |",
    ]
    order = rows.groupby("cell")["success_rate"].mean().sort_values(ascending=False).index
    for cell in order:
        col = wide[cell].dropna()
        mean, lo, hi, _ = interval(col.to_numpy())
        sub = rows[rows["cell"] == cell]
        k, n = int(sub["successes"].sum()), int(sub["n_episodes"].sum())
        wlo, whi = wilson_interval(k, n)
        per_seed = " / ".join(f"{v:.2f}" for v in col)
        diff = ""
        bc = _plain_bc(cell, wide)
        if bc is not None:
            _, (dm, dlo, dhi, _) = _paired(wide, cell, bc)
            diff = f"{dm:+.1f} [{dlo:+.1f}, {dhi:+.1f}]"
        lines.append(
            f"| {cell} | {mean:.3f} [{lo:.3f}, {hi:.3f}] | {k}/{n}: [{wlo:.3f}, {whi:.3f}] "
            f"| {per_seed} | {diff} |"
        )
    return "\n".join(lines)


def differences(runs: pd.DataFrame, task: str, pairs: list[str]) -> str:
    """Markdown: the paired differences ``A-B`` (cells, per seed) of ``task``, in points."""
    _, wide = _task(runs, task)
    lines = ["| difference | mean, points [95% t] | per seed |", "| --- | --- | --- |"]
    for pair in pairs:
        a, sep, b = pair.partition(",")
        if not sep or a not in wide or b not in wide:
            sys.exit(f"--diff {pair!r}: expected A,B with two cells of {sorted(wide)}")
        d, (mean, lo, hi, _) = _paired(wide, a, b)
        per_seed = " / ".join(f"{v:+.1f}" for v in d)
        lines.append(f"| {a} - {b} | {mean:+.1f} [{lo:+.1f}, {hi:+.1f}] | {per_seed} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="SOURCE=FOLDER")
    parser.add_argument("--task", action="append", help="tasks to print (default: all of them)")
    parser.add_argument(
        "--diff", action="append", default=[], metavar="A,B", help="paired difference of two cells"
    )
    parser.add_argument(
        "--shared",
        default=",".join(SHARED),
        metavar="A,B",
        help=f"conditions that ignore the advantage source (default: {','.join(SHARED)})",
    )
    args = parser.parse_args()
    runs = check_shared(read_runs(args.runs, tuple(filter(None, args.shared.split(",")))))
    for task in args.task or list(dict.fromkeys(runs["task"])):
        print(f"\n### {task}\n\n{table(runs, task)}")
        if args.diff:
            print(f"\n{differences(runs, task, args.diff)}")


if __name__ == "__main__":
    main()
