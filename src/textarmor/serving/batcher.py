"""Dynamic micro-batching: concurrent requests merge into one model call.

Requests wait in a bounded queue; one worker thread takes the oldest, then keeps taking more until the
batch reaches the token budget, a request limit, or ``max_wait_s`` has passed since it took the first.
It runs the merged batch once and hands each request its own rows, in its own order, on the event loop
that asked. A full queue refuses new work at once (:class:`QueueFull`, HTTP 429) rather than growing.

The queue is a thread-safe ``queue.Queue``, not an ``asyncio.Queue``, because its consumer is a thread:
inference blocks, and must not run on the event loop.
"""
from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


class QueueFull(Exception):
    """The batcher holds ``max_queue`` requests already; the caller should retry later."""


@dataclass
class _Job:
    texts: list[str]
    cost: int
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


_STOP = object()


class MicroBatcher:
    """Merge concurrent requests into model batches.

    Parameters
    ----------
    run_batch:
        Blocking function of a list of texts returning one row per text (e.g. calibrated logits).
    cost:
        Cost of a list of texts against the budget (tokens); default: the number of texts. It runs in
        :meth:`submit`, on the caller's event loop.
    max_batch_cost:
        Budget of one merged batch. A single request above it still runs, alone.
    max_wait_s:
        How long the worker waits for more requests after taking the first of a batch.
    max_queue:
        Requests that may wait; one more is refused with :class:`QueueFull`.
    max_requests:
        Requests per merged batch; ``1`` turns batching off (batch-1 serving through the same queue).
    on_batch:
        Called after each model call with (texts, requests), e.g. to record metrics.
    """

    def __init__(self, run_batch: Callable[[list[str]], np.ndarray], *,
                 cost: Callable[[list[str]], int] | None = None, max_batch_cost: int = 8192,
                 max_wait_s: float = 0.005, max_queue: int = 256, max_requests: int | None = None,
                 on_batch: Callable[[int, int], None] | None = None):
        if max_batch_cost < 1 or max_queue < 1 or max_wait_s < 0 or (max_requests is not None and max_requests < 1):
            raise ValueError("max_batch_cost, max_queue and max_requests must be positive and max_wait_s >= 0; got "
                             f"{max_batch_cost}, {max_queue}, {max_requests}, {max_wait_s}.")
        self.run_batch = run_batch
        self.cost = cost or len
        self.max_batch_cost = max_batch_cost
        self.max_wait_s = max_wait_s
        self.max_requests = max_requests
        self.on_batch = on_batch
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._held: _Job | None = None  # taken from the queue but over the budget: first of the next batch
        self._thread: threading.Thread | None = None

    @property
    def depth(self) -> int:
        """Requests waiting for the worker."""
        return self._queue.qsize() + (self._held is not None)

    def start(self) -> MicroBatcher:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="textarmor-batcher", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Finish every request already queued, then end the worker."""
        if self._thread is not None:
            self._queue.put(_STOP)  # blocks while the queue is full: queued work finishes first
            self._thread.join(timeout)
            self._thread = None

    async def submit(self, texts: Sequence[str]) -> np.ndarray:
        """Scores of ``texts`` (rows in their order), computed in a merged batch."""
        if self._thread is None:
            raise RuntimeError("MicroBatcher.submit() before start().")
        texts = list(texts)
        loop = asyncio.get_running_loop()
        job = _Job(texts, self.cost(texts), loop.create_future(), loop)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise QueueFull(f"{self._queue.maxsize} requests are already waiting (max_queue).") from None
        return await job.future

    # ------------------------------------------------------------ worker
    def _work(self) -> None:
        while True:
            first = self._held if self._held is not None else self._queue.get()
            self._held = None
            if first is _STOP:
                return
            jobs, stop = self._gather(first)
            self._run(jobs)
            if stop:
                return

    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        jobs, total = [first], first.cost
        deadline = time.monotonic() + self.max_wait_s
        while total < self.max_batch_cost and (self.max_requests is None or len(jobs) < self.max_requests):
            remaining = deadline - time.monotonic()
            try:
                job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                return jobs, True
            if total + job.cost > self.max_batch_cost:
                self._held = job
                break
            jobs.append(job)
            total += job.cost
        return jobs, False

    def _run(self, jobs: list[_Job]) -> None:
        texts = [t for job in jobs for t in job.texts]
        try:
            rows = self.run_batch(texts) if texts else np.empty((0, 0), dtype=np.float32)
        except Exception as exc:  # noqa: BLE001  (every waiting request gets the error, the worker lives on)
            for job in jobs:
                job.loop.call_soon_threadsafe(_settle, job.future, None, exc)
            return
        start = 0
        for job in jobs:
            part = rows[start:start + len(job.texts)]
            start += len(job.texts)
            job.loop.call_soon_threadsafe(_settle, job.future, part, None)
        if self.on_batch is not None:
            self.on_batch(len(texts), len(jobs))


def _settle(future: asyncio.Future, result, error: BaseException | None) -> None:
    if future.done():  # the client went away and its request was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
