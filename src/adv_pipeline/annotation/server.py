"""The browser annotator: a Starlette app serving one dataset and its annotation file.

``adv-pipeline annotate <dataset> [--annotations FILE] [--port P]`` serves it on the
loopback interface. The page plays the episode's cameras side by side straight from the
dataset's video files (HTTP range requests), steps frame by frame, and marks the start,
the end and the stage boundaries; each save rewrites the episode's record atomically
(:func:`~.records.update_annotation`). No Kedro here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from adv_pipeline.errors import InputError
from adv_pipeline.lerobot import LeRobotDatasetReader

from .columns import annotation_columns
from .records import (
    AnnotationError,
    EpisodeAnnotation,
    parse_record,
    read_annotations,
    resolve_annotations,
    update_annotation,
)
from .suggest import gripper_events

# columns shown under the video when the dataset has them (Stage 0 / Stage 2 outputs)
CURVES = (
    "stage_progress_gt",
    "progress",
    "absolute_advantage",
    "relative_advantage",
    "absolute_value",
)


@dataclass(frozen=True)
class AnnotatorConfig:
    """What the annotator serves.

    Attributes:
        dataset: the LeRobot dataset's folder.
        annotations: the annotation file (``.jsonl`` or ``.csv``; created on first save).
        gripper_key: the column holding the grippers (``observation.state`` or ``action``).
        gripper_dims: its gripper dimensions (empty: no suggestions).
    """

    dataset: Path
    annotations: Path
    gripper_key: str = "observation.state"
    gripper_dims: tuple[int, ...] = ()


def _records(path: Path) -> dict[int, EpisodeAnnotation]:
    return {r.episode_index: r for r in read_annotations(path)} if path.is_file() else {}


LOOPBACK = ("localhost", "127.0.0.1", "::1")
MAX_BODY_BYTES = 64 * 1024  # a record is a few hundred bytes


def _host_name(host: str) -> str:
    """``127.0.0.1`` of ``127.0.0.1:8765``, ``::1`` of ``[::1]:8765``."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _foreign(request: Request) -> str | None:
    """Why a request does not come from this annotator's own page, or None. The page is
    served on the loopback interface only: another host name (DNS rebinding: a web page
    whose name resolves to 127.0.0.1) reads nothing, and a write must come from the same
    origin."""
    host = request.headers.get("host", "")
    if _host_name(host).lower() not in LOOPBACK:
        return f"Host {host!r} is not this annotator's (it answers {', '.join(LOOPBACK)} only)"
    origin = request.headers.get("origin")
    if request.method not in ("GET", "HEAD") and origin not in (None, f"http://{host}"):
        return f"a write from origin {origin!r}, not from this annotator's page (http://{host})"
    return None


def _json_constant(name: str):
    raise ValueError(f"{name} is not a number a record can hold")


async def _json_body(request: Request) -> dict:
    """The request's JSON object (at most :data:`MAX_BODY_BYTES`; no NaN or Infinity)."""
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise ValueError(
            f"the body holds {len(body)} bytes; a record takes at most {MAX_BODY_BYTES}"
        )
    try:
        value = json.loads(body, parse_constant=_json_constant)
    except RecursionError:
        raise ValueError("the body nests too deeply to be a record") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"the body is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(
            f"expected a JSON object {{start, end, boundaries, unit}}, received "
            f"{type(value).__name__}"
        )
    return value


