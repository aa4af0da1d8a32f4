"""Project commands: Kedro's ``kedro run``, with one change: an error about the user's
input data, options or output paths (:class:`adv_pipeline.errors.InputError`) is printed
as one short block ending with its ``Fix:``, and the run exits with status 1, instead of
two pages of traceback. Other errors keep their traceback."""

from __future__ import annotations

import functools

import click
from kedro.framework.cli.project import run as kedro_run

from adv_pipeline.errors import user_error


@click.group(name="adv_pipeline")
def cli() -> None:
    """Commands of the adv_pipeline project."""


def _short_errors(callback):
    @functools.wraps(callback)
    def run(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except Exception as exc:
            error = user_error(exc)
            if error is None:
                raise
            raise click.ClickException(str(error)) from None

    return run


cli.add_command(
    click.Command(
        name="run",
        params=list(kedro_run.params),
        callback=_short_errors(kedro_run.callback),
        help=kedro_run.help,
        short_help=kedro_run.short_help,
    )
)

# ``python -m adv_pipeline`` (the packaged project's entry point) runs this command
run = cli.commands["run"]


def _kedro_option(name: str) -> click.Parameter:
    return next(p for p in kedro_run.params if p.name == name)


def _merged(base: dict, extra: dict) -> dict:
    """``base`` with what only ``extra`` has (nested dicts merged; ``base`` wins, and its
    keys come first)."""
    out = dict(base)
    for key, value in extra.items():
        if key not in out:
            out[key] = value
        elif isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = _merged(out[key], value)
    return out


def _run_session(env: str | None, params: dict, pipeline: str) -> None:
    import mlflow
    from kedro.framework.session import KedroSession

    try:
        with KedroSession.create(env=env, runtime_params=params) as session:
            session.run(pipeline_names=[pipeline])
    finally:  # each session its own MLflow run
        while mlflow.active_run():
            mlflow.end_run()


@cli.command(name="sweep")
@click.option(
    "--seeds",
    default="5",
    show_default=True,
    help="training seeds: a count n (0 .. n-1) or a list, e.g. 0,3,7",
)
@click.option(
    "--pipeline",
    "pipeline",
    default="__default__",
    show_default=True,
    help="the chain each seed runs (recording and Stage 0 are shared, done once), e.g. metaworld",
)
@click.option("--env", "-e", default=None, help=_kedro_option("env").help)
@click.option(
    "--params",
    default="",
    callback=_kedro_option("params").callback,
    help="runtime parameters for every seed, as kedro run's --params",
)
@_short_errors
def sweep(seeds: str, pipeline: str, env: str | None, params: dict) -> None:
    """Results over training seeds: run the chain once per training seed (the estimator,
    Stage 2's labels and the policies retrained into <layer>/<world>/seeds/<seed>/, the
    closed loop from the same start states), then the `seeds` pipeline: each condition's
    mean with its 95% interval and the paired differences, to MLflow, CSV and a plot."""
    import time

    from adv_pipeline.sweep import SEED_DIR, parse_seeds

    seed_list = parse_seeds(seeds)
    for i, seed in enumerate(seed_list):
        click.echo(f"kedro sweep: training seed {seed} ({i + 1} of {len(seed_list)})")
        t0 = time.perf_counter()
        # first, so that the MLflow run's name starts with them
        own = {"seed": seed, "seed_dir": SEED_DIR.format(seed=seed)}
        given = {k: v for k, v in params.items() if k not in own}
        # a sweep run again reuses finished trainings of the same seed, data and settings
        defaults = {"estimator": {"train": {"resume": "auto"}}}
        _run_session(env, _merged({**own, **given}, defaults), pipeline)
        click.echo(f"kedro sweep: training seed {seed} done in {time.perf_counter() - t0:.0f} s")
    _run_session(env, _merged({"sweep": {"seeds": seed_list}}, params), "seeds")
