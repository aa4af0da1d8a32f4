"""adv_pipeline file for ensuring the package is executable
as `adv-pipeline` and `python -m adv_pipeline`
"""

import sys
from pathlib import Path
from typing import Any


def annotate(argv: list[str]) -> None:
    """``adv-pipeline annotate <dataset> [--annotations FILE] [--port P]``: the browser
    annotator on the loopback interface."""
    import argparse

    from adv_pipeline.annotation.server import AnnotatorConfig, serve
    from adv_pipeline.errors import InputError

    parser = argparse.ArgumentParser(
        prog="adv-pipeline annotate",
        description="Mark each episode's start, end and stage boundaries in the browser.",
    )
    parser.add_argument("dataset", type=Path, help="a LeRobot dataset folder (v2.1 or v3.0)")
    parser.add_argument(
        "--annotations",
        type=Path,
        help="the annotation file (.jsonl or .csv; default: <dataset>_annotations.jsonl beside "
        "the dataset)",
    )
    parser.add_argument("--port", type=int, default=8765, help="default: 8765; 0: a free port")
    parser.add_argument("--gripper-key", default="observation.state")
    parser.add_argument(
        "--gripper-dims",
        default="",
        help="comma-separated gripper dimensions of --gripper-key, e.g. 6,13: boundaries are "
        "suggested at their open/close events",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port}: expected 0..65535")
    dataset = args.dataset.resolve()
    annotations = args.annotations or dataset.parent / f"{dataset.name}_annotations.jsonl"
    dims = tuple(int(d) for d in args.gripper_dims.split(",") if d.strip())
    try:
        serve(AnnotatorConfig(dataset, annotations, args.gripper_key, dims), port=args.port)
    except InputError as exc:
        sys.exit(f"Error: {exc}")


def serve(argv: list[str]) -> None:
    """``adv-pipeline serve --checkpoint <run or step folder> [--port P] ...``: a trained
    policy over openpi's websocket protocol (``openpi_client.WebsocketClientPolicy``)."""
    import argparse
    import logging
    import typing

    from adv_pipeline.errors import InputError
    from adv_pipeline.policy.config import Guidance, GuidanceReference
    from adv_pipeline.policy.serve import DEFAULT_PORT, serve

    parser = argparse.ArgumentParser(
        prog="adv-pipeline serve",
        description="Serve a trained AWBC policy to openpi-client robots (websocket, msgpack).",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="a policy run folder (its latest step), a folder of runs (the latest run) or a "
        "step folder",
    )
    parser.add_argument("--step", type=int, help="the step of the run to serve (default: latest)")
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 serves other machines")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="default: 8000 (openpi's)")
    parser.add_argument(
        "--guidance-scale",
        type=float,
        default=1.0,
        help="classifier-free guidance weight w (1: the plain conditional prompt)",
    )
    parser.add_argument(
        "--guidance-reference",
        choices=typing.get_args(GuidanceReference),
        default=Guidance.reference,
        help="what guidance extrapolates away from: the task with the worst advantage label "
        "(default) or the plain task text",
    )
    parser.add_argument(
        "--prompt",
        help="default prompt of requests without one: a task text (its top advantage prompt) "
        "or a full '<task>, Advantage: <label>' prompt (default: the policy's)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the flow noise")
    parser.add_argument(
        "--max-message-mb",
        type=float,
        help="largest request accepted, MiB (default: a Full-HD RGB frame per camera + 1)",
    )
    args = parser.parse_args(argv)
    if args.max_message_mb is not None and args.max_message_mb <= 0:
        parser.error(f"--max-message-mb {args.max_message_mb}: expected > 0")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port}: expected 0..65535")
    logging.basicConfig(format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("adv_pipeline.policy.serve").setLevel(logging.INFO)
    try:
        serve(
            args.checkpoint,
            step=args.step,
            host=args.host,
            port=args.port,
            guidance=Guidance(args.guidance_scale, args.guidance_reference),
            prompt=args.prompt,
            seed=args.seed,
            max_message_bytes=(
                int(args.max_message_mb * 2**20) if args.max_message_mb is not None else None
            ),
        )
    except InputError as exc:
        sys.exit(f"Error: {exc}")
    except KeyboardInterrupt:
        pass


USAGE = """\
Usage: adv-pipeline annotate DATASET [--annotations FILE] [--port P]
         the browser annotator (adv-pipeline annotate --help)
       adv-pipeline serve --checkpoint RUN [--port P] [--guidance-scale W] ...
         a trained policy over openpi's websocket protocol (adv-pipeline serve --help)
       adv-pipeline [OPTIONS]
         a run of the project's pipelines, as `kedro run` (inside the project: `kedro run`,
         `kedro sweep`); its options:
"""


def main(*args, **kwargs) -> Any:
    if sys.argv[1:2] in (["--help"], ["-h"]) and not args:
        print(USAGE)
        sys.argv[1] = "--help"
    if sys.argv[1:2] == ["annotate"] and not args:
        return annotate(sys.argv[2:])
    if sys.argv[1:2] == ["serve"] and not args:
        return serve(sys.argv[2:])
    # Kedro configures logging when imported: only its own commands import it
    from kedro.framework.cli.utils import find_run_command
    from kedro.framework.project import configure_project

    package_name = Path(__file__).parent.name
    configure_project(package_name)

    interactive = hasattr(sys, "ps1")
    kwargs["standalone_mode"] = not interactive

    run = find_run_command(package_name)
    return run(*args, **kwargs)


if __name__ == "__main__":
    main()