def create_app(config: AnnotatorConfig) -> Starlette:
    """The annotator's web app (routes under ``/api`` and ``/video``, the page at ``/``)."""
    ds = LeRobotDatasetReader(config.dataset)
    lengths = dict(zip(ds.episode_indices.tolist(), ds.lengths.tolist()))
    curves = [c for c in CURVES if c in ds.column_names()]
    if config.gripper_dims:
        ds.require_column(
            config.gripper_key, ", which holds the grippers", "pass --gripper-key <column>"
        )

    def error(message: str, status: int = 400) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def episode_of(request: Request) -> int | None:
        e = int(request.path_params["episode"])
        return e if e in lengths else None

    async def page(request: Request) -> Response:
        html = resources.files("adv_pipeline.annotation").joinpath("static/index.html")
        return HTMLResponse(html.read_text())

    async def dataset(request: Request) -> Response:
        done = _records(config.annotations)
        return JSONResponse(
            {
                "root": str(ds.root),
                "annotations": str(config.annotations),
                "fps": ds.fps,
                "cameras": ds.video_keys,
                "tasks": ds.tasks,
                "episodes": [
                    {"episode_index": e, "length": n, "annotated": e in done}
                    for e, n in lengths.items()
                ],
            }
        )

    def annotation_curve(e: int, record: EpisodeAnnotation | None) -> list[float] | None:
        if record is None:
            return None
        frames, _ = resolve_annotations(
            [record], {e: lengths[e]}, ds.fps, config.annotations, allow_missing=True
        )
        cols = annotation_columns(np.array([lengths[e]]), [frames[e]])
        return cols["stage_progress_gt"].astype(np.float64).round(5).tolist()

    async def episode(request: Request) -> Response:
        e = episode_of(request)
        if e is None:
            return error(f"no episode {request.path_params['episode']} in {ds.root}", 404)
        record = _records(config.annotations).get(e)
        columns = ds.read_episode(e, curves) if curves else {}
        suggestions = []
        if config.gripper_dims:
            grip = ds.read_episode(e, [config.gripper_key])[config.gripper_key]
            suggestions = gripper_events(grip, config.gripper_dims)
        return JSONResponse(
            {
                "episode_index": e,
                "length": lengths[e],
                "task": ds.tasks[int(ds.read_episode(e, ["task_index"])["task_index"][0])]
                if "task_index" in ds.column_names()
                else "",
                "record": record.to_json() if record else None,
                "annotation_curve": annotation_curve(e, record),
                "curves": {
                    c: np.asarray(v, dtype=np.float64)
                    .reshape(lengths[e], -1)[:, 0]
                    .round(5)
                    .tolist()
                    for c, v in columns.items()
                },
                "suggestions": suggestions,
                "videos": {k: f"/video/{e}/{k}" for k in ds.video_keys},
                # seconds of the episode's frame 0 in its video (v3.0 files hold several)
                "video_start": {k: ds.first_video_frame(e, k) / ds.fps for k in ds.video_keys},
            }
        )

    async def save(request: Request) -> Response:
        e = episode_of(request)
        if e is None:
            return error(f"no episode {request.path_params['episode']} in {ds.root}", 404)
        try:
            body = await _json_body(request)
            record = parse_record({**body, "episode_index": e}, f"episode {e}")
            # the annotation pipeline's checks, on the whole file as this save leaves it
            others = [r for i, r in _records(config.annotations).items() if i != e]
            resolve_annotations(
                [*others, record], lengths, ds.fps, config.annotations, allow_missing=True
            )
            records = update_annotation(config.annotations, record)
        except (AnnotationError, ValueError, TypeError) as exc:
            return error(f"episode {e}: not saved: {exc}")
        done = {r.episode_index for r in records}
        following = [x for x in lengths if x > e and x not in done] + [
            x for x in lengths if x <= e and x not in done
        ]
        return JSONResponse(
            {
                "record": record.to_json(),
                "annotation_curve": annotation_curve(e, record),
                "next": following[0] if following else None,
            }
        )

    async def video(request: Request) -> Response:
        e = episode_of(request)
        key = request.path_params["camera"]
        if e is None or key not in ds.video_keys:
            return error("no such episode or camera", 404)
        return FileResponse(ds.video_path(e, key), media_type="video/mp4")

    async def same_origin(request: Request, call_next) -> Response:
        why = _foreign(request)
        return error(f"refused: {why}", 403) if why else await call_next(request)

    return Starlette(
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=same_origin)],
        routes=[
            Route("/", page),
            Route("/api/dataset", dataset),
            Route("/api/episodes/{episode:int}", episode),
            Route("/api/episodes/{episode:int}/annotation", save, methods=["PUT"]),
            Route("/video/{episode:int}/{camera:path}", video),
        ],
    )


def serve(config: AnnotatorConfig, port: int = 8765, host: str = "127.0.0.1") -> None:
    """Serve the annotator until interrupted (loopback only by default; port 0 picks a free
    port). Prints the page's address once listening."""
    import socket

    import uvicorn

    app = create_app(config)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family)
    except OSError as exc:
        raise InputError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}. Fix: pass another --port"
        ) from None
    port = sock.getsockname()[1]
    name = f"[{host}]" if family == socket.AF_INET6 else host
    # flushed: a supervisor or a test reading a pipe learns the port now
    print(
        f"annotating {config.dataset} into {config.annotations}: open http://{name}:{port}/",
        flush=True,
    )
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
