"""A build split across the processes of ``torchrun`` or ``accelerate launch`` (issue 28).

``torchrun --nproc-per-node N -m mlmtool index CORPUS -o DIR ...`` starts N copies of the
command; the launcher's environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``; the torch.distributed "env://" convention, which ``accelerate launch`` follows
too) tells each which part is its own. The corpus's chunks (:func:`~.build.chunk_lines_for` lines
each, the same chunks as a single-process build) are dealt round-robin: chunk ``c`` belongs to
rank ``c mod N``. Every rank writes its chunks into ``DIR/.building/`` (so ``DIR`` must be on a
file system all ranks see); after a barrier, rank 0 merges them in corpus order into one
index, exactly the index one process would have written, and the other ranks wait for it.

The barriers go through ``torch.distributed`` (gloo: it runs on CPU and beside GPUs alike);
the model runs on the rank's own GPU when there are GPUs (``cuda:LOCAL_RANK``).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True)
class Shard:
    """This process's share of a build: rank ``rank`` (from 0) of ``size`` processes."""

    rank: int = 0
    size: int = 1

    def owns(self, chunk: int) -> bool:
        """Whether chunk number ``chunk`` (from 0, in corpus order) is this rank's to compute."""
        return chunk % self.size == self.rank

    def barrier(self) -> None:
        """Wait until every rank gets here (nothing to do for one process)."""
        if self.size > 1:
            import torch.distributed as dist

            dist.barrier()


def launched_world_size() -> int:
    """Processes of the launch this process belongs to (``WORLD_SIZE``; 1 when not launched)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def rank_device() -> str | None:
    """The device for this rank's model: ``cuda:LOCAL_RANK`` in a multi-process launch on a
    machine with GPUs (also made the current CUDA device), else None (the loader's default)."""
    if launched_world_size() == 1:
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    local = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local)
    return f"cuda:{local}"


@contextmanager
def shard_group() -> Iterator[Shard]:
    """This process's :class:`Shard`, with a torch.distributed process group for its barriers.

    A single process gets ``Shard(0, 1)`` and no group. In a launch, an existing default
    group (e.g. one an ``accelerate.Accelerator`` made) is used as it is; otherwise a gloo
    group is made from the launcher's environment and destroyed on exit.
    """
    if launched_world_size() == 1:
        yield Shard()
        return
    import torch.distributed as dist

    made = not dist.is_initialized()
    if made:
        dist.init_process_group(backend="gloo")
    try:
        yield Shard(dist.get_rank(), dist.get_world_size())
    finally:
        if made:
            dist.destroy_process_group()
