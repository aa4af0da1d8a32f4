"""The annotation file: one record per episode, JSON Lines or CSV, plain and diff-able.

JSON Lines (``.jsonl``), one object per line::

    {"episode_index": 0, "start": 0, "end": 212, "boundaries": [97], "success": true}
    {"episode_index": 1, "start": 0.5, "end": 7.1, "boundaries": [3.2], "unit": "s"}

CSV (``.csv``), a header and a row per episode, boundaries separated by spaces::

    episode_index,start,end,boundaries,success,unit
    0,0,212,97,true,frame

``start`` is the first frame of the task, ``end`` its last frame (inclusive), and
``boundaries`` the first frame of each stage after the first (K - 1 values for K
stages, increasing, inside (start, end]). ``unit`` is ``frame`` (default) or ``s``
(seconds from the episode's first frame, rounded to the nearest frame). ``success`` is
optional.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from adv_pipeline.errors import InputError
from adv_pipeline.outputs import temporary_path

ANNOTATION_FIELDS = ("episode_index", "start", "end", "boundaries", "success", "unit")
UNITS = ("frame", "s")


class AnnotationError(InputError):
    """An annotation file or record that cannot be used."""


@dataclass(frozen=True)
class EpisodeAnnotation:
    """One episode's record, as written (times in ``unit``).

    Attributes:
        episode_index: the episode.
        start: first frame (or second) of the task.
        end: last frame (or second) of the task, inclusive.
        boundaries: first frame (or second) of each stage after the first.
        success: whether the episode succeeded (None: not said).
        unit: ``frame`` or ``s``.
    """

    episode_index: int
    start: float
    end: float
    boundaries: tuple[float, ...] = ()
    success: bool | None = None
    unit: str = "frame"

    def to_json(self) -> dict:
        row: dict = {
            "episode_index": self.episode_index,
            "start": _number(self.start),
            "end": _number(self.end),
            "boundaries": [_number(b) for b in self.boundaries],
        }
        if self.success is not None:
            row["success"] = self.success
        if self.unit != "frame":
            row["unit"] = self.unit
        return row


@dataclass(frozen=True)
class FrameAnnotation:
    """One episode's record in frames, checked against the episode.

    Attributes:
        start, end: first and last (inclusive) frame of the task.
        edges: (K + 1,) first frame of each stage, then ``end + 1``.
        success: as annotated (None: not said).
    """

    start: int
    end: int
    edges: tuple[int, ...]
    success: bool | None = None

    @property
    def stages(self) -> int:
        return len(self.edges) - 1


@dataclass(frozen=True)
class AnnotationFile:
    """An annotation file's records and where they came from (named in messages)."""

    path: Path
    records: tuple[EpisodeAnnotation, ...]

    @classmethod
    def read(cls, path: str | Path) -> AnnotationFile:
        return cls(Path(path), tuple(read_annotations(path)))


# larger than any episode (frames or seconds), small enough to convert to frames exactly
MAX_POSITION = 1e9


def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else float(x)


def _bool(value, where: str) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise AnnotationError(
        f"{where}: success {value!r} is not true or false. Fix: write true, false or leave it out"
    )


def parse_record(row: Mapping, where: str) -> EpisodeAnnotation:
    unknown = sorted(set(row) - set(ANNOTATION_FIELDS))
    if unknown:
        raise AnnotationError(
            f"{where}: unknown field(s) {unknown}. Fix: use only {', '.join(ANNOTATION_FIELDS)}"
        )
    missing = [k for k in ("episode_index", "start", "end") if row.get(k) in (None, "")]
    if missing:
        raise AnnotationError(f"{where}: no {', '.join(missing)}. Fix: add it to the record")
    boundaries = row.get("boundaries") or []
    if isinstance(boundaries, str):
        boundaries = boundaries.replace(";", " ").split()
    unit = str(row.get("unit") or "frame")
    if unit not in UNITS:
        raise AnnotationError(
            f"{where}: unit {unit!r} is not one of {UNITS}. Fix: write frame or s"
        )
    try:
        episode = int(row["episode_index"])
        start, end = float(row["start"]), float(row["end"])
        bounds = tuple(float(b) for b in boundaries)
    except (TypeError, ValueError) as exc:
        raise AnnotationError(
            f"{where}: a value is not a number ({exc}). Fix: write frames or seconds as numbers"
        ) from exc
    values = {"start": start, "end": end, **{f"boundary {i}": b for i, b in enumerate(bounds)}}
    for name, v in values.items():
        if not math.isfinite(v) or abs(v) > MAX_POSITION:
            raise AnnotationError(
                f"{where}: {name} is {v!r}, not a frame or second of an episode. Fix: write a "
                f"finite number of frames or seconds below {MAX_POSITION:.0e}"
            )
    return EpisodeAnnotation(episode, start, end, bounds, _bool(row.get("success"), where), unit)


