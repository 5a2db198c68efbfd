"""Who may run a model, and when: the server's concurrency rules in one place.

**One model, one runner at a time.** Each loaded model has a :class:`ModelGate`, a lock
that at most one thread holds while the model computes. Interactive requests (view, embed,
compare, ...; milliseconds each) hold it for their whole computation. They run in the web
server's thread pool, so many requests wait on the gate and are served one by one; at most
``max_waiting`` may wait, further ones are refused at once with a :class:`BusyError` (HTTP
429) instead of piling up. Predict, attention, score and layer-wise requests reach the gate
through :mod:`mlmtool.server.batcher`: concurrent ones of the same kind and options run as
one batch under one hold, with the same bound on waiting.

**SHAP in its own worker, sharing the gate batch by batch.** A SHAP explanation runs the
model hundreds of times (seconds in all). It runs on one background thread
(:class:`ExplainJobs`, a bounded job queue: at most ``max_jobs`` queued or running, the
next is refused with 429) and sees the model through :func:`guarded`, a proxy that takes
the gate for each single module call (one padded batch through the encoder, then the
masked-LM head) and gives it back in between. Interactive requests are *urgent*: while
one waits, the SHAP worker does not take the gate again, so a predict request waits for
at most one SHAP batch (a few tens of milliseconds), never for the whole explanation.
The weights are shared, not copied, so serving SHAP costs no extra memory.

**Threads for the model.** The server computes on its pool's worker threads, not the main
thread. Measured on the 2-core machine of ``docs/benchmarks.md`` (PyTorch 2.13 CPU wheel: MKL
with GNU OpenMP), a ``[64, 384] x [384, 1536]`` product ran at 0.44-0.60 ms in such a thread
against 0.31 ms in the main thread, and a one-sentence whole-word fill took 87 ms instead of
38 ms, with ``torch.set_num_threads`` called in the thread or not. Both are as fast as the
main thread when MKL's own default is one thread (``MKL_NUM_THREADS=1``, read when MKL starts)
and the computing thread sets PyTorch's count, which PyTorch hands to MKL for that thread
(``at::set_num_threads``: ``omp_set_num_threads`` and ``mkl_set_num_threads_local``). So
``mlmtool serve`` calls :func:`prepare_threads` before torch is imported, and every
:meth:`ModelGate.hold` sets the holder's count to the gate's ``threads`` (the main thread's
count when the gate was made), and every batch runs on the gate's one model thread
(:meth:`ModelGate.run`). ``bench_serve`` shows the effect: one client's p50 went from 87 to
49 ms, and 8 clients from 27.5 to 47.2 requests/s (with the batcher's refill and
:mod:`mlmtool.core.last_layer`).

This choice (one lock per model with priorities, rather than one copy of the weights per
worker) keeps the guarantee checkable: ``tests/test_server.py`` hooks the real encoder
and asserts it is never entered by two threads at once while a SHAP job (one that calls
the model until the test releases it) and many predict requests run together.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import queue
import sys
import threading
import time
import uuid
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

log = logging.getLogger("mlmtool.server")


class BusyError(Exception):
    """Too many requests are waiting (HTTP 429), or the server is stopping (``status`` 503)."""

    def __init__(self, message: str, status: int = 429):
        super().__init__(message)
        self.status = status


#: The count :func:`prepare_threads` chose for the gates (None: it did not run or changed nothing).
_SERVER_THREADS: int | None = None


def physical_cores() -> int:
    """The physical cores this process may run on: its CPUs (``os.sched_getaffinity``) counted
    once per core (``/sys/devices/system/cpu/cpuN/topology/thread_siblings_list``), what PyTorch
    takes as its default thread count; the CPU count where Linux's files are missing."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
    cores = set()
    for cpu in cpus:
        try:
            with open(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list") as f:
                cores.add(f.read().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


def prepare_threads() -> bool:
    """Make MKL's default one thread (``MKL_NUM_THREADS=1``) before torch is imported, so the
    threads that hold a :class:`ModelGate` compute at full speed (see "Threads for the model").

    PyTorch would then default to one thread too (it reads ``MKL_NUM_THREADS``), so the gates
    get the count it would have chosen: ``OMP_NUM_THREADS`` if set, else :func:`physical_cores`.
    A ``MKL_NUM_THREADS`` the user set is kept; once torch is imported it is too late, and
    nothing changes.

    Returns:
        Whether the environment was changed.
    """
    global _SERVER_THREADS
    if "torch" in sys.modules or "MKL_NUM_THREADS" in os.environ:
        return False
    omp = os.environ.get("OMP_NUM_THREADS", "")
    _SERVER_THREADS = int(omp) if omp.isdigit() and int(omp) > 0 else physical_cores()
    os.environ["MKL_NUM_THREADS"] = "1"
    return True


def _default_threads() -> int | None:
    """The gates' thread count: :func:`prepare_threads`'s, else PyTorch's in this thread if
    torch is imported, else None."""
    if _SERVER_THREADS is not None:
        return _SERVER_THREADS
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


def _set_threads(threads: int | None) -> None:
    """``torch.set_num_threads(threads)`` in the calling thread (nothing for None)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


class ModelGate:
    """A lock around one model, with priority for interactive requests.

    ``hold(urgent=True)`` is for requests a person is waiting for; ``hold(urgent=False)``
    (the SHAP worker) waits while any urgent request waits, so background work slips in
    only between interactive requests.

    Args:
        max_waiting: how many urgent requests may wait at once (default 64); one more
            raises :class:`BusyError` instead of waiting.
        threads: PyTorch threads the holder computes with, set in its thread on every
            ``hold`` (``torch.set_num_threads``); default: this thread's count when torch is
            imported, else None (left alone).

    Attributes:
        runs: how many times the gate was taken (for tests and the benchmark).
    """

    def __init__(self, max_waiting: int = 64, threads: int | None = None):
        self.threads = threads if threads is not None else _default_threads()
        self._runner = None  # the model thread of run(), made on first use
        self._cond = threading.Condition()
        self._busy = False
        self._urgent_waiting = 0
        self._closed = False
        self.max_waiting = max_waiting
        self.runs = 0

    @property
    def busy(self) -> bool:
        """Whether a thread holds the gate now (a snapshot: it may change at once)."""
        with self._cond:
            return self._busy

    @property
    def waiting(self) -> int:
        """Urgent requests waiting for the gate now (a snapshot, like :attr:`busy`)."""
        with self._cond:
            return self._urgent_waiting

    def close(self) -> None:
        """Refuse every later or waiting ``hold`` (the server is stopping); the holder finishes,
        and then the model thread of :meth:`run` ends."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            runner, self._runner = self._runner, None
        if runner is not None:
            runner.shutdown(wait=False)

    def run(self, fn: Callable, *args):
        """``fn(*args)`` on the gate's own model thread, for a caller that holds the gate.

        Every batch of :mod:`mlmtool.server.batcher` runs there, so one thread (and one
        OpenMP team) does the model's work whichever request leads the batch: measured with
        8 clients, leaders on rotating pool threads gave 9-36 requests/s from run to run.

        Returns:
            What ``fn`` returned (it raises what ``fn`` raised).
        """
        from concurrent.futures import ThreadPoolExecutor

        with self._cond:
            if self._runner is None:
                self._runner = ThreadPoolExecutor(1, thread_name_prefix="mlmtool-model",
                                                  initializer=_set_threads, initargs=(self.threads,))
            runner = self._runner
        return runner.submit(fn, *args).result()

    def _check_open(self) -> None:
        if self._closed:
            raise BusyError("the server is stopping", status=503)

    @contextmanager
    def hold(self, urgent: bool = True) -> Iterator[None]:
        """Hold the gate for the ``with`` block.

        Raises:
            BusyError: ``urgent`` and ``max_waiting`` requests already wait, or the gate is
                closed (the server is stopping).
        """
        with self._cond:
            self._check_open()
            if urgent:
                if self._busy and self._urgent_waiting >= self.max_waiting:
                    raise BusyError(f"the server is busy ({self.max_waiting} requests are waiting "
                                    "for this model, the limit max_waiting); try again shortly")
                self._urgent_waiting += 1
                try:
                    while self._busy:
                        self._cond.wait()
                        self._check_open()
                finally:
                    self._urgent_waiting -= 1
            else:
                while self._busy or self._urgent_waiting:
                    self._cond.wait()
                    self._check_open()
            self._busy = True
            self.runs += 1
        try:
            _set_threads(self.threads)  # per thread: see "Threads for the model"
            yield
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()


class _Guarded:
    """A stand-in for a ``torch.nn.Module`` whose calls take a :class:`ModelGate` (not urgent).

    Attribute reads pass through to the module; sub-modules come back guarded too, so
    ``model.base_model(...)`` and ``model.cls(...)`` (what :func:`mlmtool.core.forward.run_batch`
    calls) each take the gate for the one call. ``on_call(batch_rows)`` is told how many
    sequences each encoder call carries (progress counting).
    """

    def __init__(self, module, gate: ModelGate, on_call: Callable[[int], None] | None = None):
        object.__setattr__(self, "_module", module)
        object.__setattr__(self, "_gate", gate)
        object.__setattr__(self, "_on_call", on_call)

    def __getattr__(self, name: str):
        import torch

        value = getattr(self._module, name)
        if isinstance(value, torch.nn.Module):
            return _Guarded(value, self._gate, self._on_call)
        return value

    def __call__(self, *args, **kwargs):
        with self._gate.hold(urgent=False):
            out = self._module(*args, **kwargs)
        ids = kwargs.get("input_ids")
        if self._on_call is not None and ids is not None and hasattr(ids, "shape"):
            self._on_call(int(ids.shape[0]))
        return out


def guarded(lm, gate: ModelGate, on_call: Callable[[int], None] | None = None):
    """A copy of a :class:`~mlmtool.models.LoadedModel` whose model takes ``gate`` per call.

    The weights are shared (nothing is copied); only ``lm.model`` is wrapped.

    Args:
        lm: the loaded model; gate: its gate.
        on_call: called with the batch size of every encoder call (or None).
    """
    return dataclasses.replace(lm, model=_Guarded(lm.model, gate, on_call))


@dataclass
class Job:
    """One SHAP explanation, queued or done.

    Attributes:
        id: random hex id (unguessable, 32 characters).
        model: the model's name; params: the arguments of :func:`mlmtool.explain`.
        status: ``queued``, ``running``, ``done`` or ``error``.
        evaluations: sentences the model has evaluated so far for this job.
        max_evals: the SHAP budget (an upper bound of ``evaluations``, up to the few
            evaluations of the full sentence).
        result: ``ExplainResult.to_dict()`` when done; error: the message when failed.
        created, finished: ``time.time()`` stamps.
    """

    id: str
    model: str
    params: dict
    status: str = "queued"
    evaluations: int = 0
    max_evals: int = 0
    result: dict | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    _seq: int = 0

    def to_dict(self, position: int | None = None) -> dict:
        """The job as the API returns it (``queue_position``: jobs ahead of it, when queued)."""
        out: dict[str, Any] = {"id": self.id, "model": self.model, "status": self.status,
                               "progress": {"evaluations": self.evaluations, "max_evals": self.max_evals},
                               "result": self.result, "error": self.error}
        if position is not None:
            out["queue_position"] = position
        return out


class ExplainJobs:
    """A bounded queue of SHAP jobs served by one background thread.

    Args:
        run: ``run(job, on_call) -> dict`` computes a job's result (called on the worker
            thread; ``on_call(n)`` adds ``n`` to the job's evaluations). A
            :class:`~mlmtool.errors.MlmtoolError` or a :class:`BusyError` (a closed gate: the
            server is stopping) becomes the job's error message; any other exception is
            logged with its traceback and the job fails with a short message.
        max_jobs: queued plus running jobs allowed at once (default 4).
        keep: finished jobs remembered for polling (default 64, oldest forgotten first).
    """

    def __init__(self, run: Callable[[Job, Callable[[int], None]], dict], max_jobs: int = 4, keep: int = 64):
        self._run = run
        self.max_jobs = max_jobs
        self.keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._thread: threading.Thread | None = None

    def submit(self, model: str, params: dict, max_evals: int) -> Job:
        """Queue a job and return it.

        Raises:
            BusyError: ``max_jobs`` jobs are already queued or running.
        """
        with self._lock:
            active = sum(j.status in ("queued", "running") for j in self._jobs.values())
            if active >= self.max_jobs:
                raise BusyError(f"the explain queue is full ({self.max_jobs} jobs queued or running, "
                                "the limit max_explain_jobs); try again when one has finished")
            job = Job(id=uuid.uuid4().hex, model=model, params=params, max_evals=max_evals,
                      _seq=next(self._counter))
            self._jobs[job.id] = job
            self._forget_old()
            if self._thread is None or not self._thread.is_alive():
                # daemon: Ctrl-C never waits for an explanation to finish
                self._thread = threading.Thread(target=self._work, name="mlmtool-explain", daemon=True)
                self._thread.start()
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> tuple[Job, int | None] | None:
        """``(job, jobs ahead of it or None)`` for a known id, else None."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            ahead = None
            if job.status == "queued":
                ahead = sum(j.status in ("queued", "running") and j._seq < job._seq for j in self._jobs.values())
            return job, ahead

    def _forget_old(self) -> None:
        done = [j for j in self._jobs.values() if j.status in ("done", "error")]
        for j in done[: max(0, len(done) - self.keep)]:
            del self._jobs[j.id]

    def _work(self) -> None:
        from ..errors import MlmtoolError

        while True:
            job = self._queue.get()
            if job is None:
                return
            job.status = "running"

            def on_call(n: int, job: Job = job) -> None:
                job.evaluations += n

            try:
                job.result = self._run(job, on_call)
                job.status = "done"
            except (MlmtoolError, BusyError) as exc:  # refused input, or the server is stopping
                job.error, job.status = str(exc).splitlines()[0] if str(exc) else type(exc).__name__, "error"
            except Exception as exc:  # a bug: keep the traceback in the log, not in the answer
                log.exception("explain job %s failed", job.id)
                job.error, job.status = f"internal error while explaining ({type(exc).__name__}); see the server log", "error"
            finally:
                job.finished = time.time()
                with self._lock:
                    self._forget_old()

    def close(self) -> None:
        """Stop the worker after the current job (queued jobs are dropped)."""
        self._queue.put(None)
