"""The one training-data loader: planned chunks of samples, each decoded episode by
episode in order (one pass per episode, only the frames the plan needs), in worker
processes, consumed in plan order and cut into batches.

A stage supplies the plans (which samples, from which episodes: a pure function of
seed, epoch and rank, so the stream does not depend on the number of workers and a
resumed run skips planned samples without decoding them) and the decoder of one plan.
Memory is bounded by ``workers * prefetch`` chunks, never by the dataset.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from typing import Generic, Protocol, TypeVar

import numpy as np

from adv_pipeline.crash import die_with_parent
from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.quiet import jax_free_fork


class Chunk(Protocol):
    """What a decoder returns: samples that can be counted and sliced."""

    def __len__(self) -> int: ...

    def __getitem__(self, rows: slice) -> Chunk: ...


P = TypeVar("P", bound=Sequence)  # a plan: its len() is its number of samples
C = TypeVar("C", bound=Chunk)

# Worker processes open the dataset once (no re-validation) and decode plans.
_WORKER_DATASET: LeRobotDatasetReader | None = None


def split_episodes(
    episodes: Sequence[int], val_fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """Deterministic split by episode: (train, held out), each sorted. A positive fraction
    holds out at least one episode and leaves at least one (when there are two or more)."""
    eps = np.asarray(sorted(episodes))
    n_val = int(round(val_fraction * len(eps))) if len(eps) > 1 else 0
    if val_fraction > 0 and len(eps) > 1:
        n_val = min(max(n_val, 1), len(eps) - 1)
    perm = np.random.default_rng([seed, 7919]).permutation(len(eps))
    val = sorted(eps[perm[:n_val]].tolist())
    train = sorted(eps[perm[n_val:]].tolist())
    return train, val


def _worker_init(root: str, parent: int) -> None:
    global _WORKER_DATASET
    die_with_parent(parent)
    _WORKER_DATASET = LeRobotDatasetReader(root, check_files=False)


def _worker_decode(decode: Callable, plan):
    assert _WORKER_DATASET is not None
    return decode(_WORKER_DATASET, plan)


class ChunkLoader(Generic[P, C]):
    """Batches of ``batch_size`` samples from an endless stream of plans, in order.

    Args:
        dataset: the dataset the plans sample from.
        plans: the plan stream (each plan's ``len`` is its number of samples).
        decode: ``decode(dataset, plan) -> chunk``, a module-level function or a
            ``functools.partial`` of one (it runs in worker processes).
        concat: joins chunks into one.
        batch_size: samples per batch.
        workers: decoding processes (0 decodes in this process). They are forked (no
            importable ``__main__`` needed; decoders use numpy, pyarrow and PyAV only,
            never JAX or torch) and killed when this process dies.
        prefetch: chunks in flight per worker.
        skip: planned samples to skip before the first batch (resume at step s:
            ``s * batch_size``), without decoding them.
    """

    def __init__(
        self,
        dataset: LeRobotDatasetReader,
        plans: Iterator[P],
        decode: Callable[[LeRobotDatasetReader, P], C],
        concat: Callable[[Sequence[C]], C],
        batch_size: int,
        workers: int = 1,
        prefetch: int = 2,
        skip: int = 0,
    ):
        self.dataset = dataset
        self._plans = plans
        self._decode = decode
        self._concat = concat
        self.batch_size = int(batch_size)
        self._window = max(1, workers * prefetch)
        self._skip = int(skip)
        self._pool: ProcessPoolExecutor | None = None
        if workers > 0:
            method = "fork" if sys.platform.startswith("linux") else "spawn"
            self._pool = ProcessPoolExecutor(
                workers,
                mp_context=get_context(method),
                initializer=_worker_init,
                initargs=(str(dataset.root), os.getpid()),
            )

    def _chunks(self) -> Iterator[C]:
        skip = self._skip
        plan = next(self._plans)
        while skip >= len(plan):  # fast-forward over whole plans without decoding them
            skip -= len(plan)
            plan = next(self._plans)
        pending: deque[Future | P] = deque()

        def submit(p: P) -> Future | P:
            if self._pool is None:
                return p
            with jax_free_fork():  # the workers (forked on submit): numpy, pyarrow, PyAV
                return self._pool.submit(_worker_decode, self._decode, p)

        pending.append(submit(plan))
        while True:
            while len(pending) < self._window:
                pending.append(submit(next(self._plans)))
            item = pending.popleft()
            chunk = item.result() if isinstance(item, Future) else self._decode(self.dataset, item)
            if skip:
                chunk, skip = chunk[skip:], 0
            yield chunk

    def __iter__(self) -> Iterator[C]:
        buf: list[C] = []
        have = 0
        for chunk in self._chunks():
            buf.append(chunk)
            have += len(chunk)
            while have >= self.batch_size:
                joined = self._concat(buf)
                yield joined[: self.batch_size]
                buf = [joined[self.batch_size :]]
                have -= self.batch_size

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
