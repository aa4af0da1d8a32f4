"""What may be written where, so that nothing a user made is lost.

Every directory this project writes (a dataset, a training run, a folder of runs) holds
a marker file, ``.adv_pipeline.json``, naming its kind; files it writes (reports) are
listed in the marker of their folder. The rules, applied to every output before any
work starts and again by the writers themselves:

- an output path is created, or replaced when it holds something of the same kind that
  this project wrote; anything else there is refused unless ``overwrite`` is given;
- an output equal to, inside or containing an input is always refused;
- one writer at a time: a second process that opens an output being written fails at
  once, naming the holder (:func:`output_lock`); the lock of a dead process is taken over;
- writes go to ``.<name>.tmp-<host>-<pid>-<id>`` beside the destination and are renamed
  into place (:func:`atomic_directory`); such debris of a dead process is swept by the
  next writer of that output (:func:`sweep_debris`).

No Kedro here: the Kedro hook (:mod:`adv_pipeline.hooks`) and the writers both call it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError

log = logging.getLogger(__name__)

MARKER = ".adv_pipeline.json"
DATASET = "lerobot_dataset"
RUNS = "runs"  # a folder of training runs, one sub-folder per run
RUN = "run"  # one training run: <step>/ checkpoints and its metrics
FILES = "files"  # a folder some of whose files (reports) this project wrote
OVERWRITE_FIX = 'pass --params "overwrite=true" to replace it'
LOCK_DELEGATES_ENV = "ADV_PIPELINE_LOCK_DELEGATES"  # pids whose locks child processes may use

_HOST = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname()) or "host"
_DEBRIS = re.compile(
    r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)-[0-9a-f]{8}$"
)


@dataclass(frozen=True)
class OutputTarget:
    """Where a node writes an output, and whether it may replace what this project did
    not write there (what a Kedro target dataset gives the node; it creates nothing)."""

    path: Path
    overwrite: bool = False
    format: str | None = None  # LeRobot format of a dataset written there; None: the input's


class OutputError(InputError):
    """An output path may not be written. The message names the path and the fix."""


class OutputLockedError(OutputError):
    """Another live process is writing this output."""


def shown_path(path: str | Path) -> str:
    """``path`` as our reports and metadata record it: relative to the working directory
    (the Kedro project) when inside it, so that the same command in another clone writes
    the same bytes; absolute otherwise."""
    try:
        full, here = Path(path).resolve(), Path.cwd().resolve()
    except OSError:
        return str(path)
    return full.relative_to(here).as_posix() if full.is_relative_to(here) else str(path)


# ---------------------------------------------------------------------------- markers
def read_marker(directory: str | Path) -> dict | None:
    """The marker of a directory this project wrote, or None."""
    path = Path(directory) / MARKER
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None


def write_marker(directory: str | Path, kind: str, **info) -> None:
    """Mark ``directory`` as written by this project (``kind``: what it holds)."""
    from adv_pipeline import __version__

    old = read_marker(directory) or {}
    body = {
        "kind": kind,
        "written_by": f"adv_pipeline {__version__}",
        "created": old.get("created", time.time()),
        **{k: v for k, v in old.items() if k not in ("kind", "written_by", "created")},
        **info,
    }
    _write_text_atomic(Path(directory) / MARKER, json.dumps(body, indent=2, default=str))


def record_file(path: str | Path) -> None:
    """Note in its folder's marker that this project wrote the file ``path`` (runs that
    write reports to one folder at once take turns: no entry is lost)."""
    path = Path(path)
    fd = os.open(path.parent, os.O_RDONLY | os.O_CLOEXEC)  # the folder itself is the lock
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held for a read and a rename: milliseconds
        marker = read_marker(path.parent) or {}
        files = sorted(set(marker.get("files", [])) | {path.name})
        write_marker(path.parent, marker.get("kind", FILES), files=files)
    finally:
        os.close(fd)


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.parent / f".{path.name}.tmp-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.write_text(text)
    os.replace(tmp, path)


def _describe(path: Path) -> str:
    if path.is_symlink():
        return f"a symbolic link to {os.readlink(path)}"
    if path.is_dir():
        n = sum(1 for _ in path.iterdir())
        what = "a LeRobot dataset" if (path / "meta" / "info.json").is_file() else "a folder"
        return f"{what} with {n} entries"
    return f"a file of {path.stat().st_size} bytes"


# what a folder of each kind holds when this project wrote all of it: entries by name,
# besides our hidden files (markers, identities, locks, temporary and staging folders)
_OWN_ENTRIES = {DATASET: {"meta", "data", "videos", "images"}}


def _ours_hidden(name: str) -> bool:
    return name in (MARKER, ".write_identity.json") or bool(
        _DEBRIS.match(name) or name.endswith((".lock", ".work"))
    )


def foreign_entries(path: str | Path, kind: str) -> list[str]:
    """The entries of the folder ``path`` (an output of ``kind`` this project wrote) that
    it did not write, e.g. a user's ``NOTES.md`` added to a dataset; sorted."""
    path = Path(path)
    if kind not in (DATASET, RUNS) or not path.is_dir() or path.is_symlink():
        return []
    out = []
    for entry in os.scandir(path):
        if _ours_hidden(entry.name):
            continue
        if kind == DATASET and entry.name in _OWN_ENTRIES[DATASET] and entry.is_dir():
            continue
        if kind == RUNS and entry.is_dir() and (read_marker(entry.path) or {}).get("kind") == RUN:
            continue
        out.append(entry.name)
    return sorted(out)


