"""Third-party warnings that a plain run cannot fix, silenced by their message only.

- Kedro and kedro-mlflow still call OmegaConf's deprecated ``register_new_resolver()``;
- mlflow asks for type hints on kedro-mlflow's ``PythonModel`` when kedro-mlflow loads;
- mlflow's SQLAlchemy tracking store uses a deprecated ``noload`` loader strategy;
- kedro-viz logs a warning that it does not record its run events on every run with
  ``--nodes``, ``--tags`` or ``--from-nodes`` (a notice about its own feature), and its
  ``kedro viz build`` imports FastAPI's deprecated ``ORJSONResponse``.

Installed as a ``kedro.init`` entry point (pyproject.toml), which Kedro's CLI calls before
it loads any plugin, and again from the project settings. mlflow re-enables its own
warning inside ``warnings.catch_warnings()``, so the same messages are also dropped from
the ``py.warnings`` logger, where Kedro's logging shows captured warnings.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

MESSAGES = (
    r"register_new_resolver\(\) is deprecated",
    r"Add type hints to the `predict` method",
    r"The ``noload`` loader strategy is deprecated",
    r"Workflow tracking is disabled",
    r"ORJSONResponse is deprecated",
)
# loggers whose records are filtered by message (captured warnings; kedro-viz's run hooks)
LOGGERS = ("py.warnings", "kedro_viz.integrations.kedro.run_hooks")


class _DropMessages(logging.Filter):
    patterns = [re.compile(m, re.I) for m in MESSAGES]

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()  # "<file>:<line>: <Category>: <message>"
        return not any(p.search(text) for p in self.patterns)


def silence_third_party() -> None:
    for message in MESSAGES:
        warnings.filterwarnings("ignore", message=".*" + message)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessages) for f in logger.filters):
            logger.addFilter(_DropMessages())


@contextmanager
def jax_free_fork() -> Iterator[None]:
    """Around forking worker processes that never call JAX (numpy, pyarrow, PyAV, the
    simulator only): JAX warns at every fork of a process that ran it, which a Kedro
    session after another one in the same process (``kedro sweep``) is."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "os.fork", RuntimeWarning)
        yield
