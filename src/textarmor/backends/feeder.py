"""Forward passes cut from a pool of tokenised rows, longest first, as slices of a call arrive.

A call is tokenised in slices ordered by character length, but character length predicts token length
loosely for short texts: the rows of one slice span many token lengths. Batches cut within each slice (and
stacked up to a forward pass) were 41.7% padding on the 67,349 SST-2 train texts, against 14.2% for batches
planned over the whole input, and a GPU's work grows with padded tokens. So rows are pooled across slices
and each pass takes the pool's longest rows: with ``HOLD_BUDGETS`` = 3 passes' worth pooled, 16.4% (a pool
of 2: 25.8%, of 1: 38.1%; benchmarks/inference/padding_replay.py, a GPU's defaults, a device always busy).
On an H200 end to end it was 20%, as the first passes go to an idle device from a small pool.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait

import numpy as np

from textarmor.backends import tokenize_pool


class Feeder:
    """Sends a backend forward passes of near-equal widths, each within the token and row budget.

    The first pass goes at once, so the device starts. After that a pass leaves when the pool holds
    ``HOLD_BUDGETS`` passes' worth of rows, or when the device is idle and the pool fills
    ``IDLE_FLUSH_FRACTION`` of one (:meth:`before_wait`, called before the caller blocks on its next slice:
    a short wait for more rows costs less than a pass of very few). :meth:`flush` sends the rest, planned over
    what is left. Synchronous backends (CPU, ONNX Runtime) cannot be idle while this runs and get a pass
    whenever the pool is full. A backend with ``packs_up_to`` > 0 gets passes whose rows all fit that
    length as flat rows without padding (``submit_packed``), their budget counted in real tokens.
    """

    HOLD_BUDGETS = 3
    # Of the budget (tokens or rows) that an idle device is sent without waiting. On one H200 host (roberta-base
    # shape, the 67,349 SST-2 train texts, 12 tokeniser processes, calls alternated) a quarter gave 40.2% and
    # 39.6% of peak end to end, an eighth 38.2-39.7% (more, smaller passes) and a half 34.4-35.8%: a half left
    # the device idle while the first slices trickled in (benchmarks/results/raw/inference_h200_runs.jsonl,
    # runs 11-12; a quarter on another host, run 13: 35.5-38.0%).
    IDLE_FLUSH_FRACTION = 0.25

    # How often a caller waiting for slices re-checks whether the device has gone idle (see results_as_ready)
    POLL_SECONDS = 0.001

    def __init__(self, backend, max_tokens: int, max_rows: int, pad_id: int):
        self.backend, self.max_tokens, self.max_rows, self.pad_id = backend, max_tokens, max_rows, pad_id
        # only a backend that queues work and returns at once can be busy while this thread goes on
        self._busy = getattr(backend, "busy", None) if getattr(backend, "asynchronous", False) else None
        # passes whose rows are all this short go packed (backends that can: ``submit_packed``)
        self._packs_up_to = getattr(backend, "packs_up_to", 0)
        self.handles: list = []
        self.targets: list[np.ndarray] = []  # the input indices of each pass's rows, in the pass's order
        self._parts: list[tuple[np.ndarray, dict]] = []  # arrived slices not yet merged into the pool
        self._tokens = self._rows = 0

    def add(self, indices: np.ndarray, encoded: dict[str, np.ndarray]) -> None:
        """Pool one tokenised slice (``indices``: the call's input index of each row)."""
        if not len(indices):
            return
        self._parts.append((indices, encoded))
        self._tokens += int(encoded["lengths"].sum())
        self._rows += len(indices)
        if not self.handles:
            self._send_one()
        while (self._tokens >= self.HOLD_BUDGETS * self.max_tokens
               or self._rows >= self.HOLD_BUDGETS * self.max_rows):
            self._send_one()

    def before_wait(self) -> None:
        """Called before blocking on the next slice: an idle device gets a pass once the pool can fill
        ``IDLE_FLUSH_FRACTION`` of one."""
        if self._busy is None or self._busy() or not self._rows:
            return
        if max(self._tokens / self.max_tokens, self._rows / self.max_rows) >= self.IDLE_FLUSH_FRACTION:
            self._send_one()

    @property
    def watches_device(self) -> bool:
        """Whether :meth:`before_wait` can send anything: the backend queues work and says when it is busy."""
        return self._busy is not None

    def flush(self) -> None:
        while self._rows:
            self._send_one()

    def _send_one(self) -> None:
        indices, encoded = self._merged()
        lengths = encoded["lengths"]
        order = np.argsort(-lengths, kind="stable")  # longest first; ties keep arrival order
        width = max(1, int(lengths[order[0]]))
        packed = width <= self._packs_up_to
        if packed:  # no padding: the budget counts real tokens
            fits = int(np.searchsorted(np.cumsum(lengths[order]), self.max_tokens, side="right"))
        else:
            fits = self.max_tokens // width
        take = min(len(order), self.max_rows, max(1, fits))
        rows, rest = order[:take], order[take:]
        if packed:
            self.handles.append(self.backend.submit_packed(tokenize_pool.take_rows(encoded, rows)))
        else:
            self.handles.append(self.backend.submit(tokenize_pool.pad_rows(encoded, rows, self.pad_id)))
        self.targets.append(indices[rows])
        self._parts = [(indices[rest], tokenize_pool.take_rows(encoded, rest))] if len(rest) else []
        self._tokens = int(lengths[rest].sum())
        self._rows = len(rest)

    def _merged(self) -> tuple[np.ndarray, dict]:
        if len(self._parts) > 1:
            self._parts = [(np.concatenate([i for i, _ in self._parts]),
                            tokenize_pool.concat_encoded([e for _, e in self._parts]))]
        return self._parts[0]


def results_as_ready(futures: Sequence[Future], before_wait: Callable[[], None] | None = None,
                     poll_seconds: float = Feeder.POLL_SECONDS) -> Iterator[tuple[int, object]]:
    """``(position, result)`` of each future. Without ``before_wait``: in order, so a synchronous backend's
    passes come out the same every call. With it: each as soon as it is done (in order among those done),
    and while none is, ``before_wait`` every ``poll_seconds``: a device that goes idle while this thread
    waits gets a pass from rows already pooled, rather than when the next slice in order arrives (on an H200
    the device sat idle 8-14 ms before each of the first passes while the caller blocked on one slice)."""
    if before_wait is None:
        for position, future in enumerate(futures):
            yield position, future.result()
        return
    waiting = dict(zip(futures, range(len(futures))))  # in position order
    while waiting:
        ready = [future for future in waiting if future.done()]
        if not ready:
            before_wait()
            wait(waiting, timeout=poll_seconds, return_when=FIRST_COMPLETED)
            continue
        for future in ready:
            yield waiting.pop(future), future.result()