def read_annotations(path: str | Path) -> list[EpisodeAnnotation]:
    """Read an annotation file (``.jsonl`` or ``.csv``), records in file order.

    Raises:
        AnnotationError: the file is missing or a line is not a valid record (the
            message names the file, the line and the fix).
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(
            f"{path}: no annotation file here. Fix: annotate the episodes (`adv-pipeline "
            f'annotate <dataset>`) or pass its path (`--params "annotations_path=..."`)'
        )
    text = path.read_text()
    records = []
    if path.suffix == ".csv":
        for n, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
            records.append(parse_record({k: v for k, v in row.items() if k}, f"{path}:{n}"))
        return records
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AnnotationError(
                f"{path}:{n}: not valid JSON ({exc.msg}). Fix: one JSON object per line"
            ) from exc
        if not isinstance(row, dict):
            raise AnnotationError(f"{path}:{n}: not a JSON object. Fix: one object per line")
        records.append(parse_record(row, f"{path}:{n}"))
    return records


def write_annotations(path: str | Path, records: Iterable[EpisodeAnnotation]) -> None:
    """Write ``records`` sorted by episode, atomically (a temporary file renamed over
    ``path``), as JSON Lines or CSV by the file's suffix."""
    path = Path(path)
    rows = sorted(records, key=lambda r: r.episode_index)
    if path.suffix == ".csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=ANNOTATION_FIELDS, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            js = r.to_json()
            js["boundaries"] = " ".join(str(b) for b in js["boundaries"])
            js["success"] = "" if r.success is None else str(r.success).lower()
            js["unit"] = r.unit
            writer.writerow(js)
        text = out.getvalue()
    else:
        text = "".join(json.dumps(r.to_json()) + "\n" for r in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def update_annotation(path: str | Path, record: EpisodeAnnotation) -> list[EpisodeAnnotation]:
    """Replace (or add) one episode's record in the file at ``path`` and return all
    records. Read, change and atomic rewrite happen under an exclusive ``flock`` on
    ``.<name>.lock`` beside the file, so two writers (two browser tabs) never lose each
    other's episodes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        records = read_annotations(path) if path.is_file() else []
        records = [r for r in records if r.episode_index != record.episode_index] + [record]
        write_annotations(path, records)
    return sorted(records, key=lambda r: r.episode_index)


def resolve_annotations(
    records: Sequence[EpisodeAnnotation],
    lengths: Mapping[int, int],
    fps: float,
    source: str | Path,
    stage_nums: int | None = None,
    allow_missing: bool = False,
) -> tuple[dict[int, FrameAnnotation], list[int]]:
    """Check the records against the dataset and convert them to frames.

    Args:
        records: as read.
        lengths: {episode_index: frames} of the dataset.
        fps: frames per second (for records in seconds).
        source: the annotation file, named in messages.
        stage_nums: stages every record must have (None: as many as the first record).
        allow_missing: episodes without a record are skipped (returned) instead of refused.

    Returns:
        ({episode_index: FrameAnnotation}, the episodes without a record).

    Raises:
        AnnotationError: a record for an episode the dataset lacks, two records for one
            episode, a boundary out of order or past the episode's end, a record with
            another number of stages, or (unless ``allow_missing``) an episode without one.
    """
    seen: dict[int, FrameAnnotation] = {}
    stages = (
        stage_nums if stage_nums is not None else len(records[0].boundaries) + 1 if records else 1
    )
    for r in records:
        where = f"{source}: episode {r.episode_index}"
        if r.episode_index not in lengths:
            raise AnnotationError(
                f"{where}: the dataset has no such episode (episodes 0..{len(lengths) - 1}). "
                f"Fix: correct the episode_index or annotate the right dataset"
            )
        if r.episode_index in seen:
            raise AnnotationError(f"{where}: annotated twice. Fix: keep one record per episode")
        k = len(r.boundaries) + 1
        if k != stages:
            said = "annotation.stage_nums is" if stage_nums is not None else "the first record has"
            raise AnnotationError(
                f"{where}: {len(r.boundaries)} boundaries make {k} stages, but {said} {stages}. "
                f"Fix: give every episode {stages - 1} boundaries"
            )
        scale = fps if r.unit == "s" else 1.0
        start, end, *bounds = (int(round(v * scale)) for v in (r.start, r.end, *r.boundaries))
        n = int(lengths[r.episode_index])
        unit = "s" if r.unit == "s" else ""
        if start < 0 or end > n - 1:
            raise AnnotationError(
                f"{where}: start {_number(r.start)}{unit} / end {_number(r.end)}{unit} "
                f"(frames {start}..{end}) lie outside the episode's frames 0..{n - 1}. Fix: "
                f"mark them inside the episode"
            )
        edges = (start, *bounds, end + 1)
        if any(b <= a for a, b in zip(edges, edges[1:])):
            raise AnnotationError(
                f"{where}: start, boundaries and end (frames {start}, {bounds}, {end}) are not "
                f"in increasing order (every stage needs at least one frame). Fix: reorder or "
                f"correct them"
            )
        seen[r.episode_index] = FrameAnnotation(start, end, edges, r.success)
    missing = sorted(set(lengths) - set(seen))
    if missing and not allow_missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise AnnotationError(
            f"{source}: {len(missing)} episode(s) have no annotation ({shown}). Fix: annotate "
            f"them, or pass annotation.allow_missing=true to leave them out of the output"
        )
    return seen, missing