def _owned(path: Path, kind: str) -> bool:
    if path.is_symlink():
        return False
    if path.is_dir():
        marker = read_marker(path)
        return marker is not None and marker.get("kind") == kind and not foreign_entries(path, kind)
    if kind == FILES and path.is_file():
        return path.name in (read_marker(path.parent) or {}).get("files", [])
    return False


# ---------------------------------------------------------------------------- rules
def relation(a: Path, b: Path) -> str | None:
    """How path ``a`` relates to path ``b`` (both resolved): "equal to", "inside",
    "containing" or None."""
    if a == b:
        return "equal to"
    if b in a.parents:
        return "inside"
    if a in b.parents:
        return "containing"
    return None


def resolved(path: str | Path) -> Path:
    """Absolute path with symbolic links resolved (what is really written)."""
    return Path(os.path.realpath(Path(path).expanduser()))


def check_output(
    path: str | Path,
    kind: str,
    *,
    inputs: Mapping[str, str | Path] | Iterable[str | Path] = (),
    overwrite: bool = False,
    name: str | None = None,
) -> None:
    """Raise :class:`OutputError` unless ``path`` may be written as an output of ``kind``.

    Args:
        path: the output (a directory for datasets and runs, a file for reports).
        kind: what the project writes there (:data:`DATASET`, :data:`RUNS`, :data:`RUN`,
            :data:`FILES` for a file).
        inputs: paths this run reads ({name: path} or paths), never written through.
        overwrite: also replace what this project did not write (never an input).
        name: the output's catalog name, used in the fix (``<name>_path``).
    """
    out = resolved(path)
    named = inputs.items() if isinstance(inputs, Mapping) else ((None, p) for p in inputs)
    for in_name, in_path in named:
        how = relation(out, resolved(in_path))
        if how:
            what = f"the input {in_name} ({in_path})" if in_name else f"the input {in_path}"
            raise OutputError(
                f"{path}: this output is {how} {what}; writing it would modify or delete that "
                f"input. Fix: {path_fix(name, kind)}"
            )
    if not os.path.lexists(out) or overwrite or _owned(Path(path), kind):
        return
    foreign = foreign_entries(path, kind) if read_marker(path) else []
    if foreign:
        shown = ", ".join(foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        raise OutputError(
            f"{path}: holds what adv_pipeline wrote there, and also {shown}, which it did not "
            f"write, so it is not replaced. Fix: move {'them' if len(foreign) > 1 else 'it'} "
            f"out, {path_fix(name, kind)}, or {OVERWRITE_FIX} (what adv_pipeline did not write "
            f"is then set aside beside it, never deleted)"
        )
    raise OutputError(
        f"{path}: already holds {_describe(Path(path))} that adv_pipeline did not write as "
        f"{KIND_NAMES.get(kind, kind)}, "
        f"so it is not replaced. Fix: {path_fix(name, kind)}, or {OVERWRITE_FIX}"
    )


KIND_NAMES = {
    DATASET: "a LeRobot dataset",
    RUNS: "a folder of training runs",
    RUN: "a training run",
    FILES: "a report",
    "checkpoint": "a checkpoint",
}


def path_fix(name: str | None, kind: str) -> str:
    """How to write an output elsewhere: its ``<name>_path`` runtime parameter."""
    if kind == FILES:
        return "move that file away"
    return (
        f'choose another output path (--params "{name}_path=<new path>")'
        if name
        else "choose another output path"
    )


# ---------------------------------------------------------------------------- locks
_held: dict[str, list] = {}  # lock file -> [fd, count]: locks are re-entrant within a process


def _lock_path(path: Path) -> Path:
    return path.parent / f".{path.name}.lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        return {}


def _describe_holder(holder: Mapping) -> str:
    started = holder.get("started")
    when = (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))
        if started
        else "an unknown time"
    )
    cmd = holder.get("command", "")
    return (
        f"process {holder.get('pid', '?')} on {holder.get('host', '?')} (started "
        f"{when}{f', `{cmd}`' if cmd else ''})"
    )


