"""adv_pipeline file for ensuring the package is executable
as `adv-pipeline` and `python -m adv_pipeline`
"""

import sys
from pathlib import Path
from typing import Any

from kedro.framework.cli.utils import find_run_command
from kedro.framework.project import configure_project


def annotate(argv: list[str]) -> None:
    """``adv-pipeline annotate <dataset> [--annotations FILE] [--port P]``: the browser
    annotator on the loopback interface."""
    import argparse

    from adv_pipeline.annotation.server import AnnotatorConfig, serve

    parser = argparse.ArgumentParser(
        prog="adv-pipeline annotate",
        description="Mark each episode's start, end and stage boundaries in the browser.",
    )
    parser.add_argument("dataset", type=Path, help="a LeRobot v2.1 dataset folder")
    parser.add_argument(
        "--annotations",
        type=Path,
        help="the annotation file (.jsonl or .csv; default: <dataset>_annotations.jsonl beside "
        "the dataset)",
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--gripper-key", default="observation.state")
    parser.add_argument(
        "--gripper-dims",
        default="",
        help="comma-separated gripper dimensions of --gripper-key, e.g. 6,13: boundaries are "
        "suggested at their open/close events",
    )
    args = parser.parse_args(argv)
    dataset = args.dataset.resolve()
    annotations = args.annotations or dataset.parent / f"{dataset.name}_annotations.jsonl"
    dims = tuple(int(d) for d in args.gripper_dims.split(",") if d.strip())
    serve(AnnotatorConfig(dataset, annotations, args.gripper_key, dims), port=args.port)


def main(*args, **kwargs) -> Any:
    if sys.argv[1:2] == ["annotate"] and not args:
        return annotate(sys.argv[2:])
    package_name = Path(__file__).parent.name
    configure_project(package_name)

    interactive = hasattr(sys, "ps1")
    kwargs["standalone_mode"] = not interactive

    run = find_run_command(package_name)
    return run(*args, **kwargs)


if __name__ == "__main__":
    main()
