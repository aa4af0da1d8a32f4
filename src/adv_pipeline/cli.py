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
