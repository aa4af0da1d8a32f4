"""The ``kedro run`` command line as a user meets it: a mistake in a parameter or a
pipeline name stops the run before any work with one short block that names the key and
the fix (no traceback, no MLflow run); a plain run prints no warnings; Stage 0 starts
without torch or jax."""

from __future__ import annotations

import subprocess

import pytest

from ..conftest import BIN, mlflow_runs, run_kedro


def _mistake(project, *args: str) -> str:
    proc = run_kedro(project, "run", *args, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "Traceback" not in out and "│" not in out, out  # no (rich) traceback
    assert mlflow_runs(project) == []
    lines = [line for line in out.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, out
    return lines[0]


@pytest.mark.parametrize(
    "params, expected",
    [
        ("raw_datset_path=/tmp/x", "unknown key raw_datset_path; did you mean 'raw_dataset_path'?"),
        (
            "gt_labeling.threshold_scop=task_stage",
            "unknown key gt_labeling.threshold_scop; did you mean 'threshold_scope'?",
        ),
        ("gt_labeling.threshold=130", "threshold"),
        # Kedro wraps a dataset's load error in two of its own: still one line
        ("raw_dataset_path=/nonexistent/dataset", "/nonexistent/dataset: no LeRobot dataset here"),
    ],
)
def test_a_mistyped_parameter_stops_the_run_with_one_short_error(kedro_project, params, expected):
    error = _mistake(kedro_project, "--pipelines", "gt_labeling", "--params", params)
    assert expected in error
    assert "Fix:" in error


def test_a_mistyped_pipeline_name_is_answered_with_the_closest_one(kedro_project):
    error = _mistake(kedro_project, "--pipelines", "gt_labelling")
    assert "no pipeline named 'gt_labelling'; did you mean 'gt_labeling'?" in error


def test_a_plain_stage0_run_prints_no_warnings_and_imports_neither_torch_nor_jax(
    kedro_project,
):
    run_kedro(kedro_project, "run", "--pipelines", "demo", "--params", "demo.n_episodes=2")
    # Python lists every module it imports on stderr ("import time: ... | <module>")
    proc = run_kedro(
        kedro_project,
        "run",
        "--pipelines",
        "gt_labeling",
        env={"PYTHONPROFILEIMPORTTIME": "1", "COLUMNS": "200"},
    )
    imports = [line for line in proc.stderr.splitlines() if line.startswith("import time:")]
    modules = {line.rsplit("|", 1)[-1].strip() for line in imports}
    assert "adv_pipeline.labeling" in modules
    assert not {"torch", "jax", "flax", "transformers"} & modules
    out = proc.stdout + "\n".join(set(proc.stderr.splitlines()) - set(imports))
    assert "Pipeline execution completed successfully" in out
    assert "warning" not in out.lower(), out


def test_the_packaged_command_lists_its_three_commands(kedro_project):
    """``adv-pipeline --help`` (the installed entry point) names annotate and serve beside
    the run's options; ``-h`` says the same."""
    for flag in ("--help", "-h"):
        proc = subprocess.run(
            [str(BIN / "adv-pipeline"), flag],
            cwd=kedro_project,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "adv-pipeline annotate DATASET" in proc.stdout
        assert "adv-pipeline serve --checkpoint RUN" in proc.stdout
        assert "--pipelines" in proc.stdout  # the run's own options follow
