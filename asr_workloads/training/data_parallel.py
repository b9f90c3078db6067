"""Data-parallel training: each step's batch split over worker processes, gradients summed.

Why processes: the recognizers are small and step through time one frame at a time, so
PyTorch's intra-op threads often wait on each other, and another job on the same cores
makes them wait far longer. Which is faster alone depends on the machine and the loss:
``benchmarks/data_parallel_speed.py`` measures it per training phase (measurements in
``docs/asr_workloads.md``).

The workers compute what one process would. Each builds the step's whole batch from the same
seeded generator (SpecAugment and predictor-dropout draws do not depend on the worker
count), keeps every ``world``-th utterance from its ``rank`` on, and divides by the whole
batch's size; losses on the weights alone are divided by ``world``. One all-reduce then sums
the gradients, and every worker takes the same optimizer step. A run therefore follows one
process's trajectory up to the order of floating-point sums, and its checkpoint resumes
under any worker count. Only rank 0 writes the log, the checkpoints and the model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import pickle
import queue
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

__all__ = [
    "Shard",
    "WorkerError",
    "all_reduce_max",
    "all_reduce_sum",
    "run_workers",
    "sum_gradients",
]


class WorkerError(RuntimeError):
    """A training worker that died without saying why (killed, or out of memory)."""


@dataclasses.dataclass(frozen=True)
class Shard:
    """Which part of every batch one worker computes.

    Attributes
    ----------
    rank : int
        This worker's index, from 0.
    world : int
        Workers in all.
    """

    rank: int = 0
    world: int = 1

    @property
    def leader(self) -> bool:
        """Whether this worker writes the run's files (rank 0)."""
        return self.rank == 0

    def rows(self, size: int) -> np.ndarray:
        """The rows of a ``size``-utterance batch this worker computes.

        Interleaved, not contiguous: a batch is sorted by length, so this gives every
        worker about the same number of frames.
        """
        return np.arange(self.rank, size, self.world)


def all_reduce_sum(values: torch.Tensor, shard: Shard) -> torch.Tensor:
    """``values`` summed over the workers (in place; a single worker's are returned as is)."""
    if shard.world > 1:
        dist.all_reduce(values)
    return values


def all_reduce_max(value: int, shard: Shard) -> int:
    """The largest of the workers' ``value``."""
    if shard.world == 1:
        return value
    values = torch.tensor([value], dtype=torch.int64)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return int(values)


def sum_gradients(
    parameters: list[torch.nn.Parameter], values: list[float], shard: Shard
) -> list[float]:
    """Sum every worker's gradients and ``values`` (e.g. its losses), in one all-reduce.

    A parameter without a gradient here counts as zero; one that no worker reached keeps
    ``grad = None``, so the optimizer leaves it alone as a single process would.
    Returns the summed ``values``.
    """
    if shard.world == 1:
        return values
    grads = [p.grad for p in parameters]
    reached = torch.tensor([g is not None for g in grads], dtype=torch.float32)
    flat = torch.cat(
        [
            *(
                (torch.zeros(p.numel()) if g is None else g.reshape(-1).float())
                for p, g in zip(parameters, grads, strict=True)
            ),
            reached,
            torch.tensor(values, dtype=torch.float32),
        ]
    )
    dist.all_reduce(flat)
    offset = 0
    for p in parameters:
        part = flat[offset : offset + p.numel()]
        offset += p.numel()
        p.grad = part.view_as(p).clone()
    reached_anywhere = flat[offset : offset + len(parameters)] > 0
    for p, reached_here in zip(parameters, reached_anywhere.tolist(), strict=True):
        if not reached_here:
            p.grad = None
    return flat[offset + len(parameters) :].tolist()


def _worker(
    rank: int,
    world: int,
    store: str,
    threads: int | None,
    messages: Any,
    target: Callable[..., Any],
    kwargs: dict[str, Any],
) -> None:
    if threads is not None:
        torch.set_num_threads(threads)
    shard = Shard(rank, world)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)

    def progress(step: int, steps: int, record: dict[str, float]) -> None:
        messages.put(("progress", (step, steps, record)))

    try:
        result = target(shard=shard, progress=progress if shard.leader else None, **kwargs)
        if shard.leader:
            messages.put(("result", result))
        code = 0
    except Exception as error:
        # The exception itself, so the parent raises what one process would have (a bad
        # recipe or corpus stays a one-line error), with this traceback as its cause.
        try:
            pickle.dumps(error)
        except Exception:
            error = RuntimeError(f"{type(error).__name__}: {error}")
        messages.put(("error", (error, traceback.format_exc())))
        code = 1
    except KeyboardInterrupt:
        # Ctrl-C reaches every worker; the parent reports it once.
        code = 130
    _leave(messages, code)


def _leave(messages: Any, code: int) -> None:
    """End this worker with ``code`` once its messages are in the pipe, tearing nothing down.

    Why not return: destroying the process group and finalizing the interpreter stop gloo's
    threads and run libtorch's static destructors, and a worker has been seen to abort there
    ("terminate called without an active exception", rarely: once in the test suite's
    history), which turned a finished run into a failure. After a success every collective
    has completed (after a failure the parent stops the other workers), and exiting
    closes this worker's sockets as destroying the group would.
    """
    messages.close()
    messages.join_thread()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_workers(
    target: Callable[..., Any],
    kwargs: dict[str, Any],
    world: int,
    threads: int | None,
    progress: Callable[[int, int, dict[str, float]], None] | None,
) -> Any:
    """Run ``target(shard=..., progress=..., **kwargs)`` in ``world`` processes; return rank
    0's result.

    ``target`` and ``kwargs`` must be picklable (the workers are spawned, not forked: a
    forked copy of a process that has already run PyTorch can deadlock). Rank 0's progress
    calls are relayed to ``progress`` here. If any worker fails, the others are stopped and
    its exception is raised here.
    """
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    with tempfile.TemporaryDirectory(prefix="edgenpu-workers-") as folder:
        store = str(Path(folder) / "store")
        workers = [
            context.Process(
                target=_worker,
                args=(rank, world, store, threads, messages, target, kwargs),
                name=f"edgenpu training worker {rank}",
            )
            for rank in range(world)
        ]
        with _stopped_on_exit(workers):
            for worker in workers:
                worker.start()
            return _relay(workers, messages, progress)


class _WorkerTraceback(Exception):
    """Where a worker's exception was raised, as the worker printed it."""


def _relay(workers: list[Any], messages: Any, progress: Callable | None) -> Any:
    result = None
    while True:
        # Read before the queue: a worker that had stopped by now had sent everything.
        codes = [w.exitcode for w in workers]
        try:
            kind, payload = messages.get(timeout=0.5)
        except queue.Empty:
            for worker, code in zip(workers, codes, strict=True):
                if code not in (None, 0):
                    raise WorkerError(f"{worker.name} died (exit code {code})") from None
            if all(code == 0 for code in codes):
                return result
            continue
        if kind == "progress" and progress is not None:
            progress(*payload)
        elif kind == "result":
            result = payload
        elif kind == "error":
            error, where = payload
            raise error from _WorkerTraceback(where)


@contextlib.contextmanager
def _stopped_on_exit(workers: list[Any]) -> Iterator[None]:
    """Stop and reap every worker still running when the block ends (a failure elsewhere,
    an interrupt), so none is left blocked in an all-reduce."""
    try:
        yield
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
        deadline = time.monotonic() + 10
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                worker.kill()
                worker.join()
