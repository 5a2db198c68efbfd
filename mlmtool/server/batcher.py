"""Dynamic batching: concurrent requests for one model and kind run as one forward-core batch.

Requests of the same *kind* (predict, attention, score, layer-wise) and the same options
(``top_k``, ``max_pieces``, ``variant``, ...) that arrive together are answered by one call of
the library's list API (:func:`~mlmtool.analysis.predict.predict`,
:func:`~mlmtool.analysis.attention.attention`, :func:`~mlmtool.analysis.score.score_sentences`,
:func:`~mlmtool.analysis.layerwise.layerwise_predictions` on a list of texts), which buckets the
texts by length and runs the encoder once per bucket (:mod:`mlmtool.core.forward`). The idea
is the dynamic batching of inference servers (NVIDIA Triton's dynamic batcher, TorchServe's
``batch_size`` / ``max_batch_delay``): wait a few milliseconds for company, then run once.

**How a batch forms.** The first request of a group ``(kind, options)`` is its *leader*; the
requests that arrive after it join the group and wait. The leader waits up to
:data:`BATCH_WINDOW_S` (5 ms; less if the group reaches :data:`MAX_BATCH` requests), then takes
the model's :class:`~mlmtool.server.worker.ModelGate` as an urgent request; while it waits for
the gate (another batch, or a SHAP call, is running), more requests keep joining. Holding the
gate, it seals up to :data:`MAX_BATCH` requests (first come, first served), runs the batch,
hands every request its own answer and wakes it. Requests beyond :data:`MAX_BATCH` stay as the
next group, led by the oldest. So a lone request waits at most 5 ms more than before, and
under load a batch is whatever arrived while the previous one ran.

**Waiting for the clients just answered (the refill).** Under load, clients send their next
request as soon as they have their answer. Without more, a batch that starts the moment the
previous one ends holds only the requests that arrived *during* that batch; the clients just
answered miss it by the milliseconds their answer and next request take, and batches
alternate between big and tiny (8 clients gave batches of 7, 1, 7, 1, ...: a batch of one
costs a third of a batch of eight). So a leader holding the gate within
:data:`REFILL_WINDOW_S` (30 ms) of the end of its key's previous batch waits, until that
moment at most, for the group to hold as many requests as were in flight then: the previous
batch plus those already waiting (at most :data:`MAX_BATCH`). Clients that do not come back
cost one batch at most 30 ms; a lone client never waits here (it is all the previous batch).
This is the queue delay of Triton's dynamic batcher (``max_queue_delay_microseconds``),
counted from the moment the model is free rather than from a request's arrival.

**The worker's guarantees stay.** One runner per model (the batch runs under the gate), SHAP
keeps its own bounded worker and still yields to the waiting leader between its batches, and
waiting is bounded: at most ``max_waiting`` requests may wait per model (in groups or on the
gate), one more is refused at once with :class:`~mlmtool.server.worker.BusyError` (429).

**One bad request spoils nothing.** If the batched call refuses its input
(:class:`~mlmtool.errors.MlmtoolError`: a text without ``[MASK]``, too long, ...), every request
of the batch is run again alone, so each gets the answer or the one-line error it would have
got alone.

**Identical answers.** A batched answer has the same tokens, words, candidates and order as the
same request alone; its numbers (probabilities, log-probabilities, PLLs, attention weights)
equal the alone answer's up to float32 rounding (1e-5 relative or absolute; attention's 8-bit
levels up to one level). Exact bit equality cannot be promised by any batching on CPU: the
matrix kernels (MKL) round a row differently when the matrix holds more rows or is padded
wider, which is also true of ``mlmtool predict --json`` given several sentences.
:func:`same_answer` is that comparison; ``tests/test_batching.py`` applies it to the answers
alone and to the CLI's ``--json``, ``scripts/benchmarks/bench_serve.py`` to every answer it gets.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

from .worker import BusyError, ModelGate

#: Seconds a batch's leader waits for company before it asks for the model (5 ms).
BATCH_WINDOW_S = 0.005
#: The most requests answered by one batched call (more wait for the next batch).
MAX_BATCH = 32
#: Seconds after a batch's end during which the next batch of its key waits for the clients
#: just answered to come back (30 ms; see "the refill" above).
REFILL_WINDOW_S = 0.030
#: How far a batched answer's floats may be from the answer alone: relative or absolute
#: (float32 rounding of log-probabilities, a few units in the last place summed over a sentence).
FLOAT_TOLERANCE = 1e-5


@dataclass(eq=False)
class _Request:
    """One waiting request: its input, and its answer or error once its batch ran."""

    payload: Any
    lead: bool = False
    wake: threading.Event = field(default_factory=threading.Event)
    finished: bool = False
    result: Any = None
    error: BaseException | None = None


class Batcher:
    """Groups concurrent requests for one model into batched library calls.

    Args:
        gate: the model's :class:`~mlmtool.server.worker.ModelGate`; every batch runs under it.
        window: seconds a leader waits for more requests (default :data:`BATCH_WINDOW_S`).
        max_batch: the most requests per batch (default :data:`MAX_BATCH`, at least 1).
        max_waiting: the most requests that may wait at once (default 64, the server's
            ``Limits.max_waiting``); one more raises :class:`BusyError`.
        refill: seconds after a batch during which the next batch of its key waits for
            the clients just answered (default :data:`REFILL_WINDOW_S`; 0 = never).
        clock: the monotonic clock in seconds (default ``time.monotonic``; tests pass another).

    Attributes:
        batches: batched calls run so far; served: requests answered by them (for tests and
            the benchmark: ``served / batches`` is the mean batch size).
    """

    def __init__(self, gate: ModelGate, *, window: float = BATCH_WINDOW_S, max_batch: int = MAX_BATCH,
                 max_waiting: int = 64, refill: float = REFILL_WINDOW_S, clock: Callable[[], float] = time.monotonic):
        self.gate, self.window, self.max_batch, self.max_waiting = gate, window, max(1, max_batch), max_waiting
        self.refill, self._clock = refill, clock
        self._cond = threading.Condition()
        self._groups: dict[Hashable, list[_Request]] = {}
        #: per key, the last batch: (its size, when it ended, requests already waiting then)
        self._last: dict[Hashable, tuple[int, float, int]] = {}
        self._waiting = 0
        self.batches = 0
        self.served = 0

    @property
    def waiting(self) -> int:
        """Requests waiting for their batch now (a snapshot)."""
        with self._cond:
            return self._waiting

    def run(self, key: Hashable, payload: Any, compute: Callable[[list], Sequence]) -> Any:
        """The answer to one request, computed in a batch with the requests of the same ``key``.

        Args:
            key: what a request must share with others to join their batch, e.g.
                ``("predict", (("top_k", 5), ...))``: the kind and every option.
            payload: this request's input (a text).
            compute: ``compute(payloads) -> answers``, one answer per payload in order; called
                once per batch, under the gate, by the batch's leader (so the same function
                for every request of a key).

        Returns:
            ``compute([..., payload, ...])`` at this request's place.

        Raises:
            BusyError: ``max_waiting`` requests already wait (429), or the server is stopping (503).
            Exception: whatever ``compute`` raised for this request (alone, for an MlmtoolError).
        """
        req = self._join(key, payload)
        try:
            if not req.lead:
                req.wake.wait()
            if not req.finished:  # the group's leader, first or promoted: run a batch
                self._lead(key, req, compute)
        finally:
            with self._cond:
                self._waiting -= 1
        if req.error is not None:
            raise req.error
        return req.result

    def _join(self, key: Hashable, payload: Any) -> _Request:
        with self._cond:
            if self._waiting >= self.max_waiting:
                raise BusyError(f"the server is busy ({self.max_waiting} requests are waiting "
                                "for this model, the limit max_waiting); try again shortly")
            group = self._groups.setdefault(key, [])
            req = _Request(payload, lead=not group)
            group.append(req)
            self._waiting += 1
            self._cond.notify_all()  # a leader may be waiting for company (window or refill)
            return req

    def _lead(self, key: Hashable, req: _Request, compute: Callable[[list], Sequence]) -> None:
        """Wait for company (not when promoted: the group formed already), run, wake everyone."""
        if not req.wake.is_set():
            with self._cond:
                self._cond.wait_for(lambda: len(self._groups.get(key, ())) >= self.max_batch, self.window)
        batch: list[_Request] = []
        try:
            with self.gate.hold():
                self._wait_for_refill(key)
                batch = self._seal(key)
                self.gate.run(self._serve, batch, compute)  # on the model's own thread
                with self._cond:
                    self._last[key] = (len(batch), self._clock(), len(self._groups.get(key, ())))
        except BaseException as exc:  # the gate refused (stopping), or a bug in compute
            if not batch:
                batch = self._seal(key)
            for r in batch:
                if not r.finished and r.error is None and r.result is None:
                    r.error = exc
        finally:
            for r in batch:
                r.finished = True
                r.wake.set()

    def _wait_for_refill(self, key: Hashable) -> None:
        """Within ``refill`` seconds of ``key``'s last batch, wait (until then at most) for the
        group to hold as many requests as were in flight when it ended (see the module docstring)."""
        with self._cond:
            last = self._last.get(key)
            if last is None:
                return
            size, ended, waiting = last
            expected = min(self.max_batch, size + waiting)
            remaining = ended + self.refill - self._clock()
            if remaining > 0:
                self._cond.wait_for(lambda: len(self._groups.get(key, ())) >= expected, remaining)

    def _seal(self, key: Hashable) -> list[_Request]:
        """Take up to ``max_batch`` requests of the group; the oldest left over leads the next."""
        with self._cond:
            group = self._groups.pop(key, [])
            batch, rest = group[: self.max_batch], group[self.max_batch:]
            if rest:
                self._groups[key] = rest
                rest[0].lead = True
                rest[0].wake.set()
            self.batches += 1
            self.served += len(batch)
            return batch

    @staticmethod
    def _serve(batch: list[_Request], compute: Callable[[list], Sequence]) -> None:
        """Answer every request of ``batch`` with one call, or each alone if the call refuses."""
        from ..errors import MlmtoolError

        try:
            answers = list(compute([r.payload for r in batch]))
        except MlmtoolError:
            if len(batch) == 1:
                raise
            for r in batch:  # one bad input: each gets what it would have got alone
                try:
                    r.result = compute([r.payload])[0]
                except MlmtoolError as exc:
                    r.error = exc
            return
        for r, answer in zip(batch, answers):
            r.result = answer


def options_key(kind: str, **options: Any) -> tuple:
    """The batching key of a request: its kind and its options, e.g.
    ``("predict", (("beam", 2), ("top_k", 5)))`` (sorted by name, so order never matters)."""
    return (kind, tuple(sorted(options.items())))


def same_answer(got: Any, expected: Any, tolerance: float = FLOAT_TOLERANCE, where: str = "$") -> str | None:
    """Whether two JSON answers are the same up to float rounding (see the module docstring).

    Dicts must have the same keys, lists the same length and order, strings, ints and bools
    be equal; floats may differ by ``tolerance``, relative or absolute (``math.isclose``).

    Returns:
        None when they are the same, else where and how they first differ, as a JSON path
        (``"$.masks[0].candidates[1].score: 0.25 != 0.26"``).
    """
    if isinstance(expected, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        close = math.isclose(got, expected, rel_tol=tolerance, abs_tol=tolerance)
        return None if close else f"{where}: {got!r} != {expected!r}"
    if type(got) is not type(expected):
        return f"{where}: {type(got).__name__} != {type(expected).__name__}"
    if isinstance(expected, dict):
        if set(got) != set(expected):
            return f"{where}: keys {sorted(got)} != {sorted(expected)}"
        pairs = [(f"{where}.{k}", got[k], expected[k]) for k in expected]
    elif isinstance(expected, list):
        if len(got) != len(expected):
            return f"{where}: {len(got)} items != {len(expected)}"
        pairs = [(f"{where}[{i}]", g, e) for i, (g, e) in enumerate(zip(got, expected))]
    else:
        return None if got == expected else f"{where}: {got!r} != {expected!r}"
    for path, g, e in pairs:
        diff = same_answer(g, e, tolerance, path)
        if diff:
            return diff
    return None