@contextmanager
def output_lock(path: str | Path) -> Iterator[None]:
    """Hold the write lock of output ``path`` (file ``.<name>.lock`` beside it).

    Fails at once with :class:`OutputLockedError` naming the holder if another process
    holds it. The kernel drops the lock when its holder dies, so a killed run never
    blocks the next one; its stale record is taken over with a warning. Re-entrant
    within a process.
    """
    path = resolved(path)
    lock = _lock_path(path)
    key = str(lock)
    if key in _held:
        _held[key][1] += 1
        try:
            yield
        finally:
            _release(key)
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            if holder.get("host") == _HOST and str(holder.get("pid")) in _delegating_pids():
                yield  # an ancestor launched this process to write for it, holding the lock
                return
            raise OutputLockedError(
                f"{path}: another run is writing this output: {_describe_holder(holder)}. "
                "Fix: wait for it to finish or stop it; or write to another output path"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the file was removed by its previous holder between open and lock: retry
    previous = _holder(fd)
    if previous.get("pid") and (
        previous.get("host") != _HOST or not _pid_alive(int(previous["pid"]))
    ):
        log.warning(
            "%s: taking over the lock of %s, which ended without releasing it",
            path,
            _describe_holder(previous),
        )
    record = {
        "pid": os.getpid(),
        "host": _HOST,
        "started": time.time(),
        "command": " ".join(sys.argv)[:500],
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)
    _held[key] = [fd, 1]
    try:
        yield
    finally:
        _release(key)


def remove_stale_locks(paths: Iterable[str | Path]) -> list[Path]:
    """Remove the lock files of ``paths`` that no process holds (left by killed runs);
    returns them. A lock someone holds is left alone."""
    removed = []
    for path in paths:
        lock = _lock_path(resolved(path))
        if str(lock) in _held or not lock.is_file():
            continue
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:  # removed while holding it
                os.unlink(lock)
                removed.append(lock)
        except (BlockingIOError, FileNotFoundError):
            pass
        finally:
            os.close(fd)
    return removed


def _delegating_pids() -> set[str]:
    return set(filter(None, os.environ.get(LOCK_DELEGATES_ENV, "").split(",")))


def delegate_locks(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a child process (torchrun and its ranks) that writes the outputs
    whose locks this process holds: there, :func:`output_lock` on them proceeds."""
    env = dict(os.environ if env is None else env)
    env[LOCK_DELEGATES_ENV] = ",".join(sorted(_delegating_pids() | {str(os.getpid())}))
    return env


def _release(key: str) -> None:
    entry = _held[key]
    entry[1] -= 1
    if entry[1]:
        return
    del _held[key]
    try:
        os.unlink(key)
    except FileNotFoundError:
        pass
    os.close(entry[0])


# ---------------------------------------------------------------------------- debris
def sweep_debris(
    directory: str | Path, name: str | None = None, recursive: bool = False
) -> list[Path]:
    """Remove temporary files and folders of dead processes of this host in ``directory``
    (only those of output ``name`` if given; sub-folders too if ``recursive``).

    A ``.<name>.old-*`` left by a writer killed between its two renames is put back as
    ``<name>`` when nothing replaced it. Returns the removed paths.
    """
    directory = Path(directory)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        m = _DEBRIS.match(entry.name)
        if (
            m
            and (name is None or m["name"] == name)
            and m["host"] == _HOST
            and not _pid_alive(int(m["pid"]))
        ):
            path = Path(entry.path)
            target = directory / m["name"]
            if m["kind"] == "old" and not os.path.lexists(target):
                path.rename(target)
                log.warning(
                    "%s: restored from %s (a writer died while replacing it)", target, path.name
                )
                continue
            shutil.rmtree(path) if entry.is_dir(follow_symlinks=False) else path.unlink()
            removed.append(path)
        elif recursive and entry.is_dir(follow_symlinks=False):
            removed += sweep_debris(entry.path, None, True)
    if removed:
        log.info("%s: removed %d temporary files of dead processes", directory, len(removed))
    return removed


def temporary_path(path: str | Path, kind: str = "tmp") -> Path:
    """A hidden sibling of ``path`` that :func:`sweep_debris` removes once its owner died."""
    path = Path(path)
    return path.parent / f".{path.name}.{kind}-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@contextmanager
def atomic_directory(
    root: str | Path,
    kind: str,
    *,
    inputs: Mapping[str, str | Path] | Iterable[str | Path] = (),
    overwrite: bool = False,
    name: str | None = None,
    marker: bool = True,
) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``root`` only if the block succeeds.

    ``root`` is checked first (:func:`check_output`), locked for the duration, and the
    debris of earlier dead writers of it is swept. The new directory is marked as
    ``kind`` (unless ``marker`` is False) before it is renamed into place.
    """
    root = Path(root)
    check_output(root, kind, inputs=inputs, overwrite=overwrite, name=name)
    root.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(root):
        sweep_debris(root.parent, root.name)
        check_output(root, kind, inputs=inputs, overwrite=overwrite, name=name)  # a restored .old
        tmp = temporary_path(root)
        tmp.mkdir()
        try:
            yield tmp
            if marker:
                write_marker(tmp, kind)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        replace_path(tmp, root, kind)


def set_aside_path(root: Path) -> Path:
    """Where :func:`replace_path` keeps what it replaced that this project did not write."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return root.parent / f"{root.name}.not-written-by-adv_pipeline-{stamp}-{uuid.uuid4().hex[:4]}"


def replace_path(new: Path, root: Path, kind: str) -> None:
    """Rename ``new`` to ``root``. What was there is removed when this project wrote all
    of it (an output of ``kind``); anything else (``overwrite``) is set aside beside it
    (:func:`set_aside_path`), never deleted, and the log says where. The old content is
    kept aside until ``new`` is in place, so a crash in between loses neither."""
    old, keep = None, False
    if os.path.lexists(root):
        keep = not _owned(root, kind)
        old = set_aside_path(root) if keep else temporary_path(root, "old")
        os.rename(root, old)
    os.rename(new, root)
    if keep:
        log.warning(
            "%s: replaced (overwrite); what was there, which adv_pipeline did not write (all "
            "or part of it), is kept at %s",
            root,
            old,
        )
    elif old is not None:
        shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
